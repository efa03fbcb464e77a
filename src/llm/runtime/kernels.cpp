#include "llm/runtime/kernels.h"

#include <cpuid.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace chatrec::llm::runtime {
namespace {

// ---- activation formats
// -------------------------------------------------------------------------------

enum class ActFormat { kF32, kQ8A, kQ8S, kQ8K };

ActFormat act_format(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
      return ActFormat::kF32;
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0:
      return ActFormat::kQ8A;
    case GgmlType::Q4_1:
      return ActFormat::kQ8S;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K:
      return ActFormat::kQ8K;
    default:
      throw std::invalid_argument("matmul: unsupported weight type " +
                                  type_name(static_cast<std::uint32_t>(type)));
  }
}

std::size_t act_row_bytes(ActFormat f, std::int64_t n) {
  switch (f) {
    case ActFormat::kF32:
      return static_cast<std::size_t>(n) * sizeof(float);
    case ActFormat::kQ8A:
      return static_cast<std::size_t>(n / kQK) * sizeof(BlockQ8A);
    case ActFormat::kQ8S:
      return static_cast<std::size_t>(n / kQK) * sizeof(BlockQ8S);
    case ActFormat::kQ8K:
      return static_cast<std::size_t>(n / kQKK) * sizeof(BlockQ8K);
  }
  return 0;
}

void quantize_act(ActFormat f, const float* x, void* dst, std::int64_t n) {
  switch (f) {
    case ActFormat::kF32:
      std::memcpy(dst, x, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case ActFormat::kQ8A:
      quantize_row_q8a(x, static_cast<BlockQ8A*>(dst), n);
      return;
    case ActFormat::kQ8S:
      quantize_row_q8s(x, static_cast<BlockQ8S*>(dst), n);
      return;
    case ActFormat::kQ8K:
      quantize_row_q8k(x, static_cast<BlockQ8K*>(dst), n);
      return;
  }
}

using RowDot = float (*)(const void* w, const void* a, std::int64_t n);

// ---- scalar kernels
// -----------------------------------------------------------------------------------

float dot_f32_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  float s = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) s += x[i] * y[i];
  return s;
}

float dot_f16_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const std::uint16_t*>(w);
  const auto* y = static_cast<const float*>(a);
  float s = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) s += fp16_to_fp32(x[i]) * y[i];
  return s;
}

float dot_q4_0_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8A*>(a);
  float s = 0.0f;
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    }
    s += static_cast<float>(sumi) * fp16_to_fp32(x[i].d) * y[i].d;
  }
  return s;
}

float dot_q4_1_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const auto* y = static_cast<const BlockQ8S*>(a);
  float s = 0.0f;
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK / 2; ++j)
      sumi += (x[i].qs[j] & 0xF) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
    s += static_cast<float>(sumi) * fp16_to_fp32(x[i].d) * y[i].d + fp16_to_fp32(x[i].m) * y[i].s;
  }
  return s;
}

// The 32 signed 5-bit quants of a Q5_0 block (-16 .. 15) in element order.
void unpack_q5_0(const BlockQ5_0& b, std::int8_t* q) {
  std::uint32_t qh;
  std::memcpy(&qh, b.qh, sizeof(qh));
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = static_cast<std::int8_t>(((b.qs[j] & 0xF) | (((qh >> j) & 1u) << 4)) - 16);
    q[j + 16] = static_cast<std::int8_t>(((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - 16);
  }
}

float dot_q5_0_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const auto* y = static_cast<const BlockQ8A*>(a);
  float s = 0.0f;
  std::int8_t q[kQK];
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    unpack_q5_0(x[i], q);
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += q[j] * y[i].qs[j];
    s += static_cast<float>(sumi) * fp16_to_fp32(x[i].d) * y[i].d;
  }
  return s;
}

float dot_q8_0_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8A*>(a);
  float s = 0.0f;
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < kQK; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    s += static_cast<float>(sumi) * fp16_to_fp32(x[i].d) * y[i].d;
  }
  return s;
}

