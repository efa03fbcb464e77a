#pragma once
// A linear blend of rating models (by default SVD++, item- and user-based KNNBaseline, biased MF),
// the classic Netflix-prize recipe: members are trained on a seeded (1 - holdout) part of the
// ratings, blend weights are fitted by ridge regression on the held-out part, then the members are
// re-trained on everything.
#include <memory>

#include "recommend/recommender.h"

namespace chatrec::recommend {

class BlendRecommender : public Recommender {
 public:
  explicit BlendRecommender(const Params& params = {});
  std::string name() const override { return "blend"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool predicts_ratings() const override { return true; }
  float predict(UserIndex user, ItemIndex item) const override;
  const std::vector<double>& weights() const { return weights_; }

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  std::vector<std::unique_ptr<Recommender>> make_members() const;
  std::string members_;
  double holdout_, ridge_;
  std::vector<std::unique_ptr<Recommender>> models_;
  std::vector<double> weights_;  // intercept, then one per member
};

}  // namespace chatrec::recommend
