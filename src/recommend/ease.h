#pragma once
// EASE^R (Steck 2019): a closed-form item-item linear autoencoder, B = I - P diag(1/diag(P)) with
// P = (X^T X + lambda I)^-1 and a zero diagonal. Dense in the number of items, so capped by
// max_items.
#include <Eigen/Dense>

#include "recommend/recommender.h"

namespace chatrec::recommend {

class EaseRecommender : public Recommender {
 public:
  explicit EaseRecommender(const Params& params = {});
  std::string name() const override { return "ease"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  double lambda_;
  int max_items_;
  Eigen::MatrixXf weights_;  // B^T: column h = the weights item h gives every item
};

}  // namespace chatrec::recommend
