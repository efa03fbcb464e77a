// The element-wise parts of the forward pass that follow llama.cpp's CPU numerics: the exp
// approximation behind SwiGLU and the flash-attention kernel. Scalar and AVX2 paths must agree bit
// for bit (the real-model test then checks that greedy decoding reproduces llama.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "llm/runtime/activations.h"
#include "llm/runtime/attention.h"
#include "llm/runtime/kernels.h"
#include "llm/runtime/quants.h"
#include "random_vector.h"

namespace chatrec::llm::runtime {
namespace {

using testing::random_vector;

// Runs f once per instruction set (scalar, then AVX2 where the CPU has it) and restores the ISA.
template <typename F>
void for_each_isa(F f) {
  const KernelIsa original = active_isa();
  for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
    force_isa(isa);
    f(isa);
  }
  force_isa(original);
}

TEST(ExpApprox, IsCloseToExpAndSaturatesLikeGgml) {
  EXPECT_EQ(exp_approx(0.0f), 1.0f);
  for (float x = -87.0f; x <= 88.0f; x += 0.01234f) {
    const double ref = std::exp(static_cast<double>(x));
    EXPECT_NEAR(exp_approx(x), ref, 3e-7 * ref) << x;  // ~2 ulp
  }
  // Subnormal results keep their absolute accuracy; far below the range the result is 0.
  EXPECT_NEAR(exp_approx(-100.0f), std::exp(-100.0), 1e-45);
  EXPECT_EQ(exp_approx(-104.0f), 0.0f);
  EXPECT_EQ(exp_approx(-200.0f), 0.0f);
  EXPECT_EQ(exp_approx(89.0f), std::numeric_limits<float>::infinity());
  EXPECT_EQ(exp_approx(200.0f), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(exp_approx(std::numeric_limits<float>::quiet_NaN())));
}

TEST(Swiglu, ScalarAndAvx2AgreeBitForBitAndMatchTheDefinition) {
  const std::size_t n = 1003;  // not a multiple of 8: the AVX2 path has a scalar tail
  std::vector<float> gate = random_vector(n, 11, 4.0f);
  const std::vector<float> up = random_vector(n, 12);
  // Saturating inputs take the slow path of the AVX2 exp (2^n outside the normal range).
  const float extremes[] = {-150.0f, -100.0f, -95.0f, -90.0f, -0.0f, 0.0f,
                            88.0f,   95.0f,   110.0f, 150.0f, 1e-30f};
  for (std::size_t i = 0; i < std::size(extremes); ++i) gate[i * 37] = extremes[i];
  std::vector<float> out[2];
  for_each_isa([&](KernelIsa isa) {
    std::vector<float>& o = out[isa == KernelIsa::kAvx2 ? 1 : 0];
    o.resize(n);
    swiglu(gate.data(), up.data(), o.data(), n);
  });
  EXPECT_EQ(std::memcmp(out[0].data(), out[1].data(), n * sizeof(float)), 0);
  for (std::size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    const double ref = g / (1.0 + std::exp(-g)) * up[i];
    EXPECT_NEAR(out[0][i], ref, 1e-6 * (1.0 + std::fabs(ref))) << "gate " << g;
  }
  // In place (out aliasing gate) gives the same values.
  std::vector<float> in_place = gate;
  swiglu(in_place.data(), up.data(), in_place.data(), n);
  EXPECT_EQ(std::memcmp(in_place.data(), out[0].data(), n * sizeof(float)), 0);
}

// Reference attention in double over the same fp16-rounded inputs.
std::vector<double> softmax_attention(const std::vector<float>& q, const std::vector<float>& k,
                                      const std::vector<float>& v, int len, int dim, float scale) {
  std::vector<double> s(static_cast<std::size_t>(len)), out(static_cast<std::size_t>(dim), 0.0);
  double m = -INFINITY, sum = 0.0;
  for (int j = 0; j < len; ++j) {
    double d = 0.0;
    for (int i = 0; i < dim; ++i) d += static_cast<double>(q[i]) * k[j * dim + i];
    s[j] = d * scale;
    m = std::max(m, s[j]);
  }
  for (int j = 0; j < len; ++j) {
    const double w = std::exp(s[j] - m);
    sum += w;
    for (int i = 0; i < dim; ++i) out[i] += w * v[j * dim + i];
  }
  for (double& o : out) o /= sum;
  return out;
}

// GeGLU as ggml computes it: GELU of the fp16-rounded gate from a table of fp16 values, zero below
// -10, the identity above 10.
TEST(Geglu, FollowsTheTanhGeluThroughFp16) {
  const std::vector<float> gate = {-12.0f, -10.0f, -3.0f, -0.5f, 0.0f,
                                   0.3f,   1.7f,   9.9f,  10.0f, 14.0f};
  std::vector<float> up(gate.size(), 2.0f), out(gate.size());
  geglu(gate.data(), up.data(), out.data(), gate.size());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_EQ(out[8], 20.0f);
  EXPECT_EQ(out[9], 28.0f);
  for (std::size_t i = 2; i < 8; ++i) {
    const float g = gate[i];
    EXPECT_EQ(out[i], round_fp16(gelu_tanh(round_fp16(g))) * 2.0f) << g;
    const double exact = 0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0)));  // the erf form
    EXPECT_NEAR(out[i] / 2.0f, exact, 2e-3 * std::max(1.0, std::fabs(exact))) << g;
  }
  EXPECT_NEAR(gelu_tanh(1.0f), 0.841192f, 1e-5f);
}

