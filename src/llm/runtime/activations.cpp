#include "llm/runtime/activations.h"

#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "llm/runtime/kernels.h"
#include "llm/runtime/quants.h"

namespace chatrec::llm::runtime {
namespace {

// Constants of the exp approximation published with ggml (adapted there from Arm's optimized
// routines): exp(x) = 2^n * p(b) with n = round(x / ln 2), b = x - n ln 2 (ln 2 split in a high
// and a low part) and p a degree-5 polynomial. Using the same constants and the same sequence of
// fused multiply-adds makes the result bit-identical to llama.cpp's AVX-512 SiLU.
constexpr float kShift = 0x1.8p23f;  // adding it rounds to an integer
constexpr float kLog2e = 0x1.715476p+0f;
constexpr float kLn2Hi = 0x1.62e4p-1f;
constexpr float kLn2Lo = 0x1.7f7d1cp-20f;
constexpr float kC1 = 0x1.ffffecp-1f;
constexpr float kC2 = 0x1.fffdb6p-2f;
constexpr float kC3 = 0x1.555e66p-3f;
constexpr float kC4 = 0x1.573e2ep-5f;
constexpr float kC5 = 0x1.0e4020p-7f;

// p * 2^e rounded once, like AVX-512's scalef for integral e.
float scale_pow2(float p, int e) {
  if (e >= -126 && e <= 127)
    return p * std::bit_cast<float>(static_cast<std::uint32_t>(e + 127) << 23);
  return std::ldexp(p, e);
}

float silu_times(float x, float up) {
  return x / (1.0f + exp_approx(0.0f - x)) * up;
}

#define CHATREC_AVX2_FMA __attribute__((target("avx2,fma")))

CHATREC_AVX2_FMA __m256 exp_approx_avx2(__m256 x) {
  const __m256 shift = _mm256_set1_ps(kShift);
  const __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), shift), shift);
  const __m256 b =
      _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x));
  const __m256 u = _mm256_mul_ps(b, b);
  const __m256 hi = _mm256_fmadd_ps(_mm256_set1_ps(kC5), b, _mm256_set1_ps(kC4));
  const __m256 mid = _mm256_fmadd_ps(_mm256_set1_ps(kC3), b, _mm256_set1_ps(kC2));
  const __m256 lo = _mm256_fmadd_ps(_mm256_set1_ps(kC1), b, _mm256_set1_ps(1.0f));
  const __m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(hi, u, mid), u, lo);
  const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  if (_mm256_movemask_ps(_mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0f), _CMP_GT_OQ)) == 0) {
    // 2^n is a normal float: build it from its exponent bits; the product rounds once.
    const __m256i bits =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
  alignas(32) float pv[8], nv[8];
  _mm256_store_ps(pv, p);
  _mm256_store_ps(nv, n);
  for (int i = 0; i < 8; ++i) {
    if (std::fabs(nv[i]) > 192.0f) {
      pv[i] = nv[i] > 0.0f ? INFINITY : 0.0f;
    } else if (!std::isnan(nv[i])) {
      pv[i] = scale_pow2(pv[i], static_cast<int>(nv[i]));
    }
  }
  return _mm256_load_ps(pv);
}

CHATREC_AVX2_FMA void swiglu_avx2(const float* gate, const float* up, float* out, std::size_t n) {
  std::size_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(gate + i);
    const __m256 e = exp_approx_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x));
    const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; ++i) out[i] = silu_times(gate[i], up[i]);
}

CHATREC_AVX2_FMA void exp_approx_n_avx2(const float* x, float* y, std::size_t n) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, exp_approx_avx2(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) y[i] = exp_approx(x[i]);
}

}  // namespace

void exp_approx_n(const float* x, float* y, std::size_t n) {
  if (active_isa() == KernelIsa::kAvx2) {
    exp_approx_n_avx2(x, y, n);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) y[i] = exp_approx(x[i]);
}

float exp_approx(float x) {
  const float n = std::fma(x, kLog2e, kShift) - kShift;
  const float b = std::fma(-n, kLn2Lo, std::fma(-n, kLn2Hi, x));
  const float u = b * b;
  const float p = std::fma(std::fma(std::fma(kC5, b, kC4), u, std::fma(kC3, b, kC2)), u,
                           std::fma(kC1, b, 1.0f));
  if (std::fabs(n) > 192.0f) return n > 0.0f ? INFINITY : 0.0f;
  if (std::isnan(n)) return n;
  return scale_pow2(p, static_cast<int>(n));
}

void swiglu(const float* gate, const float* up, float* out, std::size_t n) {
  if (active_isa() == KernelIsa::kAvx2) {
    swiglu_avx2(gate, up, out, n);
    return;
  }
  for (std::size_t i = 0; i < n; ++i) out[i] = silu_times(gate[i], up[i]);
}

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoefA = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCoefA * x * x)));
}

void geglu(const float* gate, const float* up, float* out, std::size_t n) {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (std::size_t h = 0; h < t.size(); ++h)
      t[h] = round_fp16(gelu_tanh(fp16_to_fp32(static_cast<std::uint16_t>(h))));
    return t;
  }();
  for (std::size_t i = 0; i < n; ++i) {
    const float g = gate[i];
    if (g <= -10.0f) {
      out[i] = 0.0f;
    } else if (g >= 10.0f) {
      out[i] = g * up[i];
    } else {
      out[i] = table[fp32_to_fp16(g)] * up[i];
    }
  }
}

}  // namespace chatrec::llm::runtime
