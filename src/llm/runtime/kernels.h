#pragma once
// Matrix products of quantised weights with float activations. The activations are first quantised
// to 8-bit blocks matching the weight type, then each weight row is multiplied with integer
// arithmetic (AVX2 when the CPU has it, portable scalar code otherwise), with OpenMP threads over
// output rows.
#include <cstddef>
#include <cstdint>

#include "llm/runtime/quants.h"

namespace chatrec::llm::runtime {

// A 2-D weight tensor: `rows` rows of `cols` elements, row r at data + r * row_stride.
struct WeightMatrix {
  GgmlType type = GgmlType::F32;
  std::int64_t cols = 0;
  std::int64_t rows = 0;
  const std::uint8_t* data = nullptr;
  std::size_t row_stride = 0;
};

enum class KernelIsa { kScalar, kAvx2 };
// The instruction set the kernels use: AVX2/FMA when the CPU supports it unless forced to scalar
// (tests compare both).
KernelIsa active_isa();
void force_isa(KernelIsa isa);  // kAvx2 is ignored on CPUs without AVX2

// y[t * w.rows + r] = sum_c W[r][c] * x[t * w.cols + c] for every token t < n_tokens.
void matmul(const WeightMatrix& w, const float* x, int n_tokens, float* y, int threads);

// Attention of one query head over `len` cached positions (keys and values at k + j*stride, v +
// j*stride), computed like llama.cpp's CPU flash attention: an online softmax whose value
// accumulator is kept at fp16 precision, with K·Q scores summed in ggml's AVX-512 order. Inputs are
// expected to be fp16-representable already (the KV cache stores rounded values).
void attend_head(const float* q, const float* k, const float* v, std::size_t stride, int len,
                 int dim, float scale, float* out);

// Dot product of one weight row with a float vector, through the same quantised path as matmul (for
// tests).
float row_dot(GgmlType type, const void* row, const float* x, std::int64_t n);

}  // namespace chatrec::llm::runtime
