#include "recommend/mf.h"

#include <fmt/format.h>

#include <cmath>

#include "common/random.h"
#include "recommend/detail.h"

namespace chatrec::recommend {

MfRecommender::MfRecommender(const Params& params) {
  detail::ParamReader r("mf", params);
  factors_ = r.integer("factors", 100, 1, 4096);
  epochs_ = r.integer("epochs", 40, 0, 100000);
  lr_ = r.real("lr", 0.007, 0.0, 10.0);
  reg_ = r.real("reg", 0.05, 0.0, 100.0);
  reg_bias_ = r.real("reg_bias", 0.02, 0.0, 100.0);
  init_std_ = r.real("init_std", 0.1, 0.0, 10.0);
  lr_decay_ = r.real("lr_decay", 0.97, 0.0, 1.0);
  r.finish();
}

Params MfRecommender::params() const {
  return {{"factors", std::to_string(factors_)},
          {"epochs", std::to_string(epochs_)},
          {"lr", detail::fmt_param(lr_)},
          {"reg", detail::fmt_param(reg_)},
          {"reg_bias", detail::fmt_param(reg_bias_)},
          {"init_std", detail::fmt_param(init_std_)},
          {"lr_decay", detail::fmt_param(lr_decay_)}};
}

void MfRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  if (!train.has_ratings()) throw std::invalid_argument("mf: the training data has no ratings");
  remember(train);
  const auto nu = static_cast<Eigen::Index>(train.num_users()),
             ni = static_cast<Eigen::Index>(train.num_items());
  struct Rating {
    UserIndex u;
    ItemIndex i;
    float r;
  };
  std::vector<Rating> ratings;
  ratings.reserve(train.nnz());
  for (UserIndex u = 0; u < nu; ++u) {
    auto items = train.items_of(u);
    auto rs = train.ratings_of(u);
    for (std::size_t k = 0; k < items.size(); ++k) {
      if (!std::isnan(rs[k])) ratings.push_back({u, items[k], rs[k]});
    }
  }
  mu_ = static_cast<float>(train.global_mean());
  Rng rng(options.seed);
  user_bias_ = Eigen::VectorXf::Zero(nu);
  item_bias_ = Eigen::VectorXf::Zero(ni);
  user_factors_.resize(factors_, nu);
  item_factors_.resize(factors_, ni);
  for (Eigen::Index k = 0; k < user_factors_.size(); ++k)
    user_factors_.data()[k] = static_cast<float>(rng.normal(0, init_std_));
  for (Eigen::Index k = 0; k < item_factors_.size(); ++k)
    item_factors_.data()[k] = static_cast<float>(rng.normal(0, init_std_));

  auto progress =
      detail::maybe_progress(options, "mf", static_cast<std::uint64_t>(epochs_), "epoch");
  const float reg = static_cast<float>(reg_), reg_b = static_cast<float>(reg_bias_);
  float lr = static_cast<float>(lr_);
  double sse = 0;
  for (int epoch = 0; epoch < epochs_; ++epoch) {
    rng.shuffle(ratings);
    sse = 0;
    for (const auto& x : ratings) {
      auto p = user_factors_.col(x.u);
      auto q = item_factors_.col(x.i);
      const float e = x.r - (mu_ + user_bias_(x.u) + item_bias_(x.i) + p.dot(q));
      sse += static_cast<double>(e) * e;
      user_bias_(x.u) += lr * (e - reg_b * user_bias_(x.u));
      item_bias_(x.i) += lr * (e - reg_b * item_bias_(x.i));
      for (int f = 0; f < factors_; ++f) {
        const float pf = p(f), qf = q(f);
        p(f) += lr * (e * qf - reg * pf);
        q(f) += lr * (e * pf - reg * qf);
      }
    }
    lr *= static_cast<float>(lr_decay_);
    if (progress) {
      progress->set_postfix(fmt::format("train rmse {:.4f}",
                                        std::sqrt(sse / std::max<std::size_t>(1, ratings.size()))));
      progress->advance();
    }
  }
}

float MfRecommender::predict(UserIndex user, ItemIndex item) const {
  return mu_ + user_bias_(user) + item_bias_(item) +
         user_factors_.col(user).dot(item_factors_.col(item));
}

void MfRecommender::score(UserIndex user, std::span<float> out) const {
  Eigen::Map<Eigen::RowVectorXf> s(out.data(), static_cast<Eigen::Index>(out.size()));
  s.noalias() = user_factors_.col(user).transpose() * item_factors_;
  s += item_bias_.transpose();
  s.array() += mu_ + user_bias_(user);
}

void MfRecommender::save_state(std::ostream& out) const {
  detail::write_pod(out, mu_);
  detail::write_matrix(out, user_bias_);
  detail::write_matrix(out, item_bias_);
  detail::write_matrix(out, user_factors_);
  detail::write_matrix(out, item_factors_);
}

void MfRecommender::load_state(std::istream& in) {
  mu_ = detail::read_pod<float>(in, "mf global mean");
  user_bias_ = detail::read_matrix<Eigen::VectorXf>(in, "mf user biases");
  item_bias_ = detail::read_matrix<Eigen::VectorXf>(in, "mf item biases");
  user_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "mf user factors");
  item_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "mf item factors");
  if (user_bias_.size() != static_cast<Eigen::Index>(num_users_) ||
      item_bias_.size() != static_cast<Eigen::Index>(num_items_) ||
      user_factors_.cols() != user_bias_.size() || item_factors_.cols() != item_bias_.size() ||
      user_factors_.rows() != item_factors_.rows()) {
    throw std::runtime_error("model file is corrupt (mf state sizes)");
  }
}

}  // namespace chatrec::recommend
