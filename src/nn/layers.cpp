#include "nn/layers.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace chatrec::nn {

template <typename S>
void layer_norm_forward(const Mat<S>& x, const Vec<S>& gamma, const Vec<S>& beta, S eps, Mat<S>& y,
                        LayerNormCache<S>& cache) {
  const Eigen::Index T = x.rows(), E = x.cols();
  cache.xhat.resize(T, E);
  cache.inv_std.resize(static_cast<std::size_t>(T));
  y.resize(T, E);
  for (Eigen::Index t = 0; t < T; ++t) {
    const S mean = x.row(t).mean();
    const S var = (x.row(t).array() - mean).square().mean();
    const S inv = S(1) / std::sqrt(var + eps);
    cache.inv_std[static_cast<std::size_t>(t)] = inv;
    cache.xhat.row(t) = (x.row(t).array() - mean) * inv;
    y.row(t) = cache.xhat.row(t).cwiseProduct(gamma) + beta;
  }
}

template <typename S>
void layer_norm_backward(const Mat<S>& dy, const Vec<S>& gamma, const LayerNormCache<S>& cache,
                         Mat<S>& dx, Vec<S>& dgamma, Vec<S>& dbeta) {
  const Eigen::Index T = dy.rows(), E = dy.cols();
  if (dx.rows() != T || dx.cols() != E) dx.setZero(T, E);
  for (Eigen::Index t = 0; t < T; ++t) {
    const auto xhat = cache.xhat.row(t);
    dbeta += dy.row(t);
    dgamma += dy.row(t).cwiseProduct(xhat);
    const Vec<S> dxhat = dy.row(t).cwiseProduct(gamma);
    const S sum = dxhat.sum();
    const S dot = dxhat.dot(xhat);
    const S inv = cache.inv_std[static_cast<std::size_t>(t)];
    dx.row(t).array() +=
        (inv / static_cast<S>(E)) * (static_cast<S>(E) * dxhat.array() - sum - xhat.array() * dot);
  }
}

template <typename S>
void affine_forward(const Mat<S>& x, const Mat<S>& w, const Vec<S>& b, Mat<S>& y) {
  y.noalias() = x * w;
  y.rowwise() += b;
}

template <typename S>
void affine_backward(const Mat<S>& x, const Mat<S>& w, const Mat<S>& dy, Mat<S>* dx, Mat<S>& dw,
                     Vec<S>& db) {
  dw.noalias() += x.transpose() * dy;
  db += dy.colwise().sum();
  if (dx) {
    if (dx->rows() != dy.rows() || dx->cols() != w.rows()) dx->setZero(dy.rows(), w.rows());
    dx->noalias() += dy * w.transpose();
  }
}

template <typename S>
void attention_forward(const Mat<S>& q, const Mat<S>& k, const Mat<S>& v, int heads, int kv_heads,
                       bool causal, std::vector<Mat<S>>& probs, Mat<S>& out, int threads) {
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0 || q.cols() % heads != 0)
    throw std::invalid_argument("attention: heads must divide the width and kv_heads heads");
  const Eigen::Index T = q.rows();
  const Eigen::Index D = q.cols() / heads;
  const int group = heads / kv_heads;
  const S scale = S(1) / std::sqrt(static_cast<S>(D));
  probs.resize(static_cast<std::size_t>(heads));
  out.resize(T, q.cols());
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
  for (int h = 0; h < heads; ++h) {
    const Eigen::Index kvh = h / group;
    Mat<S>& P = probs[static_cast<std::size_t>(h)];
    P.noalias() = scale * (q.middleCols(h * D, D) * k.middleCols(kvh * D, D).transpose());
    for (Eigen::Index i = 0; i < T; ++i) {
      const Eigen::Index last = causal ? i : T - 1;
      S mx = -std::numeric_limits<S>::infinity();
      for (Eigen::Index j = 0; j <= last; ++j) mx = std::max(mx, P(i, j));
      S sum = 0;
      for (Eigen::Index j = 0; j <= last; ++j) {
        P(i, j) = std::exp(P(i, j) - mx);
        sum += P(i, j);
      }
      const S inv = S(1) / sum;
      for (Eigen::Index j = 0; j <= last; ++j) P(i, j) *= inv;
      for (Eigen::Index j = last + 1; j < T; ++j) P(i, j) = 0;
    }
    out.middleCols(h * D, D).noalias() = P * v.middleCols(kvh * D, D);
  }
}