// K-quants: unpack a super-block's integer quants, then integer dots per sub-block. The minimum
// terms use the activation's per-16 sums, so they cost nothing per element.
float dot_q4_k_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(a);
  float s = 0.0f;
  std::uint8_t q[kQKK];
  for (std::int64_t i = 0; i < n / kQKK; ++i) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) {
        q[64 * j + l] = x[i].qs[32 * j + l] & 0xF;
        q[64 * j + 32 + l] = x[i].qs[32 * j + l] >> 4;
      }
    }
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      std::uint8_t sc, m;
      k_scale_min(j, x[i].scales, sc, m);
      int dot = 0;
      for (int l = 0; l < 32; ++l) dot += q[32 * j + l] * y[i].qs[32 * j + l];
      sumi += sc * dot;
      summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    }
    s += y[i].d * (fp16_to_fp32(x[i].d) * static_cast<float>(sumi) -
                   fp16_to_fp32(x[i].dmin) * static_cast<float>(summ));
  }
  return s;
}

float dot_q5_k_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ5_K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(a);
  float s = 0.0f;
  std::uint8_t q[kQKK];
  for (std::int64_t i = 0; i < n / kQKK; ++i) {
    for (int j = 0; j < 4; ++j) {
      const int u1 = 1 << (2 * j), u2 = 2 << (2 * j);
      for (int l = 0; l < 32; ++l) {
        q[64 * j + l] =
            static_cast<std::uint8_t>((x[i].qs[32 * j + l] & 0xF) + (x[i].qh[l] & u1 ? 16 : 0));
        q[64 * j + 32 + l] =
            static_cast<std::uint8_t>((x[i].qs[32 * j + l] >> 4) + (x[i].qh[l] & u2 ? 16 : 0));
      }
    }
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; ++j) {
      std::uint8_t sc, m;
      k_scale_min(j, x[i].scales, sc, m);
      int dot = 0;
      for (int l = 0; l < 32; ++l) dot += q[32 * j + l] * y[i].qs[32 * j + l];
      sumi += sc * dot;
      summ += m * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
    }
    s += y[i].d * (fp16_to_fp32(x[i].d) * static_cast<float>(sumi) -
                   fp16_to_fp32(x[i].dmin) * static_cast<float>(summ));
  }
  return s;
}

// The 6-bit quants of a super-block in element order, minus `offset` (32 gives the signed values).
void unpack_q6_k(const BlockQ6_K& b, std::int8_t* q, int offset) {
  const std::uint8_t* ql = b.ql;
  const std::uint8_t* qh = b.qh;
  for (int half = 0; half < 2; ++half, q += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      q[l] = static_cast<std::int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - offset);
      q[l + 32] =
          static_cast<std::int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - offset);
      q[l + 64] = static_cast<std::int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - offset);
      q[l + 96] =
          static_cast<std::int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - offset);
    }
  }
}

float dot_q6_k_scalar(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(a);
  float s = 0.0f;
  std::int8_t q[kQKK];
  for (std::int64_t i = 0; i < n / kQKK; ++i) {
    unpack_q6_k(x[i], q, 32);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {  // scale j covers elements 16j .. 16j+15
      int dot = 0;
      for (int l = 0; l < 16; ++l) dot += q[16 * j + l] * y[i].qs[16 * j + l];
      sumi += x[i].scales[j] * dot;
    }
    s += y[i].d * fp16_to_fp32(x[i].d) * static_cast<float>(sumi);
  }
  return s;
}

// ---- AVX2 kernels
// -------------------------------------------------------------------------------------

#define CHATREC_AVX2 __attribute__((target("avx2,fma,f16c")))

CHATREC_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 32 nibbles: low nibbles of the 16 bytes first, then the high nibbles (the ggml element order).
CHATREC_AVX2 inline __m256i unpack_nibbles(const std::uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Products of unsigned bytes (< 128) with signed bytes, summed to 8 int32 lanes.
// With AVX-VNNI (builds for the native CPU) one instruction does both steps; the sums are the
// same integers (the 16-bit intermediate of the two-step form never saturates for these inputs).
CHATREC_AVX2 inline __m256i dot_u8_i8(__m256i u, __m256i s) {
#if defined(__AVXVNNI__)
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}
CHATREC_AVX2 inline __m256i dot_i8_i8(__m256i x, __m256i y) {
  return dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

CHATREC_AVX2 float dot_f32_avx2(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const float*>(w);
  const auto* y = static_cast<const float*>(a);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  std::int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
  }
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += x[i] * y[i];
  return s;
}

CHATREC_AVX2 float dot_q4_0_avx2(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ4_0*>(w);
  const auto* y = static_cast<const BlockQ8A*>(a);
  __m256 acc = _mm256_setzero_ps();
  const __m256i eight = _mm256_set1_epi8(8);
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qx = _mm256_sub_epi8(unpack_nibbles(x[i].qs), eight);
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[i].d) * y[i].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc);
  }
  return hsum(acc);
}

