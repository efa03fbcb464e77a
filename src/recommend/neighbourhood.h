#pragma once
// Item-based and user-based k-nearest neighbours share their options, their training (implicit
// cosine neighbours for ranking, Pearson-baseline neighbours on ALS baselines for ratings) and
// their saved state; they differ only in which side of the matrix is the neighbourhood and in how
// neighbours turn into ranking scores.
#include <string>

#include "recommend/knn_common.h"
#include "recommend/recommender.h"

namespace chatrec::recommend {

class NeighbourhoodRecommender : public Recommender {
 public:
  enum class Orientation { kItemItem, kUserUser };

  std::string name() const override { return name_; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  // Before fit: whether the model can; after: whether the training data had ratings.
  bool predicts_ratings() const override { return !train_ || has_rating_state_; }
  float predict(UserIndex user, ItemIndex item) const override;

 protected:
  NeighbourhoodRecommender(std::string name, Orientation orientation, int default_k,
                           const Params& params);
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

  detail::NeighbourLists neighbours_;  // implicit, best first

 private:
  detail::EntityView view() const { return {train_, orientation_ == Orientation::kItemItem}; }
  std::string name_;
  Orientation orientation_;
  int k_, rating_k_, rating_pool_;
  double shrink_, alpha_, rating_shrink_, reg_user_, reg_item_;
  bool has_rating_state_ = false;
  detail::Baselines baselines_;
  detail::NeighbourLists rating_neighbours_;  // Pearson-baseline, sorted by id
};

}  // namespace chatrec::recommend
