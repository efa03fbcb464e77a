#include "llm/runtime/trainer.h"

#include "nn/layers.h"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace chatrec::llm::runtime {
namespace {

template <typename S>
using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using CMap = Eigen::Map<const Mat<S>>;
template <typename S>
using MapM = Eigen::Map<Mat<S>>;

// Where one adapted projection's A and B sit in the flat parameter vector.
struct Slot {
  std::size_t a = 0, b = 0;
  int n_in = 0, n_out = 0, rank = 0;
  bool active = false;
};

}  // namespace

template <typename S>
struct LoraTrainer<S>::Impl {
  const Model& base;
  TrainerOptions options;
  LoraAdapter initial;
  int threads = 1;
  float scale = 0.0f;
  std::vector<std::array<Slot, kLoraTargets>> slots;
  std::vector<S> params, grads, m1, m2;
  std::int64_t steps = 0;
  std::int64_t tokens = 0;

  // Scratch for one dequantized projection.
  Mat<S> wbuf;
  std::vector<float> row;

  struct LayerActs {
    Mat<S> x_in, xn1, q, k, v, attn, x_mid, xn2, g, u;
    std::vector<S> inv1, inv2;
    // gemma3: q and k before their per-head norms, the attention and feed-forward outputs before
    // the post-norms, and the norms' inverse RMS values.
    Mat<S> q_pre, k_pre, o_raw, f_raw;
    std::vector<S> q_inv, k_inv, post_inv1, post_inv2;
    std::vector<Mat<S>> probs;                  // per head, T x T
    std::array<Mat<S>, kLoraTargets> lora_mid;  // A x (unscaled), T x rank
  };
  std::vector<LayerActs> acts;
  // Lowest layer with an adapted projection: below it nothing has a gradient, so the backward pass
  // stops there (adapting only the top layers makes a step that much cheaper).
  int first_adapted = std::numeric_limits<int>::max();
  Mat<S> x_final;
  // RoPE tables: [0] for the model's base, [1] for the local layers' base when it differs.
  std::array<std::vector<S>, 2> cos_t, sin_t;

  Impl(const Model& m, const LoraAdapter& a, TrainerOptions o) : base(m), options(o), initial(a) {
    const ModelConfig& c = base.config();
    if (a.architecture != c.arch || a.layers.size() != static_cast<std::size_t>(c.n_layer))
      throw std::invalid_argument("LoRA adapter does not fit the model to train");
    threads = o.threads > 0 ? o.threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    scale = a.scale();
    slots.resize(a.layers.size());
    std::size_t n = 0;
    for (std::size_t l = 0; l < a.layers.size(); ++l) {
      for (int t = 0; t < kLoraTargets; ++t) {
        const LoraMatrix& lm = a.layers[l][static_cast<std::size_t>(t)];
        if (lm.empty()) continue;
        Slot& s = slots[l][static_cast<std::size_t>(t)];
        s.active = true;
        first_adapted = std::min(first_adapted, static_cast<int>(l));
        s.n_in = lm.n_in;
        s.n_out = lm.n_out;
        s.rank = lm.rank;
        s.a = n;
        n += lm.a.size();
        s.b = n;
        n += lm.b.size();
      }
    }
    params.resize(n);
    for (std::size_t l = 0; l < a.layers.size(); ++l) {
      for (int t = 0; t < kLoraTargets; ++t) {
        const Slot& s = slots[l][static_cast<std::size_t>(t)];
        if (!s.active) continue;
        const LoraMatrix& lm = a.layers[l][static_cast<std::size_t>(t)];
        std::copy(lm.a.begin(), lm.a.end(), params.begin() + static_cast<std::ptrdiff_t>(s.a));
        std::copy(lm.b.begin(), lm.b.end(), params.begin() + static_cast<std::ptrdiff_t>(s.b));
      }
    }
    grads.assign(n, S(0));
    m1.assign(n, S(0));
    m2.assign(n, S(0));
    acts.resize(static_cast<std::size_t>(c.n_layer));
  }

