#include "recommend/neighbourhood.h"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

#include "recommend/detail.h"

namespace chatrec::recommend {

NeighbourhoodRecommender::NeighbourhoodRecommender(std::string name, Orientation orientation,
                                                   int default_k, const Params& params)
    : name_(std::move(name)), orientation_(orientation) {
  detail::ParamReader r(name_, params);
  k_ = r.integer("k", default_k, 1, 1 << 20);
  shrink_ = r.real("shrink", 10, 0.0, 1e9);
  alpha_ = r.real("alpha", 0.5, 0.0, 1.0);
  rating_k_ = r.integer("rating_k", 40, 1, 1 << 20);
  rating_shrink_ = r.real("rating_shrink", 100, 0.0, 1e9);
  rating_pool_ = r.integer("rating_pool", 1000, 1, 1 << 24);
  reg_user_ = r.real("baseline_reg_user", 15, 0.0, 1e9);
  reg_item_ = r.real("baseline_reg_item", 10, 0.0, 1e9);
  r.finish();
}

Params NeighbourhoodRecommender::params() const {
  return {{"k", std::to_string(k_)},
          {"shrink", detail::fmt_param(shrink_)},
          {"alpha", detail::fmt_param(alpha_)},
          {"rating_k", std::to_string(rating_k_)},
          {"rating_shrink", detail::fmt_param(rating_shrink_)},
          {"rating_pool", std::to_string(rating_pool_)},
          {"baseline_reg_user", detail::fmt_param(reg_user_)},
          {"baseline_reg_item", detail::fmt_param(reg_item_)}};
}

void NeighbourhoodRecommender::fit(const data::InteractionMatrix& train,
                                   const FitOptions& options) {
  remember(train);
  const int threads = detail::thread_count(options);
  auto progress = detail::maybe_progress(options, name_, train.has_ratings() ? 2 : 1, "step");
  neighbours_ = detail::implicit_neighbours(view(), k_, shrink_, alpha_, threads);
  if (progress) progress->advance();
  has_rating_state_ = train.has_ratings();
  rating_neighbours_.clear();
  if (has_rating_state_) {
    baselines_ = detail::fit_baselines(train, 10, reg_user_, reg_item_);
    rating_neighbours_ = detail::pearson_baseline_neighbours(view(), baselines_, rating_shrink_,
                                                             rating_pool_, threads);
    if (progress) progress->advance();
  }
}

float NeighbourhoodRecommender::predict(UserIndex user, ItemIndex item) const {
  if (!has_rating_state_)
    throw std::logic_error(name_ + ": trained without ratings, cannot predict ratings");
  const bool item_item = orientation_ == Orientation::kItemItem;
  return detail::knn_baseline_predict(view(), baselines_, rating_neighbours_,
                                      item_item ? item : user, item_item ? user : item, rating_k_);
}

void NeighbourhoodRecommender::save_state(std::ostream& out) const {
  detail::write_neighbours(out, neighbours_);
  detail::write_pod<std::uint8_t>(out, has_rating_state_ ? 1 : 0);
  if (has_rating_state_) {
    detail::write_baselines(out, baselines_);
    detail::write_neighbours(out, rating_neighbours_);
  }
}

void NeighbourhoodRecommender::load_state(std::istream& in) {
  neighbours_ = detail::read_neighbours(in, (name_ + " neighbours").c_str());
  has_rating_state_ = detail::read_pod<std::uint8_t>(in, (name_ + " rating flag").c_str()) != 0;
  if (has_rating_state_) {
    baselines_ = detail::read_baselines(in);
    rating_neighbours_ = detail::read_neighbours(in, (name_ + " rating neighbours").c_str());
  }
  const auto n = view().num_entities();
  auto bad = [&](const detail::NeighbourLists& l) {
    if (l.size() != n) return true;
    for (const auto& v : l) {
      for (const auto& x : v) {
        if (x.id >= n) return true;
      }
    }
    return false;
  };
  if (bad(neighbours_) ||
      (has_rating_state_ && (bad(rating_neighbours_) || baselines_.user.size() != num_users_ ||
                             baselines_.item.size() != num_items_))) {
    throw std::runtime_error(fmt::format("model file is corrupt ({} state sizes)", name_));
  }
}

}  // namespace chatrec::recommend
