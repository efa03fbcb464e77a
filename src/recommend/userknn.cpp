#include "recommend/userknn.h"

#include <algorithm>

namespace chatrec::recommend {

UserKnnRecommender::UserKnnRecommender(const Params& params)
    : NeighbourhoodRecommender("userknn", Orientation::kUserUser, 50, params) {}

void UserKnnRecommender::score(UserIndex user, std::span<float> out) const {
  std::fill(out.begin(), out.end(), 0.0f);
  for (const auto& n : neighbours_[user]) {
    for (auto i : train_->items_of(n.id)) out[i] += n.sim;
  }
}

}  // namespace chatrec::recommend
