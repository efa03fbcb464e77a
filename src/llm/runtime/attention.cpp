#include "llm/runtime/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "llm/runtime/activations.h"
#include "llm/runtime/kernels.h"

namespace chatrec::llm::runtime {
namespace {

constexpr int kTile = 64;  // keys per tile (llama.cpp's GGML_FA_TILE_KV)

// Sum of 16 floats in the order of GCC's _mm512_reduce_add_ps: halves of 8, 4, then 2 and 1.
float reduce16(const float* x) {
  float a[8], b[4];
  for (int l = 0; l < 8; ++l) a[l] = x[8 + l] + x[l];
  for (int l = 0; l < 4; ++l) b[l] = a[4 + l] + a[l];
  return (b[0] + b[2]) + (b[1] + b[3]);
}

// scores[j] = sum_d q[d] * kt[d * kTile + j] as one FMA chain per key, in d order.
void tile_scores_scalar(const float* q, const float* kt, int dim, float* scores) {
  std::fill(scores, scores + kTile, 0.0f);
  for (int d = 0; d < dim; ++d) {
    const float* row = kt + static_cast<std::size_t>(d) * kTile;
    for (int j = 0; j < kTile; ++j) scores[j] = std::fma(row[j], q[d], scores[j]);
  }
}

// acc[d] += e[kk] * v[kk][d] as one FMA per (kk, d), in kk order.
void accumulate_values_scalar(const float* e, const float* vt, int visible, int dim, float* acc) {
  for (int kk = 0; kk < visible; ++kk) {
    const float* row = vt + static_cast<std::size_t>(kk) * dim;
    for (int d = 0; d < dim; ++d) acc[d] = std::fma(row[d], e[kk], acc[d]);
  }
}

#define CHATREC_AVX2_FMA __attribute__((target("avx2,fma")))

CHATREC_AVX2_FMA void tile_scores_avx2(const float* q, const float* kt, int dim, float* scores) {
  __m256 acc[kTile / 8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (int d = 0; d < dim; ++d) {
    const __m256 qd = _mm256_set1_ps(q[d]);
    const float* row = kt + static_cast<std::size_t>(d) * kTile;
    for (int r = 0; r < kTile / 8; ++r)
      acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8 * r), qd, acc[r]);
  }
  for (int r = 0; r < kTile / 8; ++r) _mm256_storeu_ps(scores + 8 * r, acc[r]);
}

template <int D>
CHATREC_AVX2_FMA void accumulate_values_avx2(const float* e, const float* vt, int visible,
                                             float* acc) {
  __m256 a[D / 8];
  for (int r = 0; r < D / 8; ++r) a[r] = _mm256_loadu_ps(acc + 8 * r);
  for (int kk = 0; kk < visible; ++kk) {
    const __m256 ek = _mm256_set1_ps(e[kk]);
    const float* row = vt + static_cast<std::size_t>(kk) * D;
    for (int r = 0; r < D / 8; ++r) a[r] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8 * r), ek, a[r]);
  }
  for (int r = 0; r < D / 8; ++r) _mm256_storeu_ps(acc + 8 * r, a[r]);
}

}  // namespace

