#include "recommend/ease.h"

#include <fmt/format.h>

#include "common/memory.h"
#include "recommend/detail.h"

namespace chatrec::recommend {

EaseRecommender::EaseRecommender(const Params& params) {
  detail::ParamReader r("ease", params);
  lambda_ = r.real("lambda", 300.0, 0.0, 1e9);
  max_items_ = r.integer("max_items", 0, 0, 1 << 20);
  r.finish();
}

Params EaseRecommender::params() const {
  return {{"lambda", detail::fmt_param(lambda_)}, {"max_items", std::to_string(max_items_)}};
}

std::uint64_t EaseRecommender::bytes_needed(std::size_t items) {
  // The Gram matrix (factored in place) and its inverse, in double; the float weights come after
  // the factor is freed and fit beside the inverse.
  return 2ull * items * items * sizeof(double);
}

std::optional<std::string> EaseRecommender::memory_problem(
    std::size_t items, int max_items, std::optional<std::uint64_t> available_bytes) {
  const double gib = static_cast<double>(bytes_needed(items)) / (1ull << 30);
  if (max_items > 0 && items > static_cast<std::size_t>(max_items))
    return fmt::format(
        "ease: {} items exceed max_items={} (the item-item matrices need {:.1f} GiB); raise "
        "max_items or use itemknn",
        items, max_items, gib);
  // A tenth is left for everything else the process holds.
  if (available_bytes && static_cast<double>(bytes_needed(items)) > 0.9 * *available_bytes)
    return fmt::format(
        "ease: {} items need {:.1f} GiB for the item-item matrices, and this machine has {:.1f} "
        "GiB "
        "available; use itemknn, or fewer items",
        items, gib, static_cast<double>(*available_bytes) / (1ull << 30));
  return std::nullopt;
}

void EaseRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  const auto n = static_cast<Eigen::Index>(train.num_items());
  if (auto problem = memory_problem(train.num_items(), max_items_, memory::available_bytes()))
    throw std::invalid_argument(*problem);
  remember(train);
  auto progress = detail::maybe_progress(options, "ease", 3, "step");
  const int threads = detail::thread_count(options);
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(n, n);  // double: the inverse of a large Gram matrix
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
  for (Eigen::Index i = 0; i < n; ++i) {
    auto col = gram.col(i);
    for (auto u : train.users_of(static_cast<ItemIndex>(i))) {
      for (auto j : train.items_of(u)) col(j) += 1.0;
    }
  }
  gram.diagonal().array() += lambda_;
  if (progress) progress->advance();
  Eigen::MatrixXd p;
  {
    // Factored in place, so the Gram matrix and its inverse are the only n x n doubles.
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(gram);
    if (llt.info() != Eigen::Success)
      throw std::runtime_error(
          "ease: the regularised Gram matrix is not positive definite; raise lambda");
    p = Eigen::MatrixXd::Identity(n, n);
    llt.solveInPlace(p);
  }
  gram = Eigen::MatrixXd();  // the factor
  if (progress) progress->advance();
  // Stored transposed: column h holds row h of B (B(h, j) = -P(h, j) / P(j, j)), so scoring a
  // history is a sum of contiguous columns.
  const Eigen::VectorXd inv_diag = p.diagonal().cwiseInverse();
  weights_.resize(n, n);
#pragma omp parallel for num_threads(threads)
  for (Eigen::Index h = 0; h < n; ++h) {
    weights_.col(h) = (-p.col(h).cwiseProduct(inv_diag)).cast<float>();
    weights_(h, h) = 0.0f;
  }
  if (progress) {
    progress->advance();
    progress->set_postfix(fmt::format("{} items, lambda {}", n, lambda_));
  }
}

void EaseRecommender::score_items(std::span<const ItemIndex> history, std::span<float> out) const {
  Eigen::Map<Eigen::VectorXf> s(out.data(), static_cast<Eigen::Index>(out.size()));
  s.setZero();
  for (auto h : history) s += weights_.col(h);
}

void EaseRecommender::score(UserIndex user, std::span<float> out) const {
  score_items(train_->items_of(user), out);
}

void EaseRecommender::save_state(std::ostream& out) const {
  detail::write_matrix(out, weights_);
}

void EaseRecommender::load_state(std::istream& in) {
  weights_ = detail::read_matrix<Eigen::MatrixXf>(in, "ease weights");
  if (weights_.rows() != static_cast<Eigen::Index>(num_items_) ||
      weights_.cols() != weights_.rows()) {
    throw std::runtime_error("model file is corrupt (ease weights size)");
  }
}

}  // namespace chatrec::recommend