  // The projection `w` as a dense rows x cols matrix (in wbuf).
  const Mat<S>& dequantized(const WeightMatrix& w) {
    wbuf.resize(w.rows, w.cols);
    row.resize(static_cast<std::size_t>(w.cols));
    for (std::int64_t r = 0; r < w.rows; ++r) {
      const std::uint8_t* src = w.data + static_cast<std::size_t>(r) * w.row_stride;
      if constexpr (std::is_same_v<S, float>) {
        dequantize_row(w.type, src, wbuf.data() + r * w.cols, w.cols);
      } else {
        dequantize_row(w.type, src, row.data(), w.cols);
        for (std::int64_t c = 0; c < w.cols; ++c) wbuf(r, c) = static_cast<S>(row[c]);
      }
    }
    return wbuf;
  }

  // Rows `ids` of `w` (output head rows of the classes of a term).
  Mat<S> rows_of(const WeightMatrix& w, const std::vector<int>& ids) {
    Mat<S> out(static_cast<Eigen::Index>(ids.size()), w.cols);
    row.resize(static_cast<std::size_t>(w.cols));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= w.rows)
        throw std::out_of_range("loss class token " + std::to_string(ids[i]) +
                                " outside the vocabulary");
      dequantize_row(w.type, w.data + static_cast<std::size_t>(ids[i]) * w.row_stride, row.data(),
                     w.cols);
      for (std::int64_t c = 0; c < w.cols; ++c)
        out(static_cast<Eigen::Index>(i), c) = static_cast<S>(row[c]);
    }
    return out;
  }

  MapM<S> view(std::size_t offset, int rows, int cols) {
    return MapM<S>(params.data() + offset, rows, cols);
  }
  MapM<S> grad_view(std::size_t offset, int rows, int cols) {
    return MapM<S>(grads.data() + offset, rows, cols);
  }

  // out = in W^T (+ s B A in); keeps A in for the backward pass.
  void project(int layer, LoraTarget t, const Mat<S>& in, Mat<S>& out, Mat<S>& mid) {
    const WeightMatrix& w = base.layer(layer).projection(t);
    out.noalias() = in * dequantized(w).transpose();
    const Slot& s = slots[static_cast<std::size_t>(layer)][static_cast<std::size_t>(t)];
    if (!s.active) return;
    mid.noalias() = in * view(s.a, s.rank, s.n_in).transpose();
    out.noalias() += (static_cast<S>(scale) * mid) * view(s.b, s.n_out, s.rank).transpose();
  }

  // d_in += d_out W (+ LoRA path); adds the LoRA gradients.
  void project_backward(int layer, LoraTarget t, const Mat<S>& in, const Mat<S>& mid,
                        const Mat<S>& d_out, Mat<S>& d_in) {
    const WeightMatrix& w = base.layer(layer).projection(t);
    d_in.noalias() += d_out * dequantized(w);
    const Slot& s = slots[static_cast<std::size_t>(layer)][static_cast<std::size_t>(t)];
    if (!s.active) return;
    const S sc = static_cast<S>(scale);
    grad_view(s.b, s.n_out, s.rank).noalias() += sc * (d_out.transpose() * mid);
    const Mat<S> d_mid = sc * (d_out * view(s.b, s.n_out, s.rank));
    grad_view(s.a, s.rank, s.n_in).noalias() += d_mid.transpose() * in;
    d_in.noalias() += d_mid * view(s.a, s.rank, s.n_in);
  }

  static void rms_forward(const Mat<S>& x, const std::vector<float>& w, S eps, Mat<S>& y,
                          std::vector<S>& inv) {
    const Eigen::Index T = x.rows(), E = x.cols();
    y.resize(T, E);
    inv.resize(static_cast<std::size_t>(T));
    for (Eigen::Index t = 0; t < T; ++t) {
      S ss = 0;
      for (Eigen::Index i = 0; i < E; ++i) ss += x(t, i) * x(t, i);
      const S r = S(1) / std::sqrt(ss / static_cast<S>(E) + eps);
      inv[static_cast<std::size_t>(t)] = r;
      for (Eigen::Index i = 0; i < E; ++i) y(t, i) = x(t, i) * r * static_cast<S>(w[i]);
    }
  }

  // dx += d(rmsnorm)/dx^T dy.
  static void rms_backward(const Mat<S>& x, const std::vector<float>& w, const std::vector<S>& inv,
                           const Mat<S>& dy, Mat<S>& dx) {
    const Eigen::Index T = x.rows(), E = x.cols();
    for (Eigen::Index t = 0; t < T; ++t) {
      const S r = inv[static_cast<std::size_t>(t)];
      S dot = 0;
      for (Eigen::Index i = 0; i < E; ++i) dot += dy(t, i) * static_cast<S>(w[i]) * x(t, i);
      const S c = r * r * r * dot / static_cast<S>(E);
      for (Eigen::Index i = 0; i < E; ++i)
        dx(t, i) += r * dy(t, i) * static_cast<S>(w[i]) - x(t, i) * c;
    }
  }

  void rope_tables(int T) {
    const ModelConfig& c = base.config();
    const int half = c.n_rot / 2;
    const auto& ff = base.rope_freq_factors();
    const float bases[2] = {c.rope_base, c.rope_base_swa};
    for (int b = 0; b < 2; ++b) {
      if (b == 1 && c.sliding_window == 0) break;
      const float theta_scale = std::pow(bases[b], -2.0f / static_cast<float>(c.n_rot));
      cos_t[b].resize(static_cast<std::size_t>(T) * half);
      sin_t[b].resize(cos_t[b].size());
      for (int t = 0; t < T; ++t) {
        float theta = static_cast<float>(t);
        for (int i = 0; i < half; ++i) {
          const float f = ff.empty() ? 1.0f : ff[static_cast<std::size_t>(i)];
          cos_t[b][static_cast<std::size_t>(t) * half + i] = static_cast<S>(std::cos(theta / f));
          sin_t[b][static_cast<std::size_t>(t) * half + i] = static_cast<S>(std::sin(theta / f));
          theta *= theta_scale;
        }
      }
    }
  }

  // Rotates each head of m (T x heads*D) forward, or backward (the transpose) when inverse, with
  // the RoPE base of `layer`.
  void rope(Mat<S>& m, int heads, bool inverse, int layer) {
    const ModelConfig& c = base.config();
    const int half = c.n_rot / 2, D = c.head_dim;
    const int table = c.is_local(layer) && c.rope_base_swa != c.rope_base ? 1 : 0;
    for (Eigen::Index t = 0; t < m.rows(); ++t) {
      const S* cs = cos_t[table].data() + static_cast<std::size_t>(t) * half;
      const S* sn = sin_t[table].data() + static_cast<std::size_t>(t) * half;
      for (int h = 0; h < heads; ++h) {
        S* vec = m.data() + t * m.cols() + h * D;
        for (int i = 0; i < half; ++i) {
          const int a = c.rope_neox ? i : 2 * i;
          const int b = c.rope_neox ? i + half : 2 * i + 1;
          const S x0 = vec[a], x1 = vec[b];
          const S s = inverse ? -sn[i] : sn[i];
          vec[a] = x0 * cs[i] - x1 * s;
          vec[b] = x0 * s + x1 * cs[i];
        }
      }
    }
  }

  // RMSNorm of every head of m (T x heads*D) with the weights w (D): y and the inverse RMS of
  // each (token, head).
  static void head_rms_forward(const Mat<S>& m, const std::vector<float>& w, int D, S eps,
                               Mat<S>& y, std::vector<S>& inv) {
    const Mat<S> rows = CMap<S>(m.data(), m.rows() * m.cols() / D, D);
    Mat<S> yr;
    rms_forward(rows, w, eps, yr, inv);
    y = MapM<S>(yr.data(), m.rows(), m.cols());
  }
  static void head_rms_backward(const Mat<S>& m, const std::vector<float>& w, int D,
                                const std::vector<S>& inv, const Mat<S>& dy, Mat<S>& dm) {
    const Eigen::Index n = m.rows() * m.cols() / D;
    const Mat<S> rows = CMap<S>(m.data(), n, D);
    const Mat<S> dyr = CMap<S>(dy.data(), n, D);
    Mat<S> dr = Mat<S>::Zero(n, D);
    rms_backward(rows, w, inv, dyr, dr);
    dm += MapM<S>(dr.data(), m.rows(), m.cols());
  }

  // The factor the trainer's attention (which scales scores by 1/sqrt(D)) needs on the queries
  // to apply the model's own query scale.
  S query_factor() const {
    const ModelConfig& c = base.config();
    return static_cast<S>(c.attn_scale) * std::sqrt(static_cast<S>(c.head_dim));
  }

  static S gelu(S x) {
    const S a = static_cast<S>(0.79788456080286535587989211986876), b = static_cast<S>(0.044715);
    return S(0.5) * x * (S(1) + std::tanh(a * x * (S(1) + b * x * x)));
  }
  static S gelu_grad(S x) {
    const S a = static_cast<S>(0.79788456080286535587989211986876), b = static_cast<S>(0.044715);
    const S th = std::tanh(a * x * (S(1) + b * x * x));
    return S(0.5) * (S(1) + th) + S(0.5) * x * (S(1) - th * th) * a * (S(1) + S(3) * b * x * x);
  }

  static S silu(S g) { return g / (S(1) + std::exp(-g)); }

  // Forward over the whole sequence; keeps the activations.
  void forward(const std::vector<int>& tokens) {
    const ModelConfig& c = base.config();
    const int T = static_cast<int>(tokens.size());
    if (T == 0) throw std::invalid_argument("training sequence has no tokens");
    const int E = c.n_embd, D = c.head_dim;
    const int q_dim = c.n_head * D, kv_dim = c.n_head_kv * D;
    const S eps = static_cast<S>(c.rms_eps);
    rope_tables(T);

    Mat<S> x(T, E);
    const WeightMatrix& emb = base.token_embedding();
    row.resize(static_cast<std::size_t>(E));
    for (int t = 0; t < T; ++t) {
      const int tok = tokens[static_cast<std::size_t>(t)];
      if (tok < 0 || tok >= emb.rows)
        throw std::out_of_range("token id " + std::to_string(tok) + " outside the vocabulary");
      dequantize_row(emb.type, emb.data + static_cast<std::size_t>(tok) * emb.row_stride,
                     row.data(), E);
      for (int i = 0; i < E; ++i) x(t, i) = static_cast<S>(row[static_cast<std::size_t>(i)]);
    }
    if (c.embd_scale != 1.0f) x *= static_cast<S>(c.embd_scale);
    for (int li = first_adapted; li < c.n_layer; ++li)
      if (c.is_local(li) && T > c.sliding_window)
        throw std::invalid_argument("training sequence of " + std::to_string(T) +
                                    " tokens is longer than the sliding window (" +
                                    std::to_string(c.sliding_window) + ")");
    const S qf = query_factor();
    Mat<S> tmp;
    for (int li = 0; li < c.n_layer; ++li) {
      const Model::Layer& L = base.layer(li);
      LayerActs& a = acts[static_cast<std::size_t>(li)];
      a.x_in = x;
      rms_forward(a.x_in, L.attn_norm, eps, a.xn1, a.inv1);
      project(li, LoraTarget::kQ, a.xn1, a.q, a.lora_mid[0]);
      project(li, LoraTarget::kK, a.xn1, a.k, a.lora_mid[1]);
      project(li, LoraTarget::kV, a.xn1, a.v, a.lora_mid[2]);
      if (!L.bq.empty()) {
        for (int t = 0; t < T; ++t) {
          for (int i = 0; i < q_dim; ++i) a.q(t, i) += static_cast<S>(L.bq[i]);
          for (int i = 0; i < kv_dim; ++i) a.k(t, i) += static_cast<S>(L.bk[i]);
          for (int i = 0; i < kv_dim; ++i) a.v(t, i) += static_cast<S>(L.bv[i]);
        }
      }
      if (c.qk_norm) {
        a.q_pre = a.q;
        a.k_pre = a.k;
        head_rms_forward(a.q_pre, L.q_norm, D, eps, a.q, a.q_inv);
        head_rms_forward(a.k_pre, L.k_norm, D, eps, a.k, a.k_inv);
      }
      rope(a.q, c.n_head, false, li);
      rope(a.k, c.n_head_kv, false, li);
      if (qf != S(1)) a.q *= qf;
      nn::attention_forward<S>(a.q, a.k, a.v, c.n_head, c.n_head_kv, true, a.probs, a.attn,
                               threads);
      project(li, LoraTarget::kO, a.attn, tmp, a.lora_mid[3]);
      if (c.post_norms) {
        a.o_raw = std::move(tmp);
        rms_forward(a.o_raw, L.attn_post_norm, eps, tmp, a.post_inv1);
      }
      a.x_mid = a.x_in + tmp;
      rms_forward(a.x_mid, L.ffn_norm, eps, a.xn2, a.inv2);
      project(li, LoraTarget::kGate, a.xn2, a.g, a.lora_mid[4]);
      project(li, LoraTarget::kUp, a.xn2, a.u, a.lora_mid[5]);
      const bool geglu = c.geglu;
      Mat<S> h =
          a.g.unaryExpr([geglu](S v) { return geglu ? gelu(v) : silu(v); }).cwiseProduct(a.u);
      project(li, LoraTarget::kDown, h, tmp, a.lora_mid[6]);
      if (c.post_norms) {
        a.f_raw = std::move(tmp);
        rms_forward(a.f_raw, L.ffn_post_norm, eps, tmp, a.post_inv2);
      }
      x = a.x_mid + tmp;
    }
    x_final = std::move(x);
  }

  // Loss of the terms on the last forward; fills d_final (gradient w.r.t. x_final) when asked.
  // Full-vocabulary terms go through the head together, kHeadRows at a time, as GEMMs: one GEMV per
  // term would read the whole output matrix twice per term, which made the head cost more than
  // the layers once every line of a sequence is a target.
  double head(const std::vector<LossTerm>& terms, Mat<S>* d_final,
              std::vector<std::vector<double>>* logits_out) {
    const ModelConfig& c = base.config();
    const int E = c.n_embd;
    const S eps = static_cast<S>(c.rms_eps);
    if (d_final) d_final->setZero(x_final.rows(), E);
    if (logits_out) logits_out->assign(terms.size(), {});
    double total = 0.0;
    // Softmax cross-entropy of each row of z (in place: z becomes weight * dL/dz when `grad`).
    auto cross_entropy = [&](Mat<S>& z, const std::vector<int>& target,
                             const std::vector<float>& weight, bool grad) {
      for (Eigen::Index k = 0; k < z.rows(); ++k) {
        const S mx = z.row(k).maxCoeff();
        S sum = 0;
        for (Eigen::Index i = 0; i < z.cols(); ++i) sum += std::exp(z(k, i) - mx);
        const S lse = mx + std::log(sum);
        const std::size_t kk = static_cast<std::size_t>(k);
        total += static_cast<double>(weight[kk]) * static_cast<double>(lse - z(k, target[kk]));
        if (!grad) continue;
        for (Eigen::Index i = 0; i < z.cols(); ++i) z(k, i) = std::exp(z(k, i) - lse);
        z(k, target[kk]) -= S(1);
        z.row(k) *= static_cast<S>(weight[kk]);
      }
    };
    auto keep_logits = [&](const Mat<S>& z, Eigen::Index row, std::size_t term) {
      std::vector<double> lz(static_cast<std::size_t>(z.cols()));
      for (Eigen::Index i = 0; i < z.cols(); ++i) lz[static_cast<std::size_t>(i)] = z(row, i);
      (*logits_out)[term] = std::move(lz);
    };
    std::vector<std::size_t> full_terms;
    for (std::size_t t = 0; t < terms.size(); ++t) {
      const LossTerm& term = terms[t];
      if (term.position < 0 || term.position >= x_final.rows())
        throw std::out_of_range("loss term position outside the sequence");
      if (term.classes.empty()) {
        if (term.target < 0 || term.target >= c.n_vocab)
          throw std::invalid_argument("loss term target is not among its classes");
        full_terms.push_back(t);
        continue;
      }
      Mat<S> xr = x_final.row(term.position);
      Mat<S> xn;
      std::vector<S> inv;
      rms_forward(xr, base.output_norm(), eps, xn, inv);
      const Mat<S> W = rows_of(base.output_matrix(), term.classes);
      int target_index = -1;
      for (std::size_t i = 0; i < term.classes.size(); ++i)
        if (term.classes[i] == term.target) target_index = static_cast<int>(i);
      if (target_index < 0)
        throw std::invalid_argument("loss term target is not among its classes");
      Mat<S> z = xn * W.transpose();  // 1 x K
      if (logits_out) keep_logits(z, 0, t);
      cross_entropy(z, {target_index}, {term.weight}, d_final != nullptr);
      if (!d_final) continue;
      const Mat<S> dxn = z * W;
      Mat<S> dxr = Mat<S>::Zero(1, E);
      rms_backward(xr, base.output_norm(), inv, dxn, dxr);
      d_final->row(term.position) += dxr;
    }
    if (full_terms.empty()) return total;
    const Mat<S>& W = dequantized(base.output_matrix());
    constexpr std::size_t kHeadRows = 128;  // bounds the logits block (rows x vocabulary)
    for (std::size_t first = 0; first < full_terms.size(); first += kHeadRows) {
      const std::size_t n = std::min(kHeadRows, full_terms.size() - first);
      Mat<S> xr(static_cast<Eigen::Index>(n), E);
      std::vector<int> target(n);
      std::vector<float> weight(n);
      for (std::size_t k = 0; k < n; ++k) {
        const LossTerm& term = terms[full_terms[first + k]];
        xr.row(static_cast<Eigen::Index>(k)) = x_final.row(term.position);
        target[k] = term.target;
        weight[k] = term.weight;
      }
      Mat<S> xn;
      std::vector<S> inv;
      rms_forward(xr, base.output_norm(), eps, xn, inv);
      Mat<S> z = xn * W.transpose();  // n x vocabulary
      if (logits_out)
        for (std::size_t k = 0; k < n; ++k)
          keep_logits(z, static_cast<Eigen::Index>(k), full_terms[first + k]);
      cross_entropy(z, target, weight, d_final != nullptr);
      if (!d_final) continue;
      const Mat<S> dxn = z * W;
      Mat<S> dxr = Mat<S>::Zero(static_cast<Eigen::Index>(n), E);
      rms_backward(xr, base.output_norm(), inv, dxn, dxr);
      for (std::size_t k = 0; k < n; ++k)
        d_final->row(terms[full_terms[first + k]].position) +=
            dxr.row(static_cast<Eigen::Index>(k));
    }
    return total;
  }

  void backward(Mat<S> dx) {
    const ModelConfig& c = base.config();
    const int T = static_cast<int>(dx.rows());
    const int D = c.head_dim;
    const int q_dim = c.n_head * D, kv_dim = c.n_head_kv * D;
    for (int li = c.n_layer - 1; li >= first_adapted; --li) {
      const Model::Layer& L = base.layer(li);
      LayerActs& a = acts[static_cast<std::size_t>(li)];
      // Feed-forward: x = x_mid + [post-norm](down(act(g) * u)), act = silu or gelu.
      Mat<S> d_ffn_out;
      if (c.post_norms) {
        d_ffn_out = Mat<S>::Zero(T, c.n_embd);
        rms_backward(a.f_raw, L.ffn_post_norm, a.post_inv2, dx, d_ffn_out);
      }
      const Mat<S>& d_down = c.post_norms ? d_ffn_out : dx;
      Mat<S> act, act_grad;
      if (c.geglu) {
        act = a.g.unaryExpr([](S v) { return gelu(v); });
        act_grad = a.g.unaryExpr([](S v) { return gelu_grad(v); });
      } else {
        const Mat<S> sig = a.g.unaryExpr([](S v) { return S(1) / (S(1) + std::exp(-v)); });
        act = a.g.cwiseProduct(sig);
        act_grad = sig.cwiseProduct(Mat<S>::Ones(T, c.n_ff) +
                                    a.g.cwiseProduct(Mat<S>::Ones(T, c.n_ff) - sig));
      }
      const Mat<S> h = act.cwiseProduct(a.u);
      Mat<S> dh = Mat<S>::Zero(T, c.n_ff);
      project_backward(li, LoraTarget::kDown, h, a.lora_mid[6], d_down, dh);
      const Mat<S> du = dh.cwiseProduct(act);
      const Mat<S> dg = dh.cwiseProduct(a.u).cwiseProduct(act_grad);
      Mat<S> dxn2 = Mat<S>::Zero(T, c.n_embd);
      project_backward(li, LoraTarget::kGate, a.xn2, a.lora_mid[4], dg, dxn2);
      project_backward(li, LoraTarget::kUp, a.xn2, a.lora_mid[5], du, dxn2);
      rms_backward(a.x_mid, L.ffn_norm, a.inv2, dxn2, dx);  // dx is now d x_mid
      // Attention: x_mid = x_in + [post-norm](o(attn)).
      Mat<S> d_attn_out;
      if (c.post_norms) {
        d_attn_out = Mat<S>::Zero(T, c.n_embd);
        rms_backward(a.o_raw, L.attn_post_norm, a.post_inv1, dx, d_attn_out);
      }
      Mat<S> dattn = Mat<S>::Zero(T, q_dim);
      project_backward(li, LoraTarget::kO, a.attn, a.lora_mid[3], c.post_norms ? d_attn_out : dx,
                       dattn);
      Mat<S> dq = Mat<S>::Zero(T, q_dim), dk = Mat<S>::Zero(T, kv_dim),
             dv = Mat<S>::Zero(T, kv_dim);
      nn::attention_backward<S>(a.q, a.k, a.v, c.n_head, c.n_head_kv, true, a.probs, dattn, dq, dk,
                                dv, threads);
      const S qf = query_factor();
      if (qf != S(1)) dq *= qf;
      rope(dq, c.n_head, true, li);
      rope(dk, c.n_head_kv, true, li);
      if (c.qk_norm) {
        Mat<S> dq_pre = Mat<S>::Zero(T, q_dim), dk_pre = Mat<S>::Zero(T, kv_dim);
        head_rms_backward(a.q_pre, L.q_norm, D, a.q_inv, dq, dq_pre);
        head_rms_backward(a.k_pre, L.k_norm, D, a.k_inv, dk, dk_pre);
        dq = std::move(dq_pre);
        dk = std::move(dk_pre);
      }
      Mat<S> dxn1 = Mat<S>::Zero(T, c.n_embd);
      project_backward(li, LoraTarget::kQ, a.xn1, a.lora_mid[0], dq, dxn1);
      project_backward(li, LoraTarget::kK, a.xn1, a.lora_mid[1], dk, dxn1);
      project_backward(li, LoraTarget::kV, a.xn1, a.lora_mid[2], dv, dxn1);
      rms_backward(a.x_in, L.attn_norm, a.inv1, dxn1, dx);  // dx is now d x_in
    }
  }
};

