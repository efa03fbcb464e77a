#include "recommend/svdpp.h"

#include <fmt/format.h>

#include <cmath>
#include <numeric>

#include "common/random.h"
#include "recommend/detail.h"

namespace chatrec::recommend {

SvdppRecommender::SvdppRecommender(const Params& params) {
  detail::ParamReader r("svdpp", params);
  factors_ = r.integer("factors", 50, 1, 4096);
  epochs_ = r.integer("epochs", 30, 0, 100000);
  lr_ = r.real("lr", 0.007, 0.0, 10.0);
  reg_ = r.real("reg", 0.05, 0.0, 100.0);
  reg_bias_ = r.real("reg_bias", 0.02, 0.0, 100.0);
  reg_y_ = r.real("reg_y", 0.05, 0.0, 100.0);
  init_std_ = r.real("init_std", 0.1, 0.0, 10.0);
  lr_decay_ = r.real("lr_decay", 0.96, 0.0, 1.0);
  r.finish();
}

Params SvdppRecommender::params() const {
  return {{"factors", std::to_string(factors_)},
          {"epochs", std::to_string(epochs_)},
          {"lr", detail::fmt_param(lr_)},
          {"reg", detail::fmt_param(reg_)},
          {"reg_bias", detail::fmt_param(reg_bias_)},
          {"reg_y", detail::fmt_param(reg_y_)},
          {"init_std", detail::fmt_param(init_std_)},
          {"lr_decay", detail::fmt_param(lr_decay_)}};
}

void SvdppRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  if (!train.has_ratings()) throw std::invalid_argument("svdpp: the training data has no ratings");
  remember(train);
  const auto nu = static_cast<Eigen::Index>(train.num_users()),
             ni = static_cast<Eigen::Index>(train.num_items());
  mu_ = static_cast<float>(train.global_mean());
  Rng rng(options.seed);
  user_bias_ = Eigen::VectorXf::Zero(nu);
  item_bias_ = Eigen::VectorXf::Zero(ni);
  user_factors_.resize(factors_, nu);
  item_factors_.resize(factors_, ni);
  implicit_factors_.resize(factors_, ni);
  for (auto* m : {&user_factors_, &item_factors_, &implicit_factors_}) {
    for (Eigen::Index k = 0; k < m->size(); ++k)
      m->data()[k] = static_cast<float>(rng.normal(0, init_std_));
  }
  std::vector<UserIndex> users(static_cast<std::size_t>(nu));
  std::iota(users.begin(), users.end(), 0);
  std::vector<std::size_t> order;
  Eigen::VectorXf z(factors_), acc(factors_);
  auto progress =
      detail::maybe_progress(options, "svdpp", static_cast<std::uint64_t>(epochs_), "epoch");
  const float reg = static_cast<float>(reg_), reg_b = static_cast<float>(reg_bias_),
              reg_y = static_cast<float>(reg_y_);
  float lr = static_cast<float>(lr_);
  for (int epoch = 0; epoch < epochs_; ++epoch) {
    rng.shuffle(users);
    double sse = 0;
    std::size_t n_seen = 0;
    for (auto u : users) {
      auto items = train.items_of(u);
      auto rs = train.ratings_of(u);
      if (items.empty()) continue;
      const float norm = 1.0f / std::sqrt(static_cast<float>(items.size()));
      z.setZero();
      for (auto j : items) z += implicit_factors_.col(j);
      z *= norm;
      auto p = user_factors_.col(u);
      order.resize(items.size());
      std::iota(order.begin(), order.end(), 0);
      rng.shuffle(order);
      acc.setZero();
      std::size_t rated = 0;
      for (auto k : order) {
        if (std::isnan(rs[k])) continue;
        ++rated;
        const ItemIndex i = items[k];
        auto q = item_factors_.col(i);
        const float e = rs[k] - (mu_ + user_bias_(u) + item_bias_(i) + q.dot(p + z));
        sse += static_cast<double>(e) * e;
        ++n_seen;
        user_bias_(u) += lr * (e - reg_b * user_bias_(u));
        item_bias_(i) += lr * (e - reg_b * item_bias_(i));
        acc += e * q;
        for (int f = 0; f < factors_; ++f) {
          const float pf = p(f), qf = q(f);
          p(f) += lr * (e * qf - reg * pf);
          q(f) += lr * (e * (pf + z(f)) - reg * qf);
        }
      }
      // The accumulated gradient of the implicit factors, applied once per user.
      if (rated > 0) {
        // Per-rating SGD would shrink y_j once per rating; cap the combined shrinkage for
        // stability.
        const float shrink = std::min(0.5f, lr * static_cast<float>(rated) * reg_y);
        for (auto j : items) {
          auto y = implicit_factors_.col(j);
          y = (1.0f - shrink) * y + (lr * norm) * acc;
        }
      }
    }
    lr *= static_cast<float>(lr_decay_);
    if (progress) {
      progress->set_postfix(
          fmt::format("train rmse {:.4f}", std::sqrt(sse / std::max<std::size_t>(1, n_seen))));
      progress->advance();
    }
  }
  compute_user_vectors();
}

void SvdppRecommender::compute_user_vectors() {
  user_vectors_ = user_factors_;
  for (UserIndex u = 0; u < num_users_; ++u) {
    auto items = train_->items_of(u);
    if (items.empty()) continue;
    Eigen::VectorXf z = Eigen::VectorXf::Zero(user_factors_.rows());
    for (auto j : items) z += implicit_factors_.col(j);
    user_vectors_.col(u) += z / std::sqrt(static_cast<float>(items.size()));
  }
}

float SvdppRecommender::predict(UserIndex user, ItemIndex item) const {
  return mu_ + user_bias_(user) + item_bias_(item) +
         user_vectors_.col(user).dot(item_factors_.col(item));
}

void SvdppRecommender::score(UserIndex user, std::span<float> out) const {
  Eigen::Map<Eigen::RowVectorXf> s(out.data(), static_cast<Eigen::Index>(out.size()));
  s.noalias() = user_vectors_.col(user).transpose() * item_factors_;
  s += item_bias_.transpose();
  s.array() += mu_ + user_bias_(user);
}

void SvdppRecommender::save_state(std::ostream& out) const {
  detail::write_pod(out, mu_);
  detail::write_matrix(out, user_bias_);
  detail::write_matrix(out, item_bias_);
  detail::write_matrix(out, user_factors_);
  detail::write_matrix(out, item_factors_);
  detail::write_matrix(out, implicit_factors_);
}

void SvdppRecommender::load_state(std::istream& in) {
  mu_ = detail::read_pod<float>(in, "svdpp global mean");
  user_bias_ = detail::read_matrix<Eigen::VectorXf>(in, "svdpp user biases");
  item_bias_ = detail::read_matrix<Eigen::VectorXf>(in, "svdpp item biases");
  user_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "svdpp user factors");
  item_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "svdpp item factors");
  implicit_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "svdpp implicit factors");
  if (user_bias_.size() != static_cast<Eigen::Index>(num_users_) ||
      item_bias_.size() != static_cast<Eigen::Index>(num_items_) ||
      user_factors_.cols() != user_bias_.size() || item_factors_.cols() != item_bias_.size() ||
      implicit_factors_.cols() != item_bias_.size() ||
      user_factors_.rows() != item_factors_.rows() ||
      implicit_factors_.rows() != item_factors_.rows()) {
    throw std::runtime_error("model file is corrupt (svdpp state sizes)");
  }
  compute_user_vectors();
}

}  // namespace chatrec::recommend