template <typename S>
void attention_backward(const Mat<S>& q, const Mat<S>& k, const Mat<S>& v, int heads, int kv_heads,
                        bool causal, const std::vector<Mat<S>>& probs, const Mat<S>& dout,
                        Mat<S>& dq, Mat<S>& dk, Mat<S>& dv, int threads) {
  const Eigen::Index T = q.rows();
  const Eigen::Index D = q.cols() / heads;
  const int group = heads / kv_heads;
  const S scale = S(1) / std::sqrt(static_cast<S>(D));
  if (dq.rows() != T || dq.cols() != q.cols()) dq.setZero(T, q.cols());
  if (dk.rows() != T || dk.cols() != k.cols()) dk.setZero(T, k.cols());
  if (dv.rows() != T || dv.cols() != v.cols()) dv.setZero(T, v.cols());
  std::vector<Mat<S>> dk_h(static_cast<std::size_t>(heads)), dv_h(dk_h.size());
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1)
  for (int h = 0; h < heads; ++h) {
    const Eigen::Index kvh = h / group;
    const Mat<S>& P = probs[static_cast<std::size_t>(h)];
    const auto dO = dout.middleCols(h * D, D);
    dv_h[static_cast<std::size_t>(h)].noalias() = P.transpose() * dO;
    Mat<S> dP = dO * v.middleCols(kvh * D, D).transpose();
    for (Eigen::Index i = 0; i < T; ++i) {
      const Eigen::Index last = causal ? i : T - 1;
      S dot = 0;
      for (Eigen::Index j = 0; j <= last; ++j) dot += dP(i, j) * P(i, j);
      for (Eigen::Index j = 0; j <= last; ++j) dP(i, j) = P(i, j) * (dP(i, j) - dot) * scale;
      for (Eigen::Index j = last + 1; j < T; ++j) dP(i, j) = 0;
    }
    dq.middleCols(h * D, D).noalias() += dP * k.middleCols(kvh * D, D);
    dk_h[static_cast<std::size_t>(h)].noalias() = dP.transpose() * q.middleCols(h * D, D);
  }
  for (int h = 0; h < heads; ++h) {
    const Eigen::Index kvh = h / group;
    dk.middleCols(kvh * D, D) += dk_h[static_cast<std::size_t>(h)];
    dv.middleCols(kvh * D, D) += dv_h[static_cast<std::size_t>(h)];
  }
}

template <typename S>
S softmax_cross_entropy(const Mat<S>& logits, const std::vector<int>& target, S scale,
                        Mat<S>& dlogits) {
  const Eigen::Index T = logits.rows(), C = logits.cols();
  if (static_cast<Eigen::Index>(target.size()) != T)
    throw std::invalid_argument("cross-entropy: one target per row");
  dlogits.resize(T, C);
  S loss = 0;
  for (Eigen::Index t = 0; t < T; ++t) {
    const int y = target[static_cast<std::size_t>(t)];
    if (y < 0 || y >= C) throw std::out_of_range("cross-entropy: target outside the row");
    const S mx = logits.row(t).maxCoeff();
    dlogits.row(t) = (logits.row(t).array() - mx).exp();
    const S sum = dlogits.row(t).sum();
    loss += std::log(sum) + mx - logits(t, y);
    dlogits.row(t) *= scale / sum;
    dlogits(t, y) -= scale;
  }
  return loss;
}

#define CHATREC_NN_INSTANTIATE(S)                                                                  \
  template void layer_norm_forward<S>(const Mat<S>&, const Vec<S>&, const Vec<S>&, S, Mat<S>&,     \
                                      LayerNormCache<S>&);                                         \
  template void layer_norm_backward<S>(const Mat<S>&, const Vec<S>&, const LayerNormCache<S>&,     \
                                       Mat<S>&, Vec<S>&, Vec<S>&);                                 \
  template void affine_forward<S>(const Mat<S>&, const Mat<S>&, const Vec<S>&, Mat<S>&);           \
  template void affine_backward<S>(const Mat<S>&, const Mat<S>&, const Mat<S>&, Mat<S>*, Mat<S>&,  \
                                   Vec<S>&);                                                       \
  template void attention_forward<S>(const Mat<S>&, const Mat<S>&, const Mat<S>&, int, int, bool,  \
                                     std::vector<Mat<S>>&, Mat<S>&, int);                          \
  template void attention_backward<S>(const Mat<S>&, const Mat<S>&, const Mat<S>&, int, int, bool, \
                                      const std::vector<Mat<S>>&, const Mat<S>&, Mat<S>&, Mat<S>&, \
                                      Mat<S>&, int);                                               \
  template S softmax_cross_entropy<S>(const Mat<S>&, const std::vector<int>&, S, Mat<S>&);

CHATREC_NN_INSTANTIATE(float)
CHATREC_NN_INSTANTIATE(double)

}  // namespace chatrec::nn
