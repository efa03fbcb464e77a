#pragma once
// Decoder-only transformer of the Llama family ("llama": SmolLM2, Llama 3.x; "qwen2": adds q/k/v
// biases and NeoX-style RoPE; "gemma3": scaled embeddings, RMSNorm of every query and key head,
// norms after attention and feed-forward too, GELU-gated feed-forward, and local sliding-window
// layers with their own RoPE base between the global ones) over weights memory-mapped from a GGUF
// file: RMSNorm, RoPE, grouped-query attention with an F32 KV cache, SwiGLU feed-forward, tied
// embeddings when output.weight is absent.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "llm/runtime/gguf.h"
#include "llm/runtime/kernels.h"
#include "llm/runtime/lora.h"

namespace chatrec::llm::runtime {

struct ModelConfig {
  std::string arch;
  int n_layer = 0;
  int n_embd = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_rot = 0;  // rotated dimensions per head
  int n_ctx_train = 0;
  int n_vocab = 0;
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  bool rope_neox = false;   // rotate (i, i + n_rot/2) pairs instead of adjacent (2i, 2i+1) pairs
  float embd_scale = 1.0f;  // token embeddings are multiplied by this (gemma: sqrt(n_embd))
  float attn_scale = 0.0f;  // queries are multiplied by this before attention (1/sqrt(head_dim))
  bool qk_norm = false;     // RMSNorm of each query and key head before RoPE (gemma3)
  bool post_norms = false;  // RMSNorm of the attention and feed-forward outputs (gemma3)
  bool geglu = false;       // GELU-gated feed-forward instead of SwiGLU (gemma)
  // Local layers see only the last `sliding_window` positions (0: every layer is global); with
  // swa_pattern p, layer i is global when i % p == p - 1. Local layers rotate with rope_base_swa.
  int sliding_window = 0;
  int swa_pattern = 0;
  float rope_base_swa = 10000.0f;

  bool is_local(int layer) const {
    return sliding_window > 0 && (swa_pattern <= 0 || layer % swa_pattern < swa_pattern - 1);
  }
  float rope_base_of(int layer) const { return is_local(layer) ? rope_base_swa : rope_base; }
};

enum class ForwardOutput {
  kNone,        // only fill the KV cache (prompt chunks before the last)
  kLastLogits,  // logits of the last token: n_vocab floats
  kAllLogits,   // logits of every token: n_tokens * n_vocab floats
  kHidden,      // final-norm hidden state of every token: n_tokens * n_embd floats
};

class Model {
 public:
  // Takes ownership of the file (the weights point into its mapping). Throws GgufError on missing
  // tensors or inconsistent shapes.
  explicit Model(GgufFile file);

  const ModelConfig& config() const { return config_; }
  const GgufFile& file() const { return file_; }

  // Allocates `n_slots` independent KV caches of n_ctx positions each. Memory is reserved but only
  // touched as positions are used, so idle slots cost address space, not RAM.
  void init_cache(int n_ctx, int n_slots = 1);
  int cache_size() const { return n_ctx_; }
  int cache_slots() const { return static_cast<int>(k_cache_.size()); }
  // The slot that forward() reads and writes from now on.
  void use_slot(int slot);

  // Runs `tokens` at positions pos .. pos+n-1; positions before pos must already be in the KV cache
  // (entries at and after pos are overwritten, which is how a cache is rolled back). pos + n must
  // not exceed cache_size().
  void forward(std::span<const int> tokens, int pos, ForwardOutput output, std::vector<float>& out,
               int threads);

  // Applies `adapter` with the user scale `scale` (effective scale scale * alpha / rank) on every
  // forward pass from now on; nullptr removes it. The adapter must outlive its use and fit this
  // model (LoraAdapter::load checks). Projections whose B is all zero are skipped, so a fresh
  // adapter gives outputs bit-identical to the base.
  void set_lora(const LoraAdapter* adapter, float scale = 1.0f);
  const LoraAdapter* lora() const { return lora_; }

  // Several continuations of one cached prompt in a single pass (scoring candidates): token t sits
  // in cache entry pos + t but at sequence position `positions[t]`, and attends to the shared
  // prompt (entries 0 .. shared-1) plus its own branch (entries branch_start[t] .. pos + t).
  struct Branches {
    int shared = 0;
    std::vector<int> positions;
    std::vector<int> branch_start;
  };
  void forward_branches(std::span<const int> tokens, int pos, const Branches& branches,
                        ForwardOutput output, std::vector<float>& out, int threads);

  // The weights, read-only (the trainer runs its own forward and backward over them).
  struct Layer {
    std::vector<float> attn_norm, ffn_norm, bq, bk, bv;                // biases empty unless qwen2
    std::vector<float> q_norm, k_norm, attn_post_norm, ffn_post_norm;  // empty unless gemma3
    WeightMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
    const WeightMatrix& projection(LoraTarget t) const;
  };
  const Layer& layer(int i) const { return layers_.at(static_cast<std::size_t>(i)); }
  const WeightMatrix& token_embedding() const { return token_embd_; }
  const WeightMatrix& output_matrix() const { return output_; }
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<float>& rope_freq_factors() const { return rope_freq_factors_; }

 private:
  WeightMatrix matrix(const std::string& name, std::int64_t cols, std::int64_t rows,
                      bool required = true) const;
  std::vector<float> vector(const std::string& name, std::int64_t n, bool required) const;
  void embed(int token, float* dst) const;
  // out[t] += s * B (A in[t]) for the adapted projection `target` of layer `layer`.
  void add_lora(int layer, LoraTarget target, const float* in, int n_tokens, float* out) const;
  void run(std::span<const int> tokens, int pos, const Branches* branches, ForwardOutput output,
           std::vector<float>& out, int threads);

  GgufFile file_;
  ModelConfig config_;
  WeightMatrix token_embd_, output_;
  std::vector<float> output_norm_;
  std::vector<float> rope_freq_factors_;
  std::vector<Layer> layers_;
  const LoraAdapter* lora_ = nullptr;
  float lora_scale_ = 0.0f;
  std::vector<std::array<bool, kLoraTargets>> lora_active_;
  int n_ctx_ = 0;
  int slot_ = 0;
  // Per slot and layer: n_ctx * n_head_kv * head_dim floats, left uninitialised so that only used
  // positions take memory.
  std::vector<std::vector<std::unique_ptr<float[]>>> k_cache_, v_cache_;
};

}  // namespace chatrec::llm::runtime
