#include "llm/runtime/kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "gguf_writer.h"
#include "llm/runtime/quants.h"
#include "random_vector.h"

namespace chatrec::llm::runtime {
namespace {

using testing::random_vector;

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::Q4_0,
                           GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0,
                           GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// Quantisation step of each type relative to a block's range: the tolerance of a dequantised
// element.
float relative_step(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
      return 1e-7f;
    case GgmlType::F16:
      return 1e-3f;
    case GgmlType::Q8_0:
      return 1.0f / 127;
    case GgmlType::Q6_K:
      return 1.0f / 24;
    case GgmlType::Q5_K:
      return 1.0f / 24;
    case GgmlType::Q4_0:
      return 1.0f / 7;  // the block's extreme maps to -8, the opposite side clips at +7
    case GgmlType::Q5_0:
      return 1.0f / 15;  // the extreme maps to -16, the opposite side clips at +15
    default:
      return 1.0f / 12;
  }
}

class KernelTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(KernelTest, DequantizeInvertsReferenceQuantizer) {
  const GgmlType type = GetParam();
  const std::int64_t n = 512;
  const auto x = random_vector(n, 1);
  const auto q = testing::quantize(type, x.data(), n);
  ASSERT_EQ(q.size(), row_bytes(type, n));
  std::vector<float> y(n);
  dequantize_row(type, q.data(), y.data(), n);
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  for (std::int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i], amax * relative_step(type)) << i;
}

TEST_P(KernelTest, RowDotMatchesFloatReferenceOnEveryIsa) {
  const GgmlType type = GetParam();
  const std::int64_t n = 1024;
  const auto w = random_vector(n, 2);
  const auto x = random_vector(n, 3);
  const auto q = testing::quantize(type, w.data(), n);
  std::vector<float> wd(n);
  dequantize_row(type, q.data(), wd.data(), n);
  double ref = 0.0, mag = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    ref += static_cast<double>(wd[i]) * x[i];
    mag += std::fabs(static_cast<double>(wd[i]) * x[i]);
  }
  // The activation is quantised to 8 bits (except for float weights): allow ~1% of the magnitude.
  const double tol = (type == GgmlType::F32 || type == GgmlType::F16 ? 1e-5 : 1e-2) * mag;
  const KernelIsa original = active_isa();
  float results[2];
  int k = 0;
  for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
    force_isa(isa);
    results[k] = row_dot(type, q.data(), x.data(), n);
    EXPECT_NEAR(results[k], ref, tol) << "isa " << static_cast<int>(isa);
    ++k;
  }
  force_isa(original);
  EXPECT_NEAR(results[0], results[1], 1e-4 * mag);
}

