#pragma once
// The transformer of SASRec (Kang & McAuley 2018; causal) and BERT4Rec (Sun et al. 2019;
// bidirectional), with its backward pass: item and learned position embeddings, pre-norm
// self-attention blocks (layer norm, multi-head attention, ReLU feed-forward, dropout, residuals),
// a final layer norm, and scores as dot products with the (shared) item embeddings. Trained with
// sampled softmax cross-entropy at the positions that have a target. A template over the scalar
// type so the tests check gradients in double precision.
#include <cstdint>
#include <span>
#include <vector>

#include "data/matrix.h"
#include "nn/layers.h"

namespace chatrec::recommend {

struct TransformerShape {
  int items = 0, dim = 64, blocks = 2, heads = 2, inner = 256, max_len = 50;
  double dropout = 0.2;
  bool bidirectional = false;
  // Input-only tokens after the items (BERT4Rec's mask token is `items`); never scored.
  int extra_tokens = 0;
};

// No loss at this position.
inline constexpr data::ItemIndex kNoTarget = static_cast<data::ItemIndex>(-1);

// One training sequence: position t's output predicts targets[t] (the next item for SASRec, the
// masked item for BERT4Rec; kNoTarget for none) against the target and the sequence's sampled
// negatives. The last input sits at the last position.
struct TransformerExample {
  std::vector<data::ItemIndex> inputs, targets, negatives;
  // Subtracted from each negative's logit (sampled softmax's log-q correction for negatives drawn
  // with unequal probabilities); empty for none.
  std::vector<float> negative_offsets;
  std::uint64_t dropout_seed = 0;
};

template <typename S>
struct TransformerWeights {
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
  TransformerWeights zeros_like() const;
  std::size_t size() const;
};

template <typename S>
class TransformerNet {
 public:
  explicit TransformerNet(TransformerShape shape);
  const TransformerShape& shape() const { return shape_; }
  TransformerWeights<S>& weights() { return w_; }
  const TransformerWeights<S>& weights() const { return w_; }
  void init(std::uint64_t seed);

  // Summed cross-entropy over the example's positions; adds scale * its gradient to `grad`. With
  // `train` dropout is applied (seeded by the example).
  S loss_and_grad(const TransformerExample& ex, bool train, S scale, TransformerWeights<S>& grad);
  S loss(const TransformerExample& ex, bool train);

  // The final hidden state at the last of the last `max_len` tokens of `inputs`, no dropout.
  nn::Vec<S> encode(std::span<const data::ItemIndex> inputs) const;
  // Scores of every item (not the extra tokens) from the hidden state at the last input.
  void score(std::span<const data::ItemIndex> inputs, std::span<float> out) const;

 private:
  struct Cache;
  S forward(const TransformerExample& ex, bool train, Cache* cache, nn::Mat<S>* final_hidden) const;

  TransformerShape shape_;
  TransformerWeights<S> w_;
};

}  // namespace chatrec::recommend