CHATREC_AVX2 float dot_q4_1_avx2(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const auto* y = static_cast<const BlockQ8S*>(a);
  __m256 acc = _mm256_setzero_ps();
  float mins = 0.0f;
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qx = unpack_nibbles(x[i].qs);
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[i].d) * y[i].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_u8_i8(qx, qy)), acc);
    mins += fp16_to_fp32(x[i].m) * y[i].s;
  }
  return hsum(acc) + mins;
}

CHATREC_AVX2 float dot_q8_0_avx2(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const auto* y = static_cast<const BlockQ8A*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[i].d) * y[i].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc);
  }
  return hsum(acc);
}

// The 32 quants of a Q5_0 block as signed bytes (-16 .. 15), in element order.
CHATREC_AVX2 inline __m256i unpack_q5_0_avx2(const BlockQ5_0& b) {
  std::uint32_t qh;
  std::memcpy(&qh, b.qh, sizeof(qh));
  // Spread bit j of qh to byte j, then set the top nibble of bytes whose bit is clear: nibble n
  // with bit 0 is n - 16 as a signed byte, with bit 1 it is n + 16 - 16.
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL, 0x0101010101010101LL, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_or_si256(unpack_nibbles(b.qs),
                         _mm256_andnot_si256(set, _mm256_set1_epi8(static_cast<char>(0xF0))));
}

CHATREC_AVX2 float dot_q5_0_avx2(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const auto* y = static_cast<const BlockQ8A*>(a);
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qx = unpack_q5_0_avx2(x[i]);
    const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs));
    const __m256 d = _mm256_set1_ps(fp16_to_fp32(x[i].d) * y[i].d);
    acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(dot_i8_i8(qx, qy)), acc);
  }
  return hsum(acc);
}

// The K-quant kernels keep ggml's AVX2 lane structure: eight int32 lanes, lane m holding the
// scaled products of bytes 4m .. 4m+3 of every 32-element group, converted to float and
// accumulated per lane across super-blocks, reduced once at the end. Another partition gives the
// same sum in exact arithmetic but rounds differently, and llama.cpp's greedy choices follow these
// roundings.
CHATREC_AVX2 float dot_q4_k_avx2(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ4_K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(a);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (std::int64_t i = 0; i < n / kQKK; ++i) {
    const float d = y[i].d * fp16_to_fp32(x[i].d);
    const float dmin = -y[i].d * fp16_to_fp32(x[i].dmin);
    std::uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; ++j) k_scale_min(j, x[i].scales, sc[j], mn[j]);
    // Minimum terms: lane k holds sub-blocks 2k and 2k+1 (32-element sums of the activation).
    alignas(16) std::int32_t prod[4];
    for (int k = 0; k < 4; ++k) {
      const int s0 = y[i].bsums[4 * k] + y[i].bsums[4 * k + 1];
      const int s1 = y[i].bsums[4 * k + 2] + y[i].bsums[4 * k + 3];
      prod[k] = mn[2 * k] * s0 + mn[2 * k + 1] * s1;
    }
    acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin),
                         _mm_cvtepi32_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(prod))),
                         acc_m);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {  // 64 elements: the low nibbles, then the high nibbles
      const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs + 32 * j));
      const __m256i ql = _mm256_and_si256(bits, low4);
      const __m256i qh = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
      const __m256i yl = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 64 * j));
      const __m256i yh =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 64 * j + 32));
      const __m256i pl =
          _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j]), _mm256_maddubs_epi16(ql, yl));
      const __m256i ph =
          _mm256_madd_epi16(_mm256_set1_epi16(sc[2 * j + 1]), _mm256_maddubs_epi16(qh, yh));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
    }
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
  }
  acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
  acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
  return hsum(acc) + _mm_cvtss_f32(acc_m);
}

