#pragma once
// Tensor element types of the GGUF/ggml format and their block layouts: how many elements one block
// holds, how many bytes it takes, and how to turn blocks back into floats. The layouts follow the
// published ggml format; the runtime reads weights straight out of the memory-mapped file.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace chatrec::llm::runtime {

enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q8_0 = 8,
  Q8_1 = 9,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
};

inline constexpr int kQK = 32;    // elements per block of the simple quants
inline constexpr int kQKK = 256;  // elements per super-block of the K-quants
inline constexpr int kKScaleBytes = 12;

// Weight blocks exactly as stored in the file (fp16 fields as raw bits).
struct BlockQ4_0 {
  std::uint16_t d;
  std::uint8_t
      qs[kQK / 2];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {
  std::uint16_t d;
  std::uint16_t m;
  std::uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  std::uint16_t d;
  std::uint8_t qh[4];  // bit j: the fifth bit of element j
  std::uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
  std::uint16_t d;
  std::int8_t qs[kQK];
};
struct BlockQ4_K {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[kKScaleBytes];  // 8 six-bit scales and 8 six-bit mins
  std::uint8_t qs[kQKK / 2];
};
struct BlockQ5_K {
  std::uint16_t d;
  std::uint16_t dmin;
  std::uint8_t scales[kKScaleBytes];
  std::uint8_t qh[kQKK / 8];
  std::uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
  std::uint8_t ql[kQKK / 2];
  std::uint8_t qh[kQKK / 4];
  std::int8_t scales[kQKK / 16];
  std::uint16_t d;
};
static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// Activation blocks (runtime-internal, never stored in files): the input vector of a matrix-vector
// product is quantised to 8 bits once so that every weight row can be multiplied with integer
// arithmetic.
struct BlockQ8A {  // pairs with Q4_0, Q5_0 and Q8_0 weights
  float d;
  std::int8_t qs[kQK];
};
struct BlockQ8S {  // pairs with Q4_1 weights: also carries d * sum(qs) for the weight minimum
  float d;
  float s;
  std::int8_t qs[kQK];
};
struct BlockQ8K {  // pairs with the K-quants
  float d;
  std::int8_t qs[kQKK];
  std::int16_t bsums[kQKK / 16];
};

struct TypeTraits {
  const char* name;
  int block_elems;
  std::size_t block_bytes;
};

// nullopt for types the runtime does not support.
std::optional<TypeTraits> type_traits(std::uint32_t type);
std::string type_name(std::uint32_t type);
// Bytes of a row of `n` elements (n must be a multiple of the block size).
std::size_t row_bytes(GgmlType type, std::int64_t n);

// Every half converts through one table lookup (dot-product kernels convert two scales per block);
// the table is built at compile time so that it is usable during static initialisation too.
extern const std::array<float, 65536> kFp16ToFp32;
inline float fp16_to_fp32(std::uint16_t h) {
  return kFp16ToFp32[h];
}
std::uint16_t fp32_to_fp16(float f);
// The float nearest to f that fp16 can hold (the KV cache and fp16 accumulators store such values).
inline float round_fp16(float f) {
  return fp16_to_fp32(fp32_to_fp16(f));
}

// Six-bit scale j and min j of a K-quant super-block.
inline void k_scale_min(int j, const std::uint8_t* q, std::uint8_t& scale, std::uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Row of `n` elements of `type` at `src` to floats.
void dequantize_row(GgmlType type, const void* src, float* dst, std::int64_t n);

// Activation quantisers (n a multiple of the block size).
void quantize_row_q8a(const float* x, BlockQ8A* y, std::int64_t n);
void quantize_row_q8s(const float* x, BlockQ8S* y, std::int64_t n);
void quantize_row_q8k(const float* x, BlockQ8K* y, std::int64_t n);

}  // namespace chatrec::llm::runtime
