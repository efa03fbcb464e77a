#pragma once
// User-based k-nearest neighbours. Ranking: items of the user's top-k implicit-cosine neighbours,
// weighted by similarity. Ratings: Surprise's KNNBaseline (user-based, Pearson-baseline similarity)
// on ALS baselines.
#include "recommend/neighbourhood.h"

namespace chatrec::recommend {

class UserKnnRecommender : public NeighbourhoodRecommender {
 public:
  explicit UserKnnRecommender(const Params& params = {});
  void score(UserIndex user, std::span<float> out) const override;
};

}  // namespace chatrec::recommend
