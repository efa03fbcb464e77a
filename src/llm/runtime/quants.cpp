#include "llm/runtime/quants.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <memory>

namespace chatrec::llm::runtime {

std::optional<TypeTraits> type_traits(std::uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32:
      return TypeTraits{"F32", 1, 4};
    case GgmlType::F16:
      return TypeTraits{"F16", 1, 2};
    case GgmlType::Q4_0:
      return TypeTraits{"Q4_0", kQK, sizeof(BlockQ4_0)};
    case GgmlType::Q4_1:
      return TypeTraits{"Q4_1", kQK, sizeof(BlockQ4_1)};
    case GgmlType::Q5_0:
      return TypeTraits{"Q5_0", kQK, sizeof(BlockQ5_0)};
    case GgmlType::Q8_0:
      return TypeTraits{"Q8_0", kQK, sizeof(BlockQ8_0)};
    case GgmlType::Q4_K:
      return TypeTraits{"Q4_K", kQKK, sizeof(BlockQ4_K)};
    case GgmlType::Q5_K:
      return TypeTraits{"Q5_K", kQKK, sizeof(BlockQ5_K)};
    case GgmlType::Q6_K:
      return TypeTraits{"Q6_K", kQKK, sizeof(BlockQ6_K)};
    default:
      return std::nullopt;
  }
}

std::string type_name(std::uint32_t type) {
  if (auto t = type_traits(type)) return t->name;
  return "type#" + std::to_string(type);
}

std::size_t row_bytes(GgmlType type, std::int64_t n) {
  auto t = type_traits(static_cast<std::uint32_t>(type));
  return static_cast<std::size_t>(n / t->block_elems) * t->block_bytes;
}