template <typename S>
LoraTrainer<S>::LoraTrainer(const Model& base, const LoraAdapter& initial, TrainerOptions options)
    : impl_(std::make_unique<Impl>(base, initial, options)) {}

template <typename S>
LoraTrainer<S>::~LoraTrainer() = default;

template <typename S>
double LoraTrainer<S>::accumulate(const TrainingSequence& seq) {
  Eigen::setNbThreads(impl_->threads);
  impl_->forward(seq.tokens);
  Mat<S> d_final;
  const double loss = impl_->head(seq.terms, &d_final, nullptr);
  impl_->backward(std::move(d_final));
  impl_->tokens += static_cast<std::int64_t>(seq.tokens.size());
  return loss;
}

template <typename S>
double LoraTrainer<S>::loss(const TrainingSequence& seq) {
  Eigen::setNbThreads(impl_->threads);
  impl_->forward(seq.tokens);
  return impl_->head(seq.terms, nullptr, nullptr);
}

template <typename S>
std::vector<std::vector<double>> LoraTrainer<S>::term_logits(const TrainingSequence& seq) {
  Eigen::setNbThreads(impl_->threads);
  impl_->forward(seq.tokens);
  std::vector<std::vector<double>> out;
  impl_->head(seq.terms, nullptr, &out);
  return out;
}

