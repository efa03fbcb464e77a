#include "nn/adam.h"

#include <cmath>
#include <stdexcept>

namespace chatrec::nn {

template <typename S>
void Adam<S>::step(std::span<S> params, std::span<const S> grads, double lr) {
  if (params.size() != m_.size() || grads.size() != m_.size())
    throw std::invalid_argument("adam: parameter and gradient sizes differ from the optimizer's");
  ++t_;
  const S b1 = static_cast<S>(options_.beta1), b2 = static_cast<S>(options_.beta2);
  const S c1 = S(1) - static_cast<S>(std::pow(options_.beta1, static_cast<double>(t_)));
  const S c2 = S(1) - static_cast<S>(std::pow(options_.beta2, static_cast<double>(t_)));
  const S step = static_cast<S>(lr) * std::sqrt(c2) / c1;
  const S decay = static_cast<S>(lr * options_.weight_decay);
  const S eps = static_cast<S>(options_.eps);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const S g = grads[i];
    m_[i] = b1 * m_[i] + (S(1) - b1) * g;
    v_[i] = b2 * v_[i] + (S(1) - b2) * g * g;
    params[i] -= step * m_[i] / (std::sqrt(v_[i]) + eps) + decay * params[i];
  }
}

template class Adam<float>;
template class Adam<double>;

}  // namespace chatrec::nn
