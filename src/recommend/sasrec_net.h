#pragma once
// The network of SASRec (Kang & McAuley 2018), with its backward pass: item and learned position
// embeddings, pre-norm causal self-attention blocks (layer norm, multi-head attention, ReLU
// feed-forward, dropout, residuals), a final layer norm, and scores as dot products with the
// (shared) item embeddings. Trained on every prefix of a sequence with sampled softmax
// cross-entropy. A template over the scalar type so the tests check gradients in double precision.
#include <cstdint>
#include <span>
#include <vector>

#include "data/matrix.h"
#include "nn/layers.h"

namespace chatrec::recommend {

struct SasRecShape {
  int items = 0, dim = 64, blocks = 2, heads = 2, inner = 256, max_len = 50;
  double dropout = 0.2;
};

// One training sequence: inputs[t] predicts targets[t] (the next item) against the target and the
// sequence's sampled negatives.
struct SasRecExample {
  std::vector<data::ItemIndex> inputs, targets, negatives;
  std::uint64_t dropout_seed = 0;
};

template <typename S>
struct SasRecWeights {
  struct Block {
    nn::Vec<S> ln1_g, ln1_b, bq, bk, bv, bo, ln2_g, ln2_b, b1, b2;
    nn::Mat<S> wq, wk, wv, wo, w1, w2;
  };
  nn::Mat<S> item, pos;
  std::vector<Block> blocks;
  nn::Vec<S> lnf_g, lnf_b;

  // Calls f on every parameter tensor, always in the same order.
  template <typename F>
  void visit(F&& f) {
    f(item), f(pos);
    for (auto& b : blocks) {
      f(b.ln1_g), f(b.ln1_b), f(b.wq), f(b.bq), f(b.wk), f(b.bk), f(b.wv), f(b.bv), f(b.wo),
          f(b.bo), f(b.ln2_g), f(b.ln2_b), f(b.w1), f(b.b1), f(b.w2), f(b.b2);
    }
    f(lnf_g), f(lnf_b);
  }
  // Same shapes, all zero.
  SasRecWeights zeros_like() const;
  std::size_t size() const;
};

template <typename S>
class SasRecNet {
 public:
  explicit SasRecNet(SasRecShape shape);
  const SasRecShape& shape() const { return shape_; }
  SasRecWeights<S>& weights() { return w_; }
  const SasRecWeights<S>& weights() const { return w_; }
  void init(std::uint64_t seed);

  // Summed cross-entropy over the example's positions; adds scale * its gradient to `grad`. With
  // `train` dropout is applied (seeded by the example).
  S loss_and_grad(const SasRecExample& ex, bool train, S scale, SasRecWeights<S>& grad);
  S loss(const SasRecExample& ex, bool train);

  // The final hidden state after the last `max_len` items of `history` (oldest first), no dropout.
  nn::Vec<S> encode(std::span<const data::ItemIndex> history) const;
  // Scores of every item after `history`.
  void score(std::span<const data::ItemIndex> history, std::span<float> out) const;

 private:
  struct Cache;
  S forward(const SasRecExample& ex, bool train, Cache* cache, nn::Mat<S>* final_hidden) const;

  SasRecShape shape_;
  SasRecWeights<S> w_;
};

}  // namespace chatrec::recommend