CHATREC_AVX2 float dot_q6_k_avx2(const void* w, const void* a, std::int64_t n) {
  const auto* x = static_cast<const BlockQ6_K*>(w);
  const auto* y = static_cast<const BlockQ8K*>(a);
  alignas(32) std::int8_t q[kQKK];
  __m256 acc = _mm256_setzero_ps();
  for (std::int64_t i = 0; i < n / kQKK; ++i) {
    const float d = y[i].d * fp16_to_fp32(x[i].d);
    // Unsigned quants (0..63) times the activation; the -32 offset goes through the activation's
    // 16-element sums, lane m taking scale groups 2m and 2m+1.
    unpack_q6_k(x[i], q, 0);
    __m256i sumi = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {  // 32 elements = two scale groups of 16
      const __m256i qx = _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32 * j));
      const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].qs + 32 * j));
      const __m256i scales = _mm256_set_m128i(_mm_set1_epi16(x[i].scales[2 * j + 1]),
                                              _mm_set1_epi16(x[i].scales[2 * j]));
      sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scales, _mm256_maddubs_epi16(qx, qy)));
    }
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[i].bsums));
    const __m256i scales16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].scales)));
    const __m256i offset = _mm256_slli_epi32(_mm256_madd_epi16(bsums, scales16), 5);
    acc =
        _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi, offset)), acc);
  }
  return hsum(acc);
}

// Four tokens at once: each weight block is unpacked once and multiplied with four activation rows,
// which is what makes batched prefill cheaper per token than decode.
using RowDot4 = void (*)(const void* w, const std::uint8_t* a, std::size_t a_stride, std::int64_t n,
                         float* out);

CHATREC_AVX2 void dot4_q4_1_avx2(const void* w, const std::uint8_t* a, std::size_t a_stride,
                                 std::int64_t n, float* out) {
  const auto* x = static_cast<const BlockQ4_1*>(w);
  const BlockQ8S* y[4];
  for (int t = 0; t < 4; ++t)
    y[t] = reinterpret_cast<const BlockQ8S*>(a + a_stride * static_cast<std::size_t>(t));
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  float mins[4] = {0, 0, 0, 0};
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qx = unpack_nibbles(x[i].qs);
    const float dx = fp16_to_fp32(x[i].d), mx = fp16_to_fp32(x[i].m);
    for (int t = 0; t < 4; ++t) {
      const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[t][i].qs));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dx * y[t][i].d),
                               _mm256_cvtepi32_ps(dot_u8_i8(qx, qy)), acc[t]);
      mins[t] += mx * y[t][i].s;
    }
  }
  for (int t = 0; t < 4; ++t) out[t] = hsum(acc[t]) + mins[t];
}

CHATREC_AVX2 void dot4_q8_0_avx2(const void* w, const std::uint8_t* a, std::size_t a_stride,
                                 std::int64_t n, float* out) {
  const auto* x = static_cast<const BlockQ8_0*>(w);
  const BlockQ8A* y[4];
  for (int t = 0; t < 4; ++t)
    y[t] = reinterpret_cast<const BlockQ8A*>(a + a_stride * static_cast<std::size_t>(t));
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i].qs));
    const __m256i ax = _mm256_sign_epi8(qx, qx);
    const float dx = fp16_to_fp32(x[i].d);
    for (int t = 0; t < 4; ++t) {
      const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[t][i].qs));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dx * y[t][i].d),
                               _mm256_cvtepi32_ps(dot_u8_i8(ax, _mm256_sign_epi8(qy, qx))), acc[t]);
    }
  }
  for (int t = 0; t < 4; ++t) out[t] = hsum(acc[t]);
}

CHATREC_AVX2 void dot4_q5_0_avx2(const void* w, const std::uint8_t* a, std::size_t a_stride,
                                 std::int64_t n, float* out) {
  const auto* x = static_cast<const BlockQ5_0*>(w);
  const BlockQ8A* y[4];
  for (int t = 0; t < 4; ++t)
    y[t] = reinterpret_cast<const BlockQ8A*>(a + a_stride * static_cast<std::size_t>(t));
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  for (std::int64_t i = 0; i < n / kQK; ++i) {
    const __m256i qx = unpack_q5_0_avx2(x[i]);
    const __m256i ax = _mm256_sign_epi8(qx, qx);
    const float dx = fp16_to_fp32(x[i].d);
    for (int t = 0; t < 4; ++t) {
      const __m256i qy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y[t][i].qs));
      acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dx * y[t][i].d),
                               _mm256_cvtepi32_ps(dot_u8_i8(ax, _mm256_sign_epi8(qy, qx))), acc[t]);
    }
  }
  for (int t = 0; t < 4; ++t) out[t] = hsum(acc[t]);
}

