#pragma once
// Order-aware item-transition model for next-item recommendation: first-order transition
// probabilities P(next = j | item = i) from consecutive pairs of the training sequences, applied to
// the last `window` items of the history with geometric recency decay, blended with item-kNN
// co-occurrence (cosine) from the same recent items and a small popularity prior that orders items
// the history says nothing about.
#include "recommend/detail.h"
#include "recommend/recommender.h"

namespace chatrec::recommend {

class TransitionRecommender : public Recommender {
 public:
  explicit TransitionRecommender(const Params& params = {});
  std::string name() const override { return "transition"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  // `history` is chronological (oldest first), as a conversation or a session is.
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  int window_, k_, max_transitions_;
  double decay_, knn_weight_, shrink_, pop_weight_, skip_weight_, backward_weight_;
  detail::NeighbourLists transitions_;  // normalised outgoing transition weights, best first
  detail::NeighbourLists neighbours_;   // item-item cosine, best first
  std::vector<float> prior_;            // log-popularity in [0, 1]
};

}  // namespace chatrec::recommend
