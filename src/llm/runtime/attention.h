#pragma once
// Causal attention of a batch of queries, computed the way llama.cpp's CPU flash attention does
// for a batch of at least kAttentionTile queries (its "tiled" path): keys and values in tiles of 64
// positions aligned at position 0; each score an FMA chain over the head dimension on the f32
// query; per tile a max-shifted exp (exp_approx), whose sum is reduced per 16 like
// _mm512_reduce_add_ps and accumulated in double; an f32 value accumulator rescaled when the
// running maximum grows. Besides matching llama.cpp's prompt processing bit for bit, it replaces
// one scalar exp per (query, key) of the one-query-at-a-time path with vector work per tile.
#include <cstddef>

namespace chatrec::llm::runtime {

// Batches of at least this many queries take the tiled path (llama.cpp's GGML_FA_TILE_Q).
inline constexpr int kAttentionTile = 64;

struct CausalBatch {
  const float* q = nullptr;  // query t of this head at q + t * q_stride (f32, not rounded)
  std::size_t q_stride = 0;
  int first_pos = 0;  // query t sits at position first_pos + t and sees positions 0..first_pos+t
  const float* k = nullptr;  // key of position p at k + p * kv_stride (fp16-representable)
  const float* v = nullptr;
  std::size_t kv_stride = 0;
  int dim = 0;
  float scale = 1.0f;
  float* out = nullptr;  // result of query t at out + t * out_stride
  std::size_t out_stride = 0;
  // Optional branch layout (several continuations of one prompt in one batch): query t then sees
  // entries 0 .. shared-1 and branch_start[t] .. first_pos + t only.
  int shared = 0;
  const int* branch_start = nullptr;
  // Optional sliding window: a query at sequence position p sees no entry before p - window + 1
  // (of the shared prompt, with branches). `positions` gives the queries' sequence positions in
  // a branch batch (otherwise first_pos + t).
  int window = 0;
  const int* positions = nullptr;
};

// Queries [q_begin, q_end) of the batch (callers split the batch across threads).
void attend_causal_tiled(const CausalBatch& b, int q_begin, int q_end);

}  // namespace chatrec::llm::runtime
