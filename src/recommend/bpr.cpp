#include "recommend/bpr.h"

#include <fmt/format.h>

#include <cmath>

#include "common/random.h"
#include "recommend/detail.h"

namespace chatrec::recommend {

BprRecommender::BprRecommender(const Params& params) {
  detail::ParamReader r("bpr", params);
  factors_ = r.integer("factors", 64, 1, 4096);
  epochs_ = r.integer("epochs", 100, 0, 100000);
  lr_ = r.real("lr", 0.02, 0.0, 10.0);
  reg_ = r.real("reg", 0.01, 0.0, 100.0);
  init_std_ = r.real("init_std", 0.1, 0.0, 10.0);
  r.finish();
}

Params BprRecommender::params() const {
  return {{"factors", std::to_string(factors_)},
          {"epochs", std::to_string(epochs_)},
          {"lr", detail::fmt_param(lr_)},
          {"reg", detail::fmt_param(reg_)},
          {"init_std", detail::fmt_param(init_std_)}};
}

void BprRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  remember(train);
  const auto nu = static_cast<Eigen::Index>(train.num_users()),
             ni = static_cast<Eigen::Index>(train.num_items());
  Rng rng(options.seed);
  item_bias_ = Eigen::VectorXf::Zero(ni);
  user_factors_.resize(factors_, nu);
  item_factors_.resize(factors_, ni);
  for (auto* m : {&user_factors_, &item_factors_}) {
    for (Eigen::Index k = 0; k < m->size(); ++k)
      m->data()[k] = static_cast<float>(rng.normal(0, init_std_));
  }
  std::vector<std::pair<UserIndex, ItemIndex>> pairs;
  pairs.reserve(train.nnz());
  for (UserIndex u = 0; u < nu; ++u) {
    for (auto i : train.items_of(u)) pairs.emplace_back(u, i);
  }
  if (pairs.empty() || ni < 2) return;
  auto progress =
      detail::maybe_progress(options, "bpr", static_cast<std::uint64_t>(epochs_), "epoch");
  const float lr = static_cast<float>(lr_), reg = static_cast<float>(reg_);
  Eigen::VectorXf pu(factors_);
  for (int epoch = 0; epoch < epochs_; ++epoch) {
    double loss = 0;
    for (std::size_t s = 0; s < pairs.size(); ++s) {
      const auto [u, i] = pairs[rng.below(pairs.size())];
      ItemIndex j;
      do {
        j = static_cast<ItemIndex>(rng.below(static_cast<std::uint64_t>(ni)));
      } while (train.contains(u, j));
      auto p = user_factors_.col(u);
      auto qi = item_factors_.col(i);
      auto qj = item_factors_.col(j);
      const float x = item_bias_(i) - item_bias_(j) + p.dot(qi - qj);
      const float g = 1.0f / (1.0f + std::exp(x));  // d/dx log sigmoid(x)
      loss += std::log1p(std::exp(-x));
      pu = p;
      p += lr * (g * (qi - qj) - reg * p);
      qi += lr * (g * pu - reg * qi);
      qj += lr * (-g * pu - reg * qj);
      item_bias_(i) += lr * (g - reg * item_bias_(i));
      item_bias_(j) += lr * (-g - reg * item_bias_(j));
    }
    if (progress) {
      progress->set_postfix(
          fmt::format("bpr loss {:.4f}", loss / static_cast<double>(pairs.size())));
      progress->advance();
    }
  }
}

void BprRecommender::score(UserIndex user, std::span<float> out) const {
  Eigen::Map<Eigen::RowVectorXf> s(out.data(), static_cast<Eigen::Index>(out.size()));
  s.noalias() = user_factors_.col(user).transpose() * item_factors_;
  s += item_bias_.transpose();
}

void BprRecommender::save_state(std::ostream& out) const {
  detail::write_matrix(out, item_bias_);
  detail::write_matrix(out, user_factors_);
  detail::write_matrix(out, item_factors_);
}

void BprRecommender::load_state(std::istream& in) {
  item_bias_ = detail::read_matrix<Eigen::VectorXf>(in, "bpr item biases");
  user_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "bpr user factors");
  item_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "bpr item factors");
  if (item_bias_.size() != static_cast<Eigen::Index>(num_items_) ||
      user_factors_.cols() != static_cast<Eigen::Index>(num_users_) ||
      item_factors_.cols() != item_bias_.size() || user_factors_.rows() != item_factors_.rows()) {
    throw std::runtime_error("model file is corrupt (bpr state sizes)");
  }
}

}  // namespace chatrec::recommend