template <typename S>
double LoraTrainer<S>::step(double lr, double grad_scale) {
  Impl& m = *impl_;
  double norm2 = 0.0;
  for (S g : m.grads) norm2 += static_cast<double>(g) * static_cast<double>(g);
  const double norm = std::sqrt(norm2) * grad_scale;
  double factor = grad_scale;
  if (m.options.clip_norm > 0.0 && norm > m.options.clip_norm) factor *= m.options.clip_norm / norm;
  ++m.steps;
  const double b1 = m.options.beta1, b2 = m.options.beta2;
  const double bc1 = 1.0 - std::pow(b1, static_cast<double>(m.steps));
  const double bc2 = 1.0 - std::pow(b2, static_cast<double>(m.steps));
  for (std::size_t i = 0; i < m.params.size(); ++i) {
    const double g = static_cast<double>(m.grads[i]) * factor;
    const double mm = b1 * static_cast<double>(m.m1[i]) + (1.0 - b1) * g;
    const double vv = b2 * static_cast<double>(m.m2[i]) + (1.0 - b2) * g * g;
    m.m1[i] = static_cast<S>(mm);
    m.m2[i] = static_cast<S>(vv);
    const double p = static_cast<double>(m.params[i]);
    const double update =
        (mm / bc1) / (std::sqrt(vv / bc2) + m.options.eps) + m.options.weight_decay * p;
    m.params[i] = static_cast<S>(p - lr * update);
  }
  zero_grad();
  return norm;
}