TEST_P(KernelTest, MatmulOverTokensEqualsRowDots) {
  const GgmlType type = GetParam();
  const std::int64_t cols = 256, rows = 37;
  const int tokens = 5;
  const auto w = random_vector(cols * rows, 4);
  std::vector<std::uint8_t> data;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto q = testing::quantize(type, w.data() + r * cols, cols);
    data.insert(data.end(), q.begin(), q.end());
  }
  WeightMatrix m{type, cols, rows, data.data(), row_bytes(type, cols)};
  const auto x = random_vector(cols * tokens, 5);
  for (int threads : {1, 2}) {
    std::vector<float> y(static_cast<std::size_t>(rows * tokens));
    matmul(m, x.data(), tokens, y.data(), threads);
    for (int t = 0; t < tokens; ++t) {
      for (std::int64_t r = 0; r < rows; ++r) {
        EXPECT_FLOAT_EQ(y[static_cast<std::size_t>(t * rows + r)],
                        row_dot(type, m.data + r * m.row_stride, x.data() + t * cols, cols));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KernelTest, ::testing::ValuesIn(kTypes), [](const auto& info) {
  return type_name(static_cast<std::uint32_t>(info.param));
});

TEST(Fp16, RoundTripsAndRoundsToNearest) {
  for (float v : {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.1f}) {
    EXPECT_NEAR(fp16_to_fp32(fp32_to_fp16(v)), v, std::fabs(v) * 1e-3f) << v;
  }
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_TRUE(std::isinf(fp16_to_fp32(fp32_to_fp16(1e6f))));
}

// Block layouts checked against values computed independently with the gguf Python package's
// dequantisers (gguf-py quants.py) on the same deterministic bytes; see make_reference.py.
std::vector<std::uint8_t> pattern_block(GgmlType type) {
  const std::size_t n = row_bytes(type, kQKK);
  std::vector<std::uint8_t> b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((i * 37 + 11) & 0xFF);
  // Keep the fp16 scales finite and small: d = 0.5 (0x3800), dmin = 0.25 (0x3400).
  auto set16 = [&](std::size_t at, std::uint16_t v) {
    b[at] = static_cast<std::uint8_t>(v & 0xFF);
    b[at + 1] = static_cast<std::uint8_t>(v >> 8);
  };
  if (type == GgmlType::Q6_K) {
    set16(n - 2, 0x3800);
  } else if (type == GgmlType::Q4_K || type == GgmlType::Q5_K) {
    set16(0, 0x3800);
    set16(2, 0x3400);
  } else {  // eight 32-element blocks, each starting with d (and m for Q4_1)
    const std::size_t bs = n / 8;
    for (std::size_t k = 0; k < 8; ++k) {
      set16(k * bs, 0x3800);
      if (type == GgmlType::Q4_1) set16(k * bs + 2, 0x3400);
    }
  }
  return b;
}

struct LayoutReference {
  GgmlType type;
  double weighted_sum;  // sum of v[i] * (i % 7 + 1)
  float samples[6];     // v at 0, 1, 31, 32, 100, 255
};

TEST(BlockLayout, MatchesIndependentDequantizer) {
  const LayoutReference refs[] = {
      {GgmlType::Q4_K, 105074.5, {157.75f, -12.75f, 80.25f, 4.0f, 47.5f, 24.25f}},
      {GgmlType::Q5_K, 229678.5, {405.75f, -12.75f, 80.25f, 56.0f, 117.5f, 54.25f}},
      {GgmlType::Q6_K, 4938.5, {-715.5f, 848.0f, -48.0f, 115.5f, 1261.5f, -30.0f}},
      {GgmlType::Q4_0, 82.5, {-1.5f, 1.0f, 0.0f, 3.5f, -0.5f, 1.5f}},
      {GgmlType::Q4_1, 3920.5, {7.75f, 2.25f, 6.25f, 1.75f, 7.75f, 0.25f}},
      {GgmlType::Q8_0, 2117.0, {42.5f, 61.0f, -24.0f, 31.5f, -44.5f, 27.0f}},
  };
  for (const auto& ref : refs) {
    const auto b = pattern_block(ref.type);
    std::vector<float> v(kQKK);
    dequantize_row(ref.type, b.data(), v.data(), kQKK);
    double sum = 0.0;
    for (int i = 0; i < kQKK; ++i)
      sum += static_cast<double>(v[static_cast<std::size_t>(i)]) * (i % 7 + 1);
    const std::string name = type_name(static_cast<std::uint32_t>(ref.type));
    EXPECT_DOUBLE_EQ(sum, ref.weighted_sum) << name;
    const int at[] = {0, 1, 31, 32, 100, 255};
    for (int k = 0; k < 6; ++k)
      EXPECT_FLOAT_EQ(v[static_cast<std::size_t>(at[k])], ref.samples[k])
          << name << " element " << at[k];
    // The integer kernels agree with the dequantised values.
    const auto x = random_vector(kQKK, 11, 0.01f);
    double dot = 0.0, mag = 0.0;
    for (int i = 0; i < kQKK; ++i) {
      dot += static_cast<double>(v[static_cast<std::size_t>(i)]) * x[static_cast<std::size_t>(i)];
      mag += std::fabs(static_cast<double>(v[static_cast<std::size_t>(i)]) *
                       x[static_cast<std::size_t>(i)]);
    }
    for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
      const KernelIsa original = active_isa();
      force_isa(isa);
      EXPECT_NEAR(row_dot(ref.type, b.data(), x.data(), kQKK), dot, 0.02 * mag) << name;
      force_isa(original);
    }
  }
}

}  // namespace
}  // namespace chatrec::llm::runtime
