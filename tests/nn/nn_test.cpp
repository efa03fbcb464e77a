// Every backward pass of nn/layers.h against central finite differences in double precision.
#include "nn/layers.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <tuple>

#include "nn/adam.h"

namespace chatrec::nn {
namespace {

using M = Mat<double>;
using V = Vec<double>;

M random_matrix(Eigen::Index r, Eigen::Index c, std::mt19937_64& g, double scale = 1.0) {
  std::normal_distribution<double> n(0.0, scale);
  M m(r, c);
  for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = n(g);
  return m;
}

// Checks the analytic gradient of f (a scalar of the entries of x) against central differences;
// the relative error bound is 1e-6 of the gradient's largest entry.
template <typename X>
void expect_gradient(X& x, const std::function<double()>& f, const X& analytic, const char* what) {
  const double h = 1e-6;
  double max_abs = 1e-12;
  for (Eigen::Index k = 0; k < analytic.size(); ++k)
    max_abs = std::max(max_abs, std::abs(analytic.data()[k]));
  for (Eigen::Index k = 0; k < x.size(); ++k) {
    const double keep = x.data()[k];
    x.data()[k] = keep + h;
    const double up = f();
    x.data()[k] = keep - h;
    const double down = f();
    x.data()[k] = keep;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic.data()[k], numeric, 1e-6 * max_abs) << what << " entry " << k;
  }
}

TEST(Nn, LayerNormBackwardMatchesFiniteDifferences) {
  std::mt19937_64 g(1);
  M x = random_matrix(4, 6, g);
  V gamma = random_matrix(1, 6, g), beta = random_matrix(1, 6, g);
  const M w = random_matrix(4, 6, g);  // loss = sum(w .* y)
  auto f = [&] {
    M y;
    LayerNormCache<double> c;
    layer_norm_forward<double>(x, gamma, beta, 1e-5, y, c);
    return y.cwiseProduct(w).sum();
  };
  M y;
  LayerNormCache<double> c;
  layer_norm_forward<double>(x, gamma, beta, 1e-5, y, c);
  M dx = M::Zero(4, 6);
  V dg = V::Zero(6), db = V::Zero(6);
  layer_norm_backward<double>(w, gamma, c, dx, dg, db);
  expect_gradient(x, f, dx, "dx");
  expect_gradient(gamma, f, dg, "dgamma");
  expect_gradient(beta, f, db, "dbeta");
  // Each row is normalised: mean 0, variance 1 before the affine part.
  for (Eigen::Index t = 0; t < 4; ++t) {
    EXPECT_NEAR(c.xhat.row(t).mean(), 0.0, 1e-12);
    EXPECT_NEAR(c.xhat.row(t).squaredNorm() / 6, 1.0, 1e-4);
  }
}

TEST(Nn, AffineBackwardMatchesFiniteDifferences) {
  std::mt19937_64 g(2);
  M x = random_matrix(3, 5, g), w = random_matrix(5, 4, g);
  V b = random_matrix(1, 4, g);
  const M dy = random_matrix(3, 4, g);
  auto f = [&] {
    M y;
    affine_forward<double>(x, w, b, y);
    return y.cwiseProduct(dy).sum();
  };
  M dx = M::Zero(3, 5), dw = M::Zero(5, 4);
  V db = V::Zero(4);
  affine_backward<double>(x, w, dy, &dx, dw, db);
  expect_gradient(x, f, dx, "dx");
  expect_gradient(w, f, dw, "dw");
  expect_gradient(b, f, db, "db");
}

TEST(Nn, AttentionBackwardMatchesFiniteDifferences) {
  for (auto [heads, kv_heads, causal] :
       {std::tuple{2, 2, true}, std::tuple{4, 2, true}, std::tuple{3, 1, true},
        std::tuple{2, 2, false}, std::tuple{4, 1, false}}) {
    std::mt19937_64 g(3 + heads);
    const int D = 3, T = 5;
    M q = random_matrix(T, heads * D, g), k = random_matrix(T, kv_heads * D, g),
      v = random_matrix(T, kv_heads * D, g);
    const M w = random_matrix(T, heads * D, g);
    auto f = [&] {
      std::vector<M> p;
      M out;
      attention_forward<double>(q, k, v, heads, kv_heads, causal, p, out);
      return out.cwiseProduct(w).sum();
    };
    std::vector<M> probs;
    M out;
    attention_forward<double>(q, k, v, heads, kv_heads, causal, probs, out);
    // Rows sum to 1; causal: position 0 reads only itself, nothing above the diagonal;
    // bidirectional: every position reads every other.
    for (const auto& P : probs) {
      EXPECT_EQ(P(0, 0) == 1.0, causal);
      for (int i = 0; i < T; ++i) {
        EXPECT_NEAR(P.row(i).sum(), 1.0, 1e-12);
        for (int j = i + 1; j < T; ++j) EXPECT_EQ(P(i, j) == 0.0, causal);
      }
    }
    M dq = M::Zero(T, heads * D), dk = M::Zero(T, kv_heads * D), dv = M::Zero(T, kv_heads * D);
    attention_backward<double>(q, k, v, heads, kv_heads, causal, probs, w, dq, dk, dv);
    expect_gradient(q, f, dq, "dq");
    expect_gradient(k, f, dk, "dk");
    expect_gradient(v, f, dv, "dv");
  }
  M q(2, 4), k(2, 4), v(2, 4), out;
  std::vector<M> p;
  EXPECT_THROW(attention_forward<double>(q, k, v, 3, 1, true, p, out), std::invalid_argument);
}

TEST(Nn, SoftmaxCrossEntropyAndItsGradient) {
  std::mt19937_64 g(4);
  M logits = random_matrix(3, 5, g, 2.0);
  const std::vector<int> target = {0, 4, 2};
  auto f = [&] {
    M d;
    return softmax_cross_entropy<double>(logits, target, 1.0, d);
  };
  M d;
  const double loss = softmax_cross_entropy<double>(logits, target, 1.0, d);
  double expected = 0;
  for (int t = 0; t < 3; ++t)
    expected += std::log(logits.row(t).array().exp().sum()) - logits(t, target[t]);
  EXPECT_NEAR(loss, expected, 1e-12);
  expect_gradient(logits, f, d, "dlogits");
  EXPECT_THROW(softmax_cross_entropy<double>(logits, {0, 5, 1}, 1.0, d), std::out_of_range);
}

TEST(Nn, AdamMinimisesAQuadraticAndDecaysWeights) {
  std::vector<double> x = {3.0, -2.0};
  Adam<double> adam(2, {});
  for (int s = 0; s < 2000; ++s) {
    const std::vector<double> grad = {2 * (x[0] - 1), 2 * (x[1] + 0.5)};
    adam.step(x, grad, 0.01);
  }
  EXPECT_NEAR(x[0], 1.0, 1e-3);
  EXPECT_NEAR(x[1], -0.5, 1e-3);
  EXPECT_EQ(adam.steps(), 2000);
  // The first step moves every parameter by about lr (bias-corrected), whatever the gradient's
  // scale; eps acts on the uncorrected second moment, so a tiny gradient moves a little less.
  std::vector<double> y = {0.0, 0.0};
  Adam<double> first(2, {});
  first.step(y, std::vector<double>{1e-3, -50.0}, 0.1);
  EXPECT_NEAR(y[0], -0.1, 1e-4);
  EXPECT_NEAR(y[1], 0.1, 1e-7);
  Adam<double> decay(1, {0.9, 0.999, 1e-8, 0.5});
  std::vector<double> z = {2.0};
  decay.step(z, std::vector<double>{0.0}, 0.1);
  EXPECT_NEAR(z[0], 2.0 - 0.1 * 0.5 * 2.0, 1e-9);
  EXPECT_THROW(decay.step(z, std::vector<double>{0.0, 1.0}, 0.1), std::invalid_argument);
}

}  // namespace
}  // namespace chatrec::nn
