#pragma once
// Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with confidence c = 1 + alpha * r (r = 1 for
// every interaction), solved approximately per user/item by a few conjugate-gradient steps
// warm-started from the previous solution (Takacs et al. 2011), as in the `implicit` library.
#include <Eigen/Dense>

#include "recommend/recommender.h"

namespace chatrec::recommend {

class AlsRecommender : public Recommender {
 public:
  explicit AlsRecommender(const Params& params = {});
  std::string name() const override { return "als"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  int factors_, iterations_, cg_steps_;
  double reg_, alpha_, init_std_;
  Eigen::MatrixXf user_factors_, item_factors_;
};

}  // namespace chatrec::recommend
