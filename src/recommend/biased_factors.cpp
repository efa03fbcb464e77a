#include "recommend/biased_factors.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace chatrec::recommend {

void BiasedFactorRecommender::read_sgd_options(detail::ParamReader& r, Defaults defaults) {
  factors_ = r.integer("factors", defaults.factors, 1, 4096);
  epochs_ = r.integer("epochs", defaults.epochs, 0, 100000);
  lr_ = r.real("lr", 0.007, 0.0, 10.0);
  reg_ = r.real("reg", 0.05, 0.0, 100.0);
  reg_bias_ = r.real("reg_bias", 0.02, 0.0, 100.0);
  init_std_ = r.real("init_std", 0.1, 0.0, 10.0);
  lr_decay_ = r.real("lr_decay", defaults.lr_decay, 0.0, 1.0);
}

Params BiasedFactorRecommender::params() const {
  return {{"factors", std::to_string(factors_)},
          {"epochs", std::to_string(epochs_)},
          {"lr", detail::fmt_param(lr_)},
          {"reg", detail::fmt_param(reg_)},
          {"reg_bias", detail::fmt_param(reg_bias_)},
          {"init_std", detail::fmt_param(init_std_)},
          {"lr_decay", detail::fmt_param(lr_decay_)}};
}

BiasedFactorRecommender::SgdRun BiasedFactorRecommender::start_fit(
    const data::InteractionMatrix& train, const FitOptions& options) {
  if (!train.has_ratings())
    throw std::invalid_argument(name_ + ": the training data has no ratings");
  remember(train);
  const auto nu = static_cast<Eigen::Index>(train.num_users()),
             ni = static_cast<Eigen::Index>(train.num_items());
  mu_ = static_cast<float>(train.global_mean());
  SgdRun run{Rng(options.seed),
             detail::maybe_progress(options, name_, static_cast<std::uint64_t>(epochs_), "epoch"),
             static_cast<float>(lr_), static_cast<float>(reg_), static_cast<float>(reg_bias_)};
  user_bias_ = Eigen::VectorXf::Zero(nu);
  item_bias_ = Eigen::VectorXf::Zero(ni);
  user_factors_.resize(factors_, nu);
  item_factors_.resize(factors_, ni);
  fill_normal(user_factors_, run);
  fill_normal(item_factors_, run);
  return run;
}

void BiasedFactorRecommender::fill_normal(Eigen::MatrixXf& m, SgdRun& run) const {
  for (Eigen::Index k = 0; k < m.size(); ++k)
    m.data()[k] = static_cast<float>(run.rng.normal(0, init_std_));
}

void BiasedFactorRecommender::end_epoch(SgdRun& run, double sse, std::size_t n) const {
  run.lr *= static_cast<float>(lr_decay_);
  if (run.progress) {
    run.progress->set_postfix(
        fmt::format("train rmse {:.4f}", std::sqrt(sse / std::max<std::size_t>(1, n))));
    run.progress->advance();
  }
}

float BiasedFactorRecommender::predict(UserIndex user, ItemIndex item) const {
  return mu_ + user_bias_(user) + item_bias_(item) +
         user_vectors().col(user).dot(item_factors_.col(item));
}

void BiasedFactorRecommender::score(UserIndex user, std::span<float> out) const {
  Eigen::Map<Eigen::RowVectorXf> s(out.data(), static_cast<Eigen::Index>(out.size()));
  s.noalias() = user_vectors().col(user).transpose() * item_factors_;
  s += item_bias_.transpose();
  s.array() += mu_ + user_bias_(user);
}

void BiasedFactorRecommender::save_state(std::ostream& out) const {
  detail::write_pod(out, mu_);
  detail::write_matrix(out, user_bias_);
  detail::write_matrix(out, item_bias_);
  detail::write_matrix(out, user_factors_);
  detail::write_matrix(out, item_factors_);
}

void BiasedFactorRecommender::load_state(std::istream& in) {
  read_factor_state(in);
  if (!factor_state_fits()) throw_corrupt_state();
}

void BiasedFactorRecommender::read_factor_state(std::istream& in) {
  auto what = [&](const char* part) { return name_ + " " + part; };
  mu_ = detail::read_pod<float>(in, what("global mean").c_str());
  user_bias_ = detail::read_matrix<Eigen::VectorXf>(in, what("user biases").c_str());
  item_bias_ = detail::read_matrix<Eigen::VectorXf>(in, what("item biases").c_str());
  user_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, what("user factors").c_str());
  item_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, what("item factors").c_str());
}

bool BiasedFactorRecommender::factor_state_fits() const {
  return user_bias_.size() == static_cast<Eigen::Index>(num_users_) &&
         item_bias_.size() == static_cast<Eigen::Index>(num_items_) &&
         user_factors_.cols() == user_bias_.size() && item_factors_.cols() == item_bias_.size() &&
         user_factors_.rows() == item_factors_.rows();
}

void BiasedFactorRecommender::throw_corrupt_state() const {
  throw std::runtime_error(fmt::format("model file is corrupt ({} state sizes)", name_));
}

}  // namespace chatrec::recommend
