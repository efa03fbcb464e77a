#include "recommend/transformer_net.h"

#include <cmath>
#include <stdexcept>

#include "common/random.h"

namespace chatrec::recommend {

using nn::Mat;
using nn::Vec;

template <typename S>
TransformerWeights<S> TransformerWeights<S>::zeros_like() const {
  TransformerWeights<S> z = *this;
  z.visit([](auto& m) { m.setZero(); });
  return z;
}

template <typename S>
std::size_t TransformerWeights<S>::size() const {
  std::size_t n = 0;
  const_cast<TransformerWeights<S>*>(this)->visit(
      [&](auto& m) { n += static_cast<std::size_t>(m.size()); });
  return n;
}

template <typename S>
struct TransformerNet<S>::Cache {
  struct BlockCache {
    Mat<S> x_in, a, q, k, v, att, drop1, x_mid, c, f1, drop2;
    nn::LayerNormCache<S> ln1, ln2;
    std::vector<Mat<S>> probs;
  };
  Mat<S> drop0, x_out, h, negatives, logits, dlogits;
  std::vector<Eigen::Index> rows;  // positions with a target
  nn::LayerNormCache<S> lnf;
  std::vector<BlockCache> blocks;
  int first_position = 0;
};

template <typename S>
TransformerNet<S>::TransformerNet(TransformerShape shape) : shape_(shape) {
  if (shape.items <= 0 || shape.dim <= 0 || shape.blocks < 0 || shape.heads <= 0 ||
      shape.dim % shape.heads != 0 || shape.inner <= 0 || shape.max_len <= 0)
    throw std::invalid_argument("sasrec: dim must be a positive multiple of heads, sizes positive");
  const int d = shape.dim;
  if (shape.extra_tokens < 0) throw std::invalid_argument("transformer: negative extra tokens");
  w_.item = Mat<S>::Zero(shape.items + shape.extra_tokens, d);
  w_.pos = Mat<S>::Zero(shape.max_len, d);
  w_.blocks.resize(static_cast<std::size_t>(shape.blocks));
  for (auto& b : w_.blocks) {
    b.ln1_g = Vec<S>::Ones(d), b.ln1_b = Vec<S>::Zero(d);
    b.ln2_g = Vec<S>::Ones(d), b.ln2_b = Vec<S>::Zero(d);
    for (auto* m : {&b.wq, &b.wk, &b.wv, &b.wo}) *m = Mat<S>::Zero(d, d);
    for (auto* v : {&b.bq, &b.bk, &b.bv, &b.bo, &b.b2}) *v = Vec<S>::Zero(d);
    b.w1 = Mat<S>::Zero(d, shape.inner), b.b1 = Vec<S>::Zero(shape.inner);
    b.w2 = Mat<S>::Zero(shape.inner, d);
  }
  w_.lnf_g = Vec<S>::Ones(d), w_.lnf_b = Vec<S>::Zero(d);
}

template <typename S>
void TransformerNet<S>::init(std::uint64_t seed) {
  Rng rng(seed);
  auto fill = [&](auto& m, double std) {
    for (Eigen::Index k = 0; k < m.size(); ++k) m.data()[k] = static_cast<S>(rng.normal(0, std));
  };
  const double d = shape_.dim;
  fill(w_.item, 1.0 / std::sqrt(d));
  fill(w_.pos, 0.1);
  for (auto& b : w_.blocks) {
    for (auto* m : {&b.wq, &b.wk, &b.wv, &b.wo, &b.w1}) fill(*m, 1.0 / std::sqrt(d));
    fill(b.w2, 1.0 / std::sqrt(static_cast<double>(shape_.inner)));
  }
}

namespace {

// Inverted dropout: entries kept with probability 1 - p, scaled by 1 / (1 - p).
template <typename S>
void dropout_mask(Rng& rng, Eigen::Index rows, Eigen::Index cols, double p, Mat<S>& mask) {
  mask.resize(rows, cols);
  const S keep = static_cast<S>(1.0 / (1.0 - p));
  for (Eigen::Index k = 0; k < mask.size(); ++k) mask.data()[k] = rng.uniform() < p ? S(0) : keep;
}

}  // namespace

template <typename S>
S TransformerNet<S>::forward(const TransformerExample& ex, bool train, Cache* cache,
                             Mat<S>* final_hidden) const {
  const int d = shape_.dim;
  const auto L = static_cast<Eigen::Index>(ex.inputs.size());
  if (L == 0 || L > shape_.max_len) throw std::invalid_argument("transformer: sequence length");
  const bool drop = train && shape_.dropout > 0;
  Rng rng(ex.dropout_seed);
  Cache local;
  Cache& c = cache ? *cache : local;
  c.first_position = shape_.max_len - static_cast<int>(L);  // the last item is always last
  Mat<S> x(L, d);
  const S emb_scale = std::sqrt(static_cast<S>(d));
  for (Eigen::Index t = 0; t < L; ++t) {
    const auto item = ex.inputs[static_cast<std::size_t>(t)];
    if (item >= static_cast<data::ItemIndex>(shape_.items + shape_.extra_tokens))
      throw std::out_of_range("transformer: item outside the catalogue");
    x.row(t) = emb_scale * w_.item.row(item) + w_.pos.row(c.first_position + t);
  }
  if (drop) {
    dropout_mask(rng, L, d, shape_.dropout, c.drop0);
    x = x.cwiseProduct(c.drop0);
  }
  c.blocks.resize(w_.blocks.size());
  Mat<S> tmp;
  for (std::size_t bi = 0; bi < w_.blocks.size(); ++bi) {
    const auto& b = w_.blocks[bi];
    auto& bc = c.blocks[bi];
    bc.x_in = x;
    nn::layer_norm_forward<S>(bc.x_in, b.ln1_g, b.ln1_b, S(1e-6), bc.a, bc.ln1);
    nn::affine_forward<S>(bc.a, b.wq, b.bq, bc.q);
    nn::affine_forward<S>(bc.a, b.wk, b.bk, bc.k);
    nn::affine_forward<S>(bc.a, b.wv, b.bv, bc.v);
    nn::attention_forward<S>(bc.q, bc.k, bc.v, shape_.heads, shape_.heads, !shape_.bidirectional,
                             bc.probs, bc.att);
    nn::affine_forward<S>(bc.att, b.wo, b.bo, tmp);
    if (drop) {
      dropout_mask(rng, L, d, shape_.dropout, bc.drop1);
      tmp = tmp.cwiseProduct(bc.drop1);
    }
    bc.x_mid = bc.x_in + tmp;
    nn::layer_norm_forward<S>(bc.x_mid, b.ln2_g, b.ln2_b, S(1e-6), bc.c, bc.ln2);
    nn::affine_forward<S>(bc.c, b.w1, b.b1, bc.f1);
    const Mat<S> relu = bc.f1.cwiseMax(S(0));
    nn::affine_forward<S>(relu, b.w2, b.b2, tmp);
    if (drop) {
      dropout_mask(rng, L, d, shape_.dropout, bc.drop2);
      tmp = tmp.cwiseProduct(bc.drop2);
    }
    x = bc.x_mid + tmp;
  }
  c.x_out = x;
  nn::layer_norm_forward<S>(c.x_out, w_.lnf_g, w_.lnf_b, S(1e-6), c.h, c.lnf);
  if (final_hidden) *final_hidden = c.h;
  if (ex.targets.empty()) return S(0);
  if (static_cast<Eigen::Index>(ex.targets.size()) != L)
    throw std::invalid_argument("transformer: one target (or kNoTarget) per input");
  c.rows.clear();
  for (Eigen::Index t = 0; t < L; ++t) {
    const auto y = ex.targets[static_cast<std::size_t>(t)];
    if (y == kNoTarget) continue;
    if (y >= static_cast<data::ItemIndex>(shape_.items))
      throw std::out_of_range("transformer: target outside the catalogue");
    c.rows.push_back(t);
  }
  const auto R = static_cast<Eigen::Index>(c.rows.size());
  const auto M = static_cast<Eigen::Index>(ex.negatives.size());
  c.negatives.resize(M, d);
  for (Eigen::Index m = 0; m < M; ++m) c.negatives.row(m) = w_.item.row(ex.negatives[m]);
  Mat<S> hr(R, d);
  for (Eigen::Index r = 0; r < R; ++r) hr.row(r) = c.h.row(c.rows[r]);
  c.logits.resize(R, 1 + M);
  for (Eigen::Index r = 0; r < R; ++r)
    c.logits(r, 0) = hr.row(r).dot(w_.item.row(ex.targets[static_cast<std::size_t>(c.rows[r])]));
  if (M > 0) c.logits.rightCols(M).noalias() = hr * c.negatives.transpose();
  if (!ex.negative_offsets.empty()) {
    if (static_cast<Eigen::Index>(ex.negative_offsets.size()) != M)
      throw std::invalid_argument("transformer: one offset per negative");
    for (Eigen::Index m = 0; m < M; ++m)
      c.logits.col(1 + m).array() -=
          static_cast<S>(ex.negative_offsets[static_cast<std::size_t>(m)]);
  }
  const std::vector<int> zero(static_cast<std::size_t>(R), 0);
  return nn::softmax_cross_entropy<S>(c.logits, zero, S(1), c.dlogits);
}

template <typename S>
S TransformerNet<S>::loss(const TransformerExample& ex, bool train) {
  return forward(ex, train, nullptr, nullptr);
}

template <typename S>
S TransformerNet<S>::loss_and_grad(const TransformerExample& ex, bool train, S scale,
                                   TransformerWeights<S>& g) {
  Cache c;
  const S loss = forward(ex, train, &c, nullptr);
  const int d = shape_.dim;
  const auto L = static_cast<Eigen::Index>(ex.inputs.size());
  const auto M = static_cast<Eigen::Index>(ex.negatives.size());
  const bool drop = train && shape_.dropout > 0;
  c.dlogits *= scale;
  // Scores: dot products with the item embeddings, at the positions with a target.
  const auto R = static_cast<Eigen::Index>(c.rows.size());
  Mat<S> hr(R, d), dhr(R, d);
  for (Eigen::Index r = 0; r < R; ++r) {
    const auto target = ex.targets[static_cast<std::size_t>(c.rows[r])];
    hr.row(r) = c.h.row(c.rows[r]);
    dhr.row(r) = c.dlogits(r, 0) * w_.item.row(target);
    g.item.row(target) += c.dlogits(r, 0) * hr.row(r);
  }
  if (M > 0) {
    dhr.noalias() += c.dlogits.rightCols(M) * c.negatives;
    const Mat<S> dneg = c.dlogits.rightCols(M).transpose() * hr;
    for (Eigen::Index m = 0; m < M; ++m) g.item.row(ex.negatives[m]) += dneg.row(m);
  }
  Mat<S> dh = Mat<S>::Zero(L, d);
  for (Eigen::Index r = 0; r < R; ++r) dh.row(c.rows[r]) = dhr.row(r);
  Mat<S> dx = Mat<S>::Zero(L, d);
  nn::layer_norm_backward<S>(dh, w_.lnf_g, c.lnf, dx, g.lnf_g, g.lnf_b);
  Mat<S> dtmp, drelu, dc, datt, dq, dk, dv, da;
  for (std::size_t bi = w_.blocks.size(); bi-- > 0;) {
    const auto& b = w_.blocks[bi];
    auto& gb = g.blocks[bi];
    const auto& bc = c.blocks[bi];
    // x = x_mid + drop2(W2 relu(W1 LN2(x_mid) + b1) + b2)
    Mat<S> dmid = dx;
    dtmp = drop ? Mat<S>(dx.cwiseProduct(bc.drop2)) : dx;
    const Mat<S> relu = bc.f1.cwiseMax(S(0));
    drelu.setZero(L, shape_.inner);
    nn::affine_backward<S>(relu, b.w2, dtmp, &drelu, gb.w2, gb.b2);
    drelu = drelu.cwiseProduct((bc.f1.array() > S(0)).template cast<S>().matrix());
    dc.setZero(L, d);
    nn::affine_backward<S>(bc.c, b.w1, drelu, &dc, gb.w1, gb.b1);
    nn::layer_norm_backward<S>(dc, b.ln2_g, bc.ln2, dmid, gb.ln2_g, gb.ln2_b);
    // x_mid = x_in + drop1(Wo attention(LN1(x_in)) + bo)
    dx = dmid;
    dtmp = drop ? Mat<S>(dmid.cwiseProduct(bc.drop1)) : dmid;
    datt.setZero(L, d);
    nn::affine_backward<S>(bc.att, b.wo, dtmp, &datt, gb.wo, gb.bo);
    dq.setZero(L, d), dk.setZero(L, d), dv.setZero(L, d);
    nn::attention_backward<S>(bc.q, bc.k, bc.v, shape_.heads, shape_.heads, !shape_.bidirectional,
                              bc.probs, datt, dq, dk, dv);
    da.setZero(L, d);
    nn::affine_backward<S>(bc.a, b.wq, dq, &da, gb.wq, gb.bq);
    nn::affine_backward<S>(bc.a, b.wk, dk, &da, gb.wk, gb.bk);
    nn::affine_backward<S>(bc.a, b.wv, dv, &da, gb.wv, gb.bv);
    nn::layer_norm_backward<S>(da, b.ln1_g, bc.ln1, dx, gb.ln1_g, gb.ln1_b);
  }
  if (drop) dx = dx.cwiseProduct(c.drop0);
  const S emb_scale = std::sqrt(static_cast<S>(d));
  for (Eigen::Index t = 0; t < L; ++t) {
    g.item.row(ex.inputs[static_cast<std::size_t>(t)]) += emb_scale * dx.row(t);
    g.pos.row(c.first_position + t) += dx.row(t);
  }
  return loss * scale;
}

template <typename S>
Vec<S> TransformerNet<S>::encode(std::span<const data::ItemIndex> history) const {
  TransformerExample ex;
  const std::size_t n =
      std::min<std::size_t>(history.size(), static_cast<std::size_t>(shape_.max_len));
  ex.inputs.assign(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
  if (ex.inputs.empty()) return Vec<S>::Zero(shape_.dim);
  Mat<S> h;
  forward(ex, false, nullptr, &h);
  return h.row(h.rows() - 1);
}

template <typename S>
void TransformerNet<S>::score(std::span<const data::ItemIndex> inputs, std::span<float> out) const {
  const Vec<S> h = encode(inputs);
  const auto n = std::min<Eigen::Index>(static_cast<Eigen::Index>(out.size()), shape_.items);
  for (Eigen::Index i = 0; i < n; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<float>(w_.item.row(i).dot(h));
}

template struct TransformerWeights<float>;
template struct TransformerWeights<double>;
template class TransformerNet<float>;
template class TransformerNet<double>;

}  // namespace chatrec::recommend