// ---- dispatch
// -----------------------------------------------------------------------------------------

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

std::atomic<KernelIsa>& isa_state() {
  static std::atomic<KernelIsa> isa{cpu_has_avx2() ? KernelIsa::kAvx2 : KernelIsa::kScalar};
  return isa;
}

RowDot row_dot_fn(GgmlType type) {
  const bool avx2 = isa_state().load(std::memory_order_relaxed) == KernelIsa::kAvx2;
  switch (type) {
    case GgmlType::F32:
      return avx2 ? dot_f32_avx2 : dot_f32_scalar;
    case GgmlType::F16:
      return dot_f16_scalar;
    case GgmlType::Q4_0:
      return avx2 ? dot_q4_0_avx2 : dot_q4_0_scalar;
    case GgmlType::Q4_1:
      return avx2 ? dot_q4_1_avx2 : dot_q4_1_scalar;
    case GgmlType::Q5_0:
      return avx2 ? dot_q5_0_avx2 : dot_q5_0_scalar;
    case GgmlType::Q8_0:
      return avx2 ? dot_q8_0_avx2 : dot_q8_0_scalar;
    case GgmlType::Q4_K:
      return avx2 ? dot_q4_k_avx2 : dot_q4_k_scalar;
    case GgmlType::Q5_K:
      return dot_q5_k_scalar;
    case GgmlType::Q6_K:
      return avx2 ? dot_q6_k_avx2 : dot_q6_k_scalar;
    default:
      throw std::invalid_argument("matmul: unsupported weight type " +
                                  type_name(static_cast<std::uint32_t>(type)));
  }
}

// ---- attention
// ----------------------------------------------------------------------------------------

// K·Q dot product summed in the order of llama.cpp's CPU flash attention (ggml_vec_dot_f16 as built
// for AVX-512): 64-element steps into four 16-lane accumulators, which are then added pairwise
// (0+2, 1+3, 0+1) and reduced lane by lane like _mm512_reduce_add_ps (halves 8, 4, 2, 1); elements
// after the last full step are added in double. Products of fp16-representable values are exact in
// float, so the summation order is all that matters for bit-identical scores.
float dot_kq(const float* q, const float* k, int dim) {
  float acc[64] = {};
  const int steps = dim & ~63;
  for (int i = 0; i < steps; i += 64)
    for (int l = 0; l < 64; ++l) acc[l] = std::fma(q[i + l], k[i + l], acc[l]);
  for (int l = 0; l < 32; ++l) acc[l] += acc[l + 32];
  for (int l = 0; l < 16; ++l) acc[l] += acc[l + 16];
  for (int l = 0; l < 8; ++l) acc[l] += acc[l + 8];
  for (int l = 0; l < 4; ++l) acc[l] += acc[l + 4];
  double sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);
  for (int i = steps; i < dim; ++i) sum += static_cast<double>(q[i] * k[i]);
  return static_cast<float>(sum);
}

void attend_head_scalar(const float* q, const float* k, const float* v, std::size_t stride, int len,
                        int dim, float scale, float* out) {
  float m = -INFINITY, sum = 0.0f;
  std::fill(out, out + dim, 0.0f);
  for (int j = 0; j < len; ++j) {
    const float* kj = k + static_cast<std::size_t>(j) * stride;
    const float s = dot_kq(q, kj, dim) * scale;
    float ms = 1.0f, vs = 1.0f;
    if (s > m) {
      ms = std::exp(m - s);
      m = s;
      for (int d = 0; d < dim; ++d) out[d] = round_fp16(out[d] * ms);
    } else {
      vs = std::exp(s - m);
    }
    const float* vj = v + static_cast<std::size_t>(j) * stride;
    for (int d = 0; d < dim; ++d) out[d] = round_fp16(std::fma(vj[d], vs, out[d]));
    sum = sum * ms + vs;
  }
  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int d = 0; d < dim; ++d) out[d] *= inv;
}

#define CHATREC_AVX2_F16C __attribute__((target("avx2,fma,f16c")))

