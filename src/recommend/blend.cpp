#include "recommend/blend.h"

#include <fmt/format.h>
#include <Eigen/Dense>

#include <algorithm>

#include "common/random.h"
#include "common/text.h"
#include "recommend/detail.h"
#include "recommend/registry.h"

namespace chatrec::recommend {

BlendRecommender::BlendRecommender(const Params& params) {
  detail::ParamReader r("blend", params);
  auto it = params.find("members");
  members_ = it == params.end() ? "svdpp,itemknn,userknn,mf" : it->second;
  r.choice("members", members_, {members_});
  holdout_ = r.real("holdout", 0.1, 0.01, 0.9);
  ridge_ = r.real("ridge", 1.0, 0.0, 1e9);
  r.finish();
  for (const auto& m : make_members()) {
    if (!m->predicts_ratings() || m->name() == "blend") {
      throw std::invalid_argument(
          fmt::format("blend: member '{}' is not a rating model", m->name()));
    }
  }
}

Params BlendRecommender::params() const {
  return {{"members", members_},
          {"holdout", detail::fmt_param(holdout_)},
          {"ridge", detail::fmt_param(ridge_)}};
}

std::vector<std::unique_ptr<Recommender>> BlendRecommender::make_members() const {
  std::vector<std::unique_ptr<Recommender>> out;
  for (const auto& name : text::split(members_, ',')) {
    auto trimmed = std::string(text::trim(name));
    if (!trimmed.empty()) out.push_back(make_recommender(trimmed));
  }
  if (out.empty()) throw std::invalid_argument("blend: no members");
  return out;
}

void BlendRecommender::fit(const data::InteractionMatrix& train, const FitOptions& options) {
  if (!train.has_ratings()) throw std::invalid_argument("blend: the training data has no ratings");
  remember(train);
  // Seeded split of the ratings into member-training and blend-fitting parts.
  Rng rng(options.seed ^ 0xB1E4DULL);
  std::vector<data::Interaction> part, held;
  for (UserIndex u = 0; u < train.num_users(); ++u) {
    const auto& seq = train.sequence(u);
    auto items = train.items_of(u);
    auto rs = train.ratings_of(u);
    std::int64_t t = 0;
    for (std::size_t k = 0; k < items.size(); ++k) {
      data::Interaction x{u, items[k], rs[k], t++};
      (rng.uniform() < holdout_ && !std::isnan(rs[k]) ? held : part).push_back(x);
    }
    (void)seq;
  }
  data::InteractionMatrix part_matrix(train.num_users(), train.num_items(), part);
  FitOptions quiet = options;
  quiet.progress = false;
  auto progress = detail::maybe_progress(options, "blend", 2, "stage");
  models_ = make_members();
  const auto m = static_cast<Eigen::Index>(models_.size());
  Eigen::MatrixXd X(static_cast<Eigen::Index>(held.size()), m + 1);
  Eigen::VectorXd y(static_cast<Eigen::Index>(held.size()));
  for (auto& model : models_) model->fit(part_matrix, quiet);
  for (std::size_t r = 0; r < held.size(); ++r) {
    const auto row = static_cast<Eigen::Index>(r);
    X(row, 0) = 1.0;
    for (Eigen::Index k = 0; k < m; ++k)
      X(row, k + 1) = models_[static_cast<std::size_t>(k)]->predict(held[r].user, held[r].item);
    y(row) = held[r].rating;
  }
  if (progress) progress->advance();
  Eigen::MatrixXd A = X.transpose() * X;
  A.diagonal().tail(m).array() += ridge_;
  Eigen::VectorXd w = A.ldlt().solve(X.transpose() * y);
  weights_.assign(w.data(), w.data() + w.size());
  models_ = make_members();
  for (auto& model : models_) model->fit(train, quiet);
  if (progress) {
    progress->set_postfix(fmt::format("weights {:.3f}", fmt::join(weights_, " ")));
    progress->advance();
  }
}

float BlendRecommender::predict(UserIndex user, ItemIndex item) const {
  double s = weights_[0];
  for (std::size_t k = 0; k < models_.size(); ++k)
    s += weights_[k + 1] * models_[k]->predict(user, item);
  return static_cast<float>(s);
}

void BlendRecommender::score(UserIndex user, std::span<float> out) const {
  for (ItemIndex i = 0; i < out.size(); ++i) out[i] = predict(user, i);
}

void BlendRecommender::save_state(std::ostream& out) const {
  detail::write_vec(out, weights_);
  for (const auto& model : models_) model->save_state(out);
}

void BlendRecommender::load_state(std::istream& in) {
  weights_ = detail::read_vec<double>(in, "blend weights");
  models_ = make_members();
  if (weights_.size() != models_.size() + 1)
    throw std::runtime_error("model file is corrupt (blend weights)");
  for (auto& model : models_) {
    model->remember(*train_);
    model->load_state(in);
  }
}

}  // namespace chatrec::recommend
