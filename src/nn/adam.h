#pragma once
// Adam with bias correction and decoupled weight decay (AdamW) over a flat parameter vector.
#include <cstdint>
#include <span>
#include <vector>

namespace chatrec::nn {

struct AdamOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.0;
};

template <typename S>
class Adam {
 public:
  Adam(std::size_t size, AdamOptions options) : options_(options), m_(size, 0), v_(size, 0) {}
  void step(std::span<S> params, std::span<const S> grads, double lr);
  std::int64_t steps() const { return t_; }

 private:
  AdamOptions options_;
  std::vector<S> m_, v_;
  std::int64_t t_ = 0;
};

}  // namespace chatrec::nn