namespace {
constexpr float fp16_to_fp32_bits(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  std::uint32_t exp = (h >> 10) & 0x1F;
  std::uint32_t mant = h & 0x3FF;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3FF;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

constexpr std::array<float, 65536> make_fp16_table() {
  std::array<float, 65536> t{};
  for (std::uint32_t i = 0; i < 65536; ++i) t[i] = fp16_to_fp32_bits(static_cast<std::uint16_t>(i));
  return t;
}
}  // namespace

constinit const std::array<float, 65536> kFp16ToFp32 = make_fp16_table();

std::uint16_t fp32_to_fp16(float f) {
  // Round-to-nearest-even conversion.
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000;
  const std::uint32_t abs = x & 0x7FFFFFFF;
  if (abs >= 0x7F800000)
    return static_cast<std::uint16_t>(sign | 0x7C00 | (abs > 0x7F800000 ? 0x200 : 0));
  if (abs >= 0x477FF000) return static_cast<std::uint16_t>(sign | 0x7C00);  // overflow to inf
  if (abs < 0x38800000) {                                                   // subnormal or zero
    const float a = std::bit_cast<float>(abs);
    const auto m = static_cast<std::uint32_t>(std::nearbyint(a * 16777216.0f));  // a / 2^-24
    return static_cast<std::uint16_t>(sign | m);
  }
  std::uint32_t mant = abs & 0x7FFFFF;
  std::uint32_t exp = (abs >> 23) - 127 + 15;
  std::uint32_t h = (exp << 10) | (mant >> 13);
  const std::uint32_t rest = mant & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

void dequantize_row(GgmlType type, const void* src, float* y, std::int64_t n) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(y, src, static_cast<std::size_t>(n) * 4);
      return;
    case GgmlType::F16: {
      const auto* h = static_cast<const std::uint16_t*>(src);
      for (std::int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(h[i]);
      return;
    }
    case GgmlType::Q4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(src);
      for (std::int64_t i = 0; i < n / kQK; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK / 2; ++j) {
          y[j] = d * static_cast<float>((b[i].qs[j] & 0xF) - 8);
          y[j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
        }
      }
      return;
    }
    case GgmlType::Q4_1: {
      const auto* b = static_cast<const BlockQ4_1*>(src);
      for (std::int64_t i = 0; i < n / kQK; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < kQK / 2; ++j) {
          y[j] = d * static_cast<float>(b[i].qs[j] & 0xF) + m;
          y[j + 16] = d * static_cast<float>(b[i].qs[j] >> 4) + m;
        }
      }
      return;
    }
    case GgmlType::Q5_0: {
      const auto* b = static_cast<const BlockQ5_0*>(src);
      for (std::int64_t i = 0; i < n / kQK; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        std::uint32_t qh;
        std::memcpy(&qh, b[i].qh, sizeof(qh));
        for (int j = 0; j < kQK / 2; ++j) {
          const int lo = (b[i].qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1u) << 4);
          const int hi = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
          y[j] = d * static_cast<float>(lo - 16);
          y[j + 16] = d * static_cast<float>(hi - 16);
        }
      }
      return;
    }
    case GgmlType::Q8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(src);
      for (std::int64_t i = 0; i < n / kQK; ++i, y += kQK) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < kQK; ++j) y[j] = d * static_cast<float>(b[i].qs[j]);
      }
      return;
    }
    case GgmlType::Q4_K: {
      const auto* b = static_cast<const BlockQ4_K*>(src);
      for (std::int64_t i = 0; i < n / kQKK; ++i) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        const std::uint8_t* q = b[i].qs;
        for (int j = 0; j < 8; j += 2, q += 32) {
          std::uint8_t sc, m;
          k_scale_min(j, b[i].scales, sc, m);
          const float d1 = d * sc, m1 = dmin * m;
          k_scale_min(j + 1, b[i].scales, sc, m);
          const float d2 = d * sc, m2 = dmin * m;
          for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
          for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
      }
      return;
    }
    case GgmlType::Q5_K: {
      const auto* b = static_cast<const BlockQ5_K*>(src);
      for (std::int64_t i = 0; i < n / kQKK; ++i) {
        const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
        const std::uint8_t* ql = b[i].qs;
        const std::uint8_t* qh = b[i].qh;
        std::uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 8; j += 2, ql += 32) {
          std::uint8_t sc, m;
          k_scale_min(j, b[i].scales, sc, m);
          const float d1 = d * sc, m1 = dmin * m;
          k_scale_min(j + 1, b[i].scales, sc, m);
          const float d2 = d * sc, m2 = dmin * m;
          for (int l = 0; l < 32; ++l)
            *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
          for (int l = 0; l < 32; ++l)
            *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
          u1 = static_cast<std::uint8_t>(u1 << 2);
          u2 = static_cast<std::uint8_t>(u2 << 2);
        }
      }
      return;
    }
    case GgmlType::Q6_K: {
      const auto* b = static_cast<const BlockQ6_K*>(src);
      for (std::int64_t i = 0; i < n / kQKK; ++i) {
        const float d = fp16_to_fp32(b[i].d);
        const std::uint8_t* ql = b[i].ql;
        const std::uint8_t* qh = b[i].qh;
        const std::int8_t* sc = b[i].scales;
        for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * static_cast<float>(q1);
            y[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
            y[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
            y[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
          }
        }
      }
      return;
    }
    default:
      break;
  }
  std::fill(y, y + n, 0.0f);
}

void quantize_row_q8a(const float* x, BlockQ8A* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    // The scale is rounded to fp16 like ggml's q8_0 activations, so that results track llama.cpp
    // closely.
    y[i].d = fp16_to_fp32(fp32_to_fp16(d));
    for (int j = 0; j < kQK; ++j) y[i].qs[j] = static_cast<std::int8_t>(std::lrintf(x[j] * id));
  }
}

void quantize_row_q8s(const float* x, BlockQ8S* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      y[i].qs[j] = static_cast<std::int8_t>(std::lrintf(x[j] * id));
      sum += y[i].qs[j];
    }
    y[i].d = fp16_to_fp32(fp32_to_fp16(d));  // fp16 like ggml's q8_1
    y[i].s = fp16_to_fp32(fp32_to_fp16(d * static_cast<float>(sum)));
  }
}

void quantize_row_q8k(const float* x, BlockQ8K* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQKK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    // The extreme value maps to -127 (as ggml's q8_K does), so every quant can be negated.
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQKK; ++j) {
      const long v = std::lrintf(iscale * x[j]);
      y[i].qs[j] = static_cast<std::int8_t>(std::min(127L, v));
    }
    for (int j = 0; j < kQKK / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[j * 16 + l];
      y[i].bsums[j] = static_cast<std::int16_t>(sum);
    }
    y[i].d = 1.0f / iscale;
  }
}

}  // namespace chatrec::llm::runtime