CHATREC_AVX2_F16C inline __m256 round_fp16_ps(__m256 x) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

// dot_kq with eight 8-lane registers standing for the four 16-lane accumulators (same sums).
CHATREC_AVX2_F16C inline float dot_kq_avx2(const float* q, const float* k, int dim) {
  __m256 acc[8];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  const int steps = dim & ~63;
  for (int i = 0; i < steps; i += 64) {
    for (int r = 0; r < 8; ++r) {
      acc[r] =
          _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8 * r), _mm256_loadu_ps(k + i + 8 * r), acc[r]);
    }
  }
  for (int r = 0; r < 4; ++r) acc[r] = _mm256_add_ps(acc[r], acc[r + 4]);
  acc[0] = _mm256_add_ps(acc[0], acc[2]);
  acc[1] = _mm256_add_ps(acc[1], acc[3]);
  const __m256 s8 = _mm256_add_ps(acc[0], acc[1]);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_shuffle_ps(s4, s4, _MM_SHUFFLE(1, 0, 3, 2)));
  double sum = _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, _MM_SHUFFLE(1, 1, 1, 1))));
  for (int i = steps; i < dim; ++i) sum += static_cast<double>(q[i] * k[i]);
  return static_cast<float>(sum);
}

CHATREC_AVX2_F16C void attend_head_avx2(const float* q, const float* k, const float* v,
                                        std::size_t stride, int len, int dim, float scale,
                                        float* out) {
  float m = -INFINITY, sum = 0.0f;
  std::fill(out, out + dim, 0.0f);
  for (int j = 0; j < len; ++j) {
    const float s = dot_kq_avx2(q, k + static_cast<std::size_t>(j) * stride, dim) * scale;
    float ms = 1.0f, vs = 1.0f;
    if (s > m) {
      ms = std::exp(m - s);
      m = s;
      const __m256 vms = _mm256_set1_ps(ms);
      for (int d = 0; d < dim; d += 8)
        _mm256_storeu_ps(out + d, round_fp16_ps(_mm256_mul_ps(_mm256_loadu_ps(out + d), vms)));
    } else {
      vs = std::exp(s - m);
    }
    const float* vj = v + static_cast<std::size_t>(j) * stride;
    const __m256 vvs = _mm256_set1_ps(vs);
    for (int d = 0; d < dim; d += 8) {
      _mm256_storeu_ps(out + d, round_fp16_ps(_mm256_fmadd_ps(_mm256_loadu_ps(vj + d), vvs,
                                                              _mm256_loadu_ps(out + d))));
    }
    sum = sum * ms + vs;
  }
  const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
  for (int d = 0; d < dim; ++d) out[d] *= inv;
}

// attend_head_avx2 for a head dimension known at compile time: the fp16 value accumulator stays in
// registers across positions instead of going through memory (same operations, same results).
template <int kDim>
CHATREC_AVX2_F16C void attend_head_avx2_fixed(const float* q, const float* k, const float* v,
                                              std::size_t stride, int len, float scale,
                                              float* out) {
  static_assert(kDim % 64 == 0);
  constexpr int kRegs = kDim / 8;
  __m256 acc[kRegs];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  float m = -INFINITY, sum = 0.0f;
  for (int j = 0; j < len; ++j) {
    const float s = dot_kq_avx2(q, k + static_cast<std::size_t>(j) * stride, kDim) * scale;
    float ms = 1.0f, vs = 1.0f;
    if (s > m) {
      ms = std::exp(m - s);
      m = s;
      const __m256 vms = _mm256_set1_ps(ms);
      for (__m256& a : acc) a = round_fp16_ps(_mm256_mul_ps(a, vms));
    } else {
      vs = std::exp(s - m);
    }
    const float* vj = v + static_cast<std::size_t>(j) * stride;
    const __m256 vvs = _mm256_set1_ps(vs);
    for (int r = 0; r < kRegs; ++r)
      acc[r] = round_fp16_ps(_mm256_fmadd_ps(_mm256_loadu_ps(vj + 8 * r), vvs, acc[r]));
    sum = sum * ms + vs;
  }
  const __m256 inv = _mm256_set1_ps(sum > 0.0f ? 1.0f / sum : 0.0f);
  for (int r = 0; r < kRegs; ++r) _mm256_storeu_ps(out + 8 * r, _mm256_mul_ps(acc[r], inv));
}

