#include "recommend/svdpp.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace chatrec::recommend {

SvdppRecommender::SvdppRecommender(const Params& params) : BiasedFactorRecommender("svdpp") {
  detail::ParamReader r(name(), params);
  read_sgd_options(r, {.factors = 50, .epochs = 30, .lr_decay = 0.96});
  reg_y_ = r.real("reg_y", 0.05, 0.0, 100.0);
  r.finish();
}

Params SvdppRecommender::params() const {
  auto p = BiasedFactorRecommender::params();
  p["reg_y"] = detail::fmt_param(reg_y_);
  return p;
}

void SvdppRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  auto run = start_fit(train, options);
  implicit_factors_.resize(factors_, static_cast<Eigen::Index>(train.num_items()));
  fill_normal(implicit_factors_, run);
  std::vector<UserIndex> users(train.num_users());
  std::iota(users.begin(), users.end(), 0);
  std::vector<std::size_t> order;
  Eigen::VectorXf z(factors_), acc(factors_);
  const float reg_y = static_cast<float>(reg_y_);
  for (int epoch = 0; epoch < epochs_; ++epoch) {
    run.rng.shuffle(users);
    const float lr = run.lr, reg = run.reg, reg_b = run.reg_bias;
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
      run.rng.shuffle(order);
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
        step_biases(u, i, e, lr, reg_b);
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
    end_epoch(run, sse, n_seen);
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

void SvdppRecommender::save_state(std::ostream& out) const {
  BiasedFactorRecommender::save_state(out);
  detail::write_matrix(out, implicit_factors_);
}

void SvdppRecommender::load_state(std::istream& in) {
  read_factor_state(in);
  implicit_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "svdpp implicit factors");
  if (!factor_state_fits() || implicit_factors_.cols() != item_bias_.size() ||
      implicit_factors_.rows() != item_factors_.rows()) {
    throw_corrupt_state();
  }
  compute_user_vectors();
}

}  // namespace chatrec::recommend