TEST(Attention, ScalarAndAvx2AgreeBitForBitAndMatchSoftmax) {
  const int len = 37;
  for (int dim : {32, 64, 72, 128}) {
    auto round_all = [](std::vector<float> x) {
      for (float& e : x) e = round_fp16(e);
      return x;
    };
    const auto q = round_all(random_vector(dim, 21, 2.0f));
    const auto k = round_all(random_vector(static_cast<std::size_t>(len) * dim, 22));
    const auto v = round_all(random_vector(static_cast<std::size_t>(len) * dim, 23));
    const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
    std::vector<float> out[2];
    for_each_isa([&](KernelIsa isa) {
      std::vector<float>& o = out[isa == KernelIsa::kAvx2 ? 1 : 0];
      o.resize(static_cast<std::size_t>(dim));
      attend_head(q.data(), k.data(), v.data(), static_cast<std::size_t>(dim), len, dim, scale,
                  o.data());
    });
    EXPECT_EQ(std::memcmp(out[0].data(), out[1].data(), dim * sizeof(float)), 0) << "dim " << dim;
    const auto ref = softmax_attention(q, k, v, len, dim, scale);
    // The value accumulator is kept at fp16 precision.
    for (int i = 0; i < dim; ++i) EXPECT_NEAR(out[0][i], ref[i], 2e-3) << "dim " << dim;
  }
}

// The K·Q sum follows ggml's AVX-512 order: element 0 first meets element 32 (accumulator 0 + 2),
// so 2^24 - 2^24 cancels before the 1 at element 8 is added and the score is exactly 1. A
// sequential or 8-lane sum adds the 1 to 2^24 first, where it is lost, and gives 0.
TEST(Attention, ScoresAreSummedInGgmlOrder) {
  const int dim = 64, len = 2;
  std::vector<float> q(dim, 0.0f), k(static_cast<std::size_t>(len) * dim, 0.0f),
      v(static_cast<std::size_t>(len) * dim, 0.0f);
  q[0] = 4096.0f, k[0] = 4096.0f;
  q[32] = 4096.0f, k[32] = -4096.0f;
  q[8] = 1.0f, k[8] = 1.0f;
  v[0] = 1.0f;        // value of position 0 (score 1)
  v[dim + 1] = 1.0f;  // value of position 1 (score 0: its key is zero)
  for_each_isa([&](KernelIsa isa) {
    std::vector<float> out(dim);
    attend_head(q.data(), k.data(), v.data(), dim, len, dim, 1.0f, out.data());
    const double w0 = 1.0 / (1.0 + std::exp(-1.0));  // softmax weight of score 1 against 0
    EXPECT_NEAR(out[0], w0, 1e-3) << "isa " << static_cast<int>(isa);
    EXPECT_NEAR(out[1], 1.0 - w0, 1e-3) << "isa " << static_cast<int>(isa);
  });
}

