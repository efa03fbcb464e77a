#include "recommend/popularity.h"

#include <algorithm>

#include "recommend/detail.h"

namespace chatrec::recommend {

PopularityRecommender::PopularityRecommender(const Params& params) {
  detail::ParamReader r("popularity", params);
  r.finish();
}

Params PopularityRecommender::params() const {
  return {};
}

void PopularityRecommender::fit(const data::InteractionMatrix& train, const FitOptions&) {
  remember(train);
  counts_.assign(train.num_items(), 0.0f);
  for (ItemIndex i = 0; i < train.num_items(); ++i)
    counts_[i] = static_cast<float>(train.users_of(i).size());
}

void PopularityRecommender::score(UserIndex, std::span<float> out) const {
  std::copy(counts_.begin(), counts_.end(), out.begin());
}

void PopularityRecommender::score_items(std::span<const ItemIndex>, std::span<float> out) const {
  std::copy(counts_.begin(), counts_.end(), out.begin());
}

void PopularityRecommender::save_state(std::ostream& out) const {
  detail::write_vec(out, counts_);
}

void PopularityRecommender::load_state(std::istream& in) {
  counts_ = detail::read_vec<float>(in, "popularity counts");
  if (counts_.size() != num_items_)
    throw std::runtime_error("model file is corrupt (popularity counts size)");
}

}  // namespace chatrec::recommend