template <typename S>
void LoraTrainer<S>::zero_grad() {
  std::fill(impl_->grads.begin(), impl_->grads.end(), S(0));
}

template <typename S>
std::span<S> LoraTrainer<S>::parameters() {
  return impl_->params;
}
template <typename S>
std::span<const S> LoraTrainer<S>::gradients() const {
  return impl_->grads;
}
template <typename S>
std::int64_t LoraTrainer<S>::steps_taken() const {
  return impl_->steps;
}
template <typename S>
std::span<const S> LoraTrainer<S>::first_moment() const {
  return impl_->m1;
}
template <typename S>
std::span<const S> LoraTrainer<S>::second_moment() const {
  return impl_->m2;
}
template <typename S>
std::int64_t LoraTrainer<S>::tokens_trained() const {
  return impl_->tokens;
}

template <typename S>
void LoraTrainer<S>::restore(std::span<const S> params, std::span<const S> m, std::span<const S> v,
                             std::int64_t steps) {
  Impl& im = *impl_;
  if (params.size() != im.params.size() || m.size() != im.params.size() ||
      v.size() != im.params.size())
    throw std::invalid_argument("trainer state does not match the adapter's parameter count");
  std::copy(params.begin(), params.end(), im.params.begin());
  std::copy(m.begin(), m.end(), im.m1.begin());
  std::copy(v.begin(), v.end(), im.m2.begin());
  im.steps = steps;
  zero_grad();
}

template <typename S>
LoraAdapter LoraTrainer<S>::adapter() const {
  const Impl& m = *impl_;
  LoraAdapter out = m.initial;
  for (std::size_t l = 0; l < out.layers.size(); ++l) {
    for (int t = 0; t < kLoraTargets; ++t) {
      const Slot& s = m.slots[l][static_cast<std::size_t>(t)];
      if (!s.active) continue;
      LoraMatrix& lm = out.layers[l][static_cast<std::size_t>(t)];
      for (std::size_t i = 0; i < lm.a.size(); ++i) lm.a[i] = static_cast<float>(m.params[s.a + i]);
      for (std::size_t i = 0; i < lm.b.size(); ++i) lm.b[i] = static_cast<float>(m.params[s.b + i]);
    }
  }
  return out;
}

template class LoraTrainer<float>;
template class LoraTrainer<double>;

}  // namespace chatrec::llm::runtime