// The tiled causal attention against a plain double-precision softmax, and scalar against AVX2:
// 70 queries after 30 cached positions span two query blocks and two key tiles, with a partial one.
TEST(Numerics, TiledCausalAttentionMatchesAPlainSoftmaxAndIsIsaIndependent) {
  const int dim = 64, kv_heads = 1, first = 30, n = 70, total = first + n;
  const std::size_t stride = static_cast<std::size_t>(dim * kv_heads);
  std::vector<float> k = random_vector(stride * total, 5), v = random_vector(stride * total, 6);
  for (float& x : k) x = round_fp16(x);
  for (float& x : v) x = round_fp16(x);
  const std::vector<float> q = random_vector(static_cast<std::size_t>(n) * dim, 7, 2.0f);
  const float scale = 0.125f;
  auto run = [&](KernelIsa isa) {
    force_isa(isa);
    std::vector<float> out(static_cast<std::size_t>(n) * dim, -1.0f);
    CausalBatch b{
        q.data(),   static_cast<std::size_t>(dim), first, k.data(), v.data(), stride, dim, scale,
        out.data(), static_cast<std::size_t>(dim)};
    attend_causal_tiled(b, 0, kAttentionTile);
    attend_causal_tiled(b, kAttentionTile, n);
    force_isa(KernelIsa::kAvx2);
    return out;
  };
  const std::vector<float> scalar = run(KernelIsa::kScalar), simd = run(KernelIsa::kAvx2);
  EXPECT_EQ(0, std::memcmp(scalar.data(), simd.data(), scalar.size() * sizeof(float)));
  double worst = 0.0;
  for (int t = 0; t < n; ++t) {
    const int len = first + t + 1;  // causal: positions 0 .. first + t
    std::vector<double> w(static_cast<std::size_t>(len));
    double m = -1e300, sum = 0.0;
    for (int j = 0; j < len; ++j) {
      double dot = 0.0;
      for (int d = 0; d < dim; ++d)
        dot += static_cast<double>(q[static_cast<std::size_t>(t * dim + d)]) *
               k[static_cast<std::size_t>(j) * stride + static_cast<std::size_t>(d)];
      w[static_cast<std::size_t>(j)] = dot * scale;
      m = std::max(m, w[static_cast<std::size_t>(j)]);
    }
    for (double& x : w) sum += (x = std::exp(x - m));
    for (int d = 0; d < dim; ++d) {
      double ref = 0.0;
      for (int j = 0; j < len; ++j)
        ref += w[static_cast<std::size_t>(j)] / sum *
               v[static_cast<std::size_t>(j) * stride + static_cast<std::size_t>(d)];
      worst = std::max(worst, std::fabs(ref - simd[static_cast<std::size_t>(t * dim + d)]));
    }
  }
  EXPECT_LT(worst, 1e-5);
}

// Branch layout: 40 shared keys, then two branches (70 and 6 queries); each query must attend to
// the shared keys and its own branch only, as a plain softmax over exactly those keys says.
TEST(Numerics, TiledAttentionWithBranchesSeesTheSharedPrefixAndItsOwnBranchOnly) {
  const int dim = 64, shared = 40, na = 70, nb = 6, n = na + nb, total = shared + n;
  const std::size_t stride = static_cast<std::size_t>(dim);
  std::vector<float> k = random_vector(stride * total, 15), v = random_vector(stride * total, 16);
  for (float& x : k) x = round_fp16(x);
  for (float& x : v) x = round_fp16(x);
  const std::vector<float> q = random_vector(static_cast<std::size_t>(n) * dim, 17, 2.0f);
  std::vector<int> start(static_cast<std::size_t>(n));
  for (int t = 0; t < n; ++t) start[static_cast<std::size_t>(t)] = t < na ? shared : shared + na;
  std::vector<float> out(static_cast<std::size_t>(n) * dim);
  CausalBatch b{q.data(), stride, shared,     k.data(), v.data(), stride,
                dim,      0.125f, out.data(), stride,   shared,   start.data()};
  attend_causal_tiled(b, 0, kAttentionTile);
  attend_causal_tiled(b, kAttentionTile, n);
  double worst = 0.0;
  for (int t = 0; t < n; ++t) {
    std::vector<int> keys;
    for (int j = 0; j < shared; ++j) keys.push_back(j);
    for (int j = start[static_cast<std::size_t>(t)]; j <= shared + t; ++j) keys.push_back(j);
    std::vector<double> w;
    double m = -1e300, sum = 0.0;
    for (int j : keys) {
      double dot = 0.0;
      for (int d = 0; d < dim; ++d)
        dot += static_cast<double>(q[static_cast<std::size_t>(t * dim + d)]) *
               k[static_cast<std::size_t>(j) * stride + static_cast<std::size_t>(d)];
      w.push_back(dot * 0.125);
      m = std::max(m, w.back());
    }
    for (double& x : w) sum += (x = std::exp(x - m));
    for (int d = 0; d < dim; ++d) {
      double ref = 0.0;
      for (std::size_t i = 0; i < keys.size(); ++i)
        ref += w[i] / sum *
               v[static_cast<std::size_t>(keys[i]) * stride + static_cast<std::size_t>(d)];
      worst = std::max(worst, std::fabs(ref - out[static_cast<std::size_t>(t * dim + d)]));
    }
  }
  EXPECT_LT(worst, 1e-5);
}

}  // namespace
}  // namespace chatrec::llm::runtime
