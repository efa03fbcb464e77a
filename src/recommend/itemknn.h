#pragma once
// Item-based k-nearest neighbours. Ranking: sum of the implicit (binary) cosine similarities,
// shrunk, of the user's items to each item (top-k neighbours per item). Ratings: Surprise's
// KNNBaseline (item-based, Pearson-baseline similarity) on ALS baselines.
#include "recommend/neighbourhood.h"

namespace chatrec::recommend {

class ItemKnnRecommender : public NeighbourhoodRecommender {
 public:
  explicit ItemKnnRecommender(const Params& params = {});
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;
};

}  // namespace chatrec::recommend
