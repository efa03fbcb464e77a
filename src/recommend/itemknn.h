#pragma once
// Item-based k-nearest neighbours. Ranking: sum of the implicit (binary) cosine similarities,
// shrunk, of the user's items to each item (top-k neighbours per item). Ratings: Surprise's
// KNNBaseline (item-based, Pearson-baseline similarity) on ALS baselines.
#include "recommend/knn_common.h"
#include "recommend/recommender.h"

namespace chatrec::recommend {

class ItemKnnRecommender : public Recommender {
 public:
  explicit ItemKnnRecommender(const Params& params = {});
  std::string name() const override { return "itemknn"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;
  // Before fit: whether the model can; after: whether the training data had ratings.
  bool predicts_ratings() const override { return !train_ || has_rating_state_; }
  float predict(UserIndex user, ItemIndex item) const override;

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  detail::EntityView view() const { return {train_, true}; }
  int k_, rating_k_, rating_pool_;
  double shrink_, alpha_, rating_shrink_, reg_user_, reg_item_;
  detail::NeighbourLists neighbours_;  // implicit, best first
  bool has_rating_state_ = false;
  detail::Baselines baselines_;
  detail::NeighbourLists rating_neighbours_;  // Pearson-baseline, sorted by id
};

}  // namespace chatrec::recommend
