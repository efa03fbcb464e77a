#pragma once
// Forward and backward passes of the transformer pieces chatrec trains on the CPU: layer norm,
// affine layers, grouped-query softmax attention (causal or bidirectional), and softmax
// cross-entropy over a candidate set. Matrices are row-major, one row per sequence position.
// Templates over the scalar type, so tests check float results and finite differences in double
// precision. Backward functions *add* to their gradient outputs (gradients accumulate over a
// batch); the caller zeroes them.
#include <Eigen/Core>
#include <vector>

namespace chatrec::nn {

template <typename S>
using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using Vec = Eigen::Matrix<S, 1, Eigen::Dynamic>;  // row vector (biases, norm weights)

// y = (x - mean) / sqrt(var + eps) * gamma + beta, per row.
template <typename S>
struct LayerNormCache {
  Mat<S> xhat;
  std::vector<S> inv_std;
};
template <typename S>
void layer_norm_forward(const Mat<S>& x, const Vec<S>& gamma, const Vec<S>& beta, S eps, Mat<S>& y,
                        LayerNormCache<S>& cache);
template <typename S>
void layer_norm_backward(const Mat<S>& dy, const Vec<S>& gamma, const LayerNormCache<S>& cache,
                         Mat<S>& dx, Vec<S>& dgamma, Vec<S>& dbeta);

// y = x W + b, W of shape in x out.
template <typename S>
void affine_forward(const Mat<S>& x, const Mat<S>& w, const Vec<S>& b, Mat<S>& y);
// dx += dy W^T (skipped when dx is null), dW += x^T dy, db += column sums of dy.
template <typename S>
void affine_backward(const Mat<S>& x, const Mat<S>& w, const Mat<S>& dy, Mat<S>* dx, Mat<S>& dw,
                     Vec<S>& db);

// Softmax attention over T positions: q is T x (heads * D), k and v are T x (kv_heads * D); query
// head h reads key/value head h / (heads / kv_heads) (grouped-query attention; kv_heads == heads is
// plain multi-head attention). Scores are scaled by 1 / sqrt(D). Causal: position i reads
// positions <= i only (bidirectional: all). `probs` keeps each head's T x T attention weights (zero
// above the diagonal when causal) for the backward pass. Heads run in parallel on `threads`; a
// key/value head's gradient sums its query heads' parts in head order, so the result does not
// depend on the thread count. The LoRA trainer (llm/runtime) and the sequence transformers
// (recommend) share it.
template <typename S>
void attention_forward(const Mat<S>& q, const Mat<S>& k, const Mat<S>& v, int heads, int kv_heads,
                       bool causal, std::vector<Mat<S>>& probs, Mat<S>& out, int threads = 1);
template <typename S>
void attention_backward(const Mat<S>& q, const Mat<S>& k, const Mat<S>& v, int heads, int kv_heads,
                        bool causal, const std::vector<Mat<S>>& probs, const Mat<S>& dout,
                        Mat<S>& dq, Mat<S>& dk, Mat<S>& dv, int threads = 1);

// Softmax cross-entropy of each row of `logits` with target column `target[t]`; returns the summed
// loss and writes d(sum loss)/d logits * scale into dlogits.
template <typename S>
S softmax_cross_entropy(const Mat<S>& logits, const std::vector<int>& target, S scale,
                        Mat<S>& dlogits);

}  // namespace chatrec::nn