bool cpu_has_f16c() {
  // CPUID leaf 1, ECX bit 29: clang before 15 does not know "f16c" in __builtin_cpu_supports.
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
  }();
  return has;
}

RowDot4 row_dot4_fn(GgmlType type) {
  if (isa_state().load(std::memory_order_relaxed) != KernelIsa::kAvx2) return nullptr;
  switch (type) {
    case GgmlType::Q4_1:
      return dot4_q4_1_avx2;
    case GgmlType::Q5_0:
      return dot4_q5_0_avx2;
    case GgmlType::Q8_0:
      return dot4_q8_0_avx2;
    default:
      return nullptr;
  }
}

}  // namespace

void attend_head(const float* q, const float* k, const float* v, std::size_t stride, int len,
                 int dim, float scale, float* out) {
  if (active_isa() == KernelIsa::kAvx2 && cpu_has_f16c() && dim % 8 == 0) {
    if (dim == 64) return attend_head_avx2_fixed<64>(q, k, v, stride, len, scale, out);
    if (dim == 128) return attend_head_avx2_fixed<128>(q, k, v, stride, len, scale, out);
    if (dim == 256) return attend_head_avx2_fixed<256>(q, k, v, stride, len, scale, out);
    attend_head_avx2(q, k, v, stride, len, dim, scale, out);
  } else {
    attend_head_scalar(q, k, v, stride, len, dim, scale, out);
  }
}

KernelIsa active_isa() {
  return isa_state().load();
}

void force_isa(KernelIsa isa) {
  isa_state().store(isa == KernelIsa::kAvx2 && !cpu_has_avx2() ? KernelIsa::kScalar : isa);
}

float row_dot(GgmlType type, const void* row, const float* x, std::int64_t n) {
  const ActFormat f = act_format(type);
  std::vector<std::uint8_t> act(act_row_bytes(f, n));
  quantize_act(f, x, act.data(), n);
  return row_dot_fn(type)(row, act.data(), n);
}

void matmul(const WeightMatrix& w, const float* x, int n_tokens, float* y, int threads) {
  const ActFormat f = act_format(w.type);
  const RowDot dot = row_dot_fn(w.type);
  const RowDot4 dot4 = n_tokens >= 4 ? row_dot4_fn(w.type) : nullptr;
  const std::size_t act_bytes = act_row_bytes(f, w.cols);
  thread_local std::vector<std::uint8_t> act;
  if (act.size() < act_bytes * static_cast<std::size_t>(n_tokens))
    act.resize(act_bytes * static_cast<std::size_t>(n_tokens));
  std::uint8_t* act_data = act.data();
  const std::int64_t rows = w.rows;
  // Rows are handed out in chunks so that each thread streams a contiguous part of the weights;
  // within a chunk every token reuses the row while it is in L1.
  const std::int64_t chunk = 16;
  const std::int64_t n_chunks = (rows + chunk - 1) / chunk;
  const int nt = std::max(1, threads);
#pragma omp parallel num_threads(nt) if (nt > 1 && rows * w.cols * n_tokens >= 65536)
  {
#pragma omp for schedule(static)
    for (int t = 0; t < n_tokens; ++t)
      quantize_act(f, x + static_cast<std::int64_t>(t) * w.cols, act_data + act_bytes * t, w.cols);
#pragma omp for schedule(static)
    for (std::int64_t c = 0; c < n_chunks; ++c) {
      const std::int64_t r_end = std::min(rows, (c + 1) * chunk);
      for (std::int64_t r = c * chunk; r < r_end; ++r) {
        const std::uint8_t* row = w.data + static_cast<std::size_t>(r) * w.row_stride;
        int t = 0;
        if (dot4) {
          float out[4];
          for (; t + 4 <= n_tokens; t += 4) {
            dot4(row, act_data + act_bytes * static_cast<std::size_t>(t), act_bytes, w.cols, out);
            for (int k = 0; k < 4; ++k) y[static_cast<std::int64_t>(t + k) * rows + r] = out[k];
          }
        }
        for (; t < n_tokens; ++t)
          y[static_cast<std::int64_t>(t) * rows + r] = dot(row, act_data + act_bytes * t, w.cols);
      }
    }
  }
}

}  // namespace chatrec::llm::runtime
