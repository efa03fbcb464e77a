#include "recommend/als.h"

#include <fmt/format.h>

#include "common/random.h"
#include "recommend/detail.h"

namespace chatrec::recommend {

AlsRecommender::AlsRecommender(const Params& params) {
  detail::ParamReader r("als", params);
  factors_ = r.integer("factors", 64, 1, 4096);
  iterations_ = r.integer("iterations", 15, 0, 10000);
  cg_steps_ = r.integer("cg_steps", 3, 1, 100);
  reg_ = r.real("reg", 50.0, 0.0, 1e9);
  alpha_ = r.real("alpha", 5.0, 0.0, 1e9);
  init_std_ = r.real("init_std", 0.01, 0.0, 10.0);
  r.finish();
}

Params AlsRecommender::params() const {
  return {{"factors", std::to_string(factors_)},   {"iterations", std::to_string(iterations_)},
          {"cg_steps", std::to_string(cg_steps_)}, {"reg", detail::fmt_param(reg_)},
          {"alpha", detail::fmt_param(alpha_)},    {"init_std", detail::fmt_param(init_std_)}};
}

namespace {
// One half-sweep: re-solves every column of X against the fixed Y, where rows_of(x) lists Y's
// columns with positive preference.
template <typename RowsOf>
void cg_sweep(Eigen::MatrixXf& X, const Eigen::MatrixXf& Y, RowsOf rows_of, float reg, float alpha,
              int cg_steps, int threads) {
  const Eigen::MatrixXf yty =
      Y * Y.transpose() + reg * Eigen::MatrixXf::Identity(Y.rows(), Y.rows());
  const float conf = 1.0f + alpha;
#pragma omp parallel num_threads(threads)
  {
    Eigen::VectorXf r(Y.rows()), p(Y.rows()), ap(Y.rows());
#pragma omp for schedule(dynamic, 64)
    for (Eigen::Index u = 0; u < X.cols(); ++u) {
      auto x = X.col(u);
      auto rows = rows_of(static_cast<std::uint32_t>(u));
      // r = b - A x with b = sum c_i y_i and A = YtY + reg I + sum (c_i - 1) y_i y_i^T.
      r.noalias() = -yty * x;
      for (auto i : rows) {
        auto y = Y.col(i);
        r += (conf - (conf - 1.0f) * y.dot(x)) * y;
      }
      p = r;
      float rs_old = r.squaredNorm();
      if (rs_old < 1e-20f) continue;
      for (int step = 0; step < cg_steps; ++step) {
        ap.noalias() = yty * p;
        for (auto i : rows) {
          auto y = Y.col(i);
          ap += (conf - 1.0f) * y.dot(p) * y;
        }
        const float a = rs_old / p.dot(ap);
        x += a * p;
        r -= a * ap;
        const float rs_new = r.squaredNorm();
        if (rs_new < 1e-20f) break;
        p = r + (rs_new / rs_old) * p;
        rs_old = rs_new;
      }
    }
  }
}
}  // namespace

void AlsRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  remember(train);
  const auto nu = static_cast<Eigen::Index>(train.num_users()),
             ni = static_cast<Eigen::Index>(train.num_items());
  Rng rng(options.seed);
  user_factors_.resize(factors_, nu);
  item_factors_.resize(factors_, ni);
  for (auto* m : {&user_factors_, &item_factors_}) {
    for (Eigen::Index k = 0; k < m->size(); ++k)
      m->data()[k] = static_cast<float>(rng.normal(0, init_std_));
  }
  const int threads = detail::thread_count(options);
  auto progress =
      detail::maybe_progress(options, "als", static_cast<std::uint64_t>(iterations_), "iter");
  for (int it = 0; it < iterations_; ++it) {
    cg_sweep(
        user_factors_, item_factors_, [&](std::uint32_t u) { return train.items_of(u); },
        static_cast<float>(reg_), static_cast<float>(alpha_), cg_steps_, threads);
    cg_sweep(
        item_factors_, user_factors_, [&](std::uint32_t i) { return train.users_of(i); },
        static_cast<float>(reg_), static_cast<float>(alpha_), cg_steps_, threads);
    if (progress) progress->advance();
  }
}

void AlsRecommender::score(UserIndex user, std::span<float> out) const {
  Eigen::Map<Eigen::RowVectorXf> s(out.data(), static_cast<Eigen::Index>(out.size()));
  s.noalias() = user_factors_.col(user).transpose() * item_factors_;
}

void AlsRecommender::save_state(std::ostream& out) const {
  detail::write_matrix(out, user_factors_);
  detail::write_matrix(out, item_factors_);
}

void AlsRecommender::load_state(std::istream& in) {
  user_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "als user factors");
  item_factors_ = detail::read_matrix<Eigen::MatrixXf>(in, "als item factors");
  if (user_factors_.cols() != static_cast<Eigen::Index>(num_users_) ||
      item_factors_.cols() != static_cast<Eigen::Index>(num_items_) ||
      user_factors_.rows() != item_factors_.rows()) {
    throw std::runtime_error("model file is corrupt (als state sizes)");
  }
}

}  // namespace chatrec::recommend