void attend_causal_tiled(const CausalBatch& b, int q_begin, int q_end) {
  const int dim = b.dim;
  const int nq = q_end - q_begin;
  if (nq <= 0) return;
  const bool avx2 = active_isa() == KernelIsa::kAvx2;
  const auto accumulate = [&](const float* e, const float* vt, int visible, float* acc) {
    if (avx2 && dim == 64) {
      accumulate_values_avx2<64>(e, vt, visible, acc);
    } else if (avx2 && dim == 128) {
      accumulate_values_avx2<128>(e, vt, visible, acc);
    } else if (avx2 && dim == 256) {
      accumulate_values_avx2<256>(e, vt, visible, acc);
    } else {
      accumulate_values_scalar(e, vt, visible, dim, acc);
    }
  };
  const std::size_t D = static_cast<std::size_t>(dim);
  thread_local std::vector<float> kt, vt, acc;
  kt.assign(D * kTile, 0.0f);
  vt.assign(D * kTile, 0.0f);
  acc.assign(D * static_cast<std::size_t>(nq), 0.0f);
  std::vector<float> running_max(static_cast<std::size_t>(nq), -INFINITY);
  std::vector<float> running_sum(static_cast<std::size_t>(nq), 0.0f);
  alignas(32) float scores[kTile];
  alignas(32) float e[kTile];

  const int last_pos = b.first_pos + q_end - 1;
  for (int start = 0; start <= last_pos; start += kTile) {
    const int tile = std::min(kTile, last_pos - start + 1);
    // Keys transposed (the key index is the vector dimension), values as rows; positions past the
    // batch stay zero (they are masked, and the cache beyond them holds no data).
    for (int j = 0; j < kTile; ++j) {
      if (j >= tile) {
        for (std::size_t d = 0; d < D; ++d) kt[d * kTile + static_cast<std::size_t>(j)] = 0.0f;
        std::fill_n(vt.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(j) * D), D,
                    0.0f);
        continue;
      }
      const float* kj = b.k + static_cast<std::size_t>(start + j) * b.kv_stride;
      const float* vj = b.v + static_cast<std::size_t>(start + j) * b.kv_stride;
      for (std::size_t d = 0; d < D; ++d) kt[d * kTile + static_cast<std::size_t>(j)] = kj[d];
      std::copy_n(vj, D, vt.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(j) * D));
    }
    for (int t = 0; t < nq; ++t) {
      const int pos = b.first_pos + q_begin + t;
      if (pos < start) continue;  // the whole tile is in this query's future
      int visible = std::min(kTile, pos - start + 1);
      // Branch layout: keys between the shared prompt and this query's own branch are hidden.
      int hidden_from = kTile, hidden_to = kTile;
      if (b.branch_start) {
        const int own = b.branch_start[q_begin + t];
        hidden_from = std::clamp(b.shared - start, 0, visible);
        hidden_to = std::clamp(own - start, hidden_from, visible);
        if (hidden_from == 0 && hidden_to == visible) continue;  // nothing visible in this tile
      }
      // Sliding window: entries before `lowest` (of the shared part, with branches) are hidden.
      int below = 0;
      if (b.window > 0) {
        const int qpos = b.positions ? b.positions[q_begin + t] : pos;
        const int lowest = qpos - b.window + 1;
        const int limit = b.branch_start ? std::min(visible, b.shared - start) : visible;
        below = std::clamp(lowest - start, 0, std::max(0, limit));
        if (below >= visible) continue;  // the whole tile is outside the window
      }
      const auto is_visible = [&](int j) {
        return j < visible && j >= below && (j < hidden_from || j >= hidden_to);
      };
      const float* q = b.q + static_cast<std::size_t>(q_begin + t) * b.q_stride;
      if (avx2) {
        tile_scores_avx2(q, kt.data(), dim, scores);
      } else {
        tile_scores_scalar(q, kt.data(), dim, scores);
      }
      float tile_max = -INFINITY;
      for (int j = 0; j < visible; ++j) {
        scores[j] *= b.scale;
        if (is_visible(j)) tile_max = std::max(tile_max, scores[j]);
      }
      float* a = acc.data() + static_cast<std::size_t>(t) * D;
      float& m = running_max[static_cast<std::size_t>(t)];
      float& s = running_sum[static_cast<std::size_t>(t)];
      const float m_new = std::fmax(m, tile_max);
      if (m_new > m) {
        const float ms = std::exp(m - m_new);
        for (std::size_t d = 0; d < D; ++d) a[d] *= ms;
        s *= ms;
      }
      m = m_new;
      for (int j = 0; j < visible; ++j) e[j] = scores[j] - m_new;
      exp_approx_n(e, e, static_cast<std::size_t>(visible));
      std::fill(e + visible, e + kTile, 0.0f);  // masked keys weigh exactly zero
      if (hidden_from < hidden_to) std::fill(e + hidden_from, e + hidden_to, 0.0f);
      if (below > 0) std::fill(e, e + below, 0.0f);
      double sum = 0.0;
      for (int g = 0; g < kTile; g += 16) sum += static_cast<double>(reduce16(e + g));
      s = static_cast<float>(static_cast<double>(s) + sum);
      accumulate(e, vt.data(), visible, a);
    }
  }
  for (int t = 0; t < nq; ++t) {
    const float s = running_sum[static_cast<std::size_t>(t)];
    const float inv = s == 0.0f ? 0.0f : 1.0f / s;
    const float* a = acc.data() + static_cast<std::size_t>(t) * D;
    float* out = b.out + static_cast<std::size_t>(q_begin + t) * b.out_stride;
    for (std::size_t d = 0; d < D; ++d) out[d] = a[d] * inv;
  }
}

}  // namespace chatrec::llm::runtime
