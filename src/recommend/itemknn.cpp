#include "recommend/itemknn.h"

#include <algorithm>

namespace chatrec::recommend {

ItemKnnRecommender::ItemKnnRecommender(const Params& params)
    : NeighbourhoodRecommender("itemknn", Orientation::kItemItem, 100, params) {}

void ItemKnnRecommender::score_items(std::span<const ItemIndex> history,
                                     std::span<float> out) const {
  std::fill(out.begin(), out.end(), 0.0f);
  for (auto h : history) {
    for (const auto& n : neighbours_[h]) out[n.id] += n.sim;
  }
}

void ItemKnnRecommender::score(UserIndex user, std::span<float> out) const {
  score_items(train_->items_of(user), out);
}

}  // namespace chatrec::recommend
