#pragma once
// BPR-MF (Rendle et al. 2009): matrix factorisation with item biases trained by SGD on the pairwise
// Bayesian Personalised Ranking loss, one uniformly sampled negative per observed interaction.
#include <Eigen/Dense>

#include "recommend/recommender.h"

namespace chatrec::recommend {

class BprRecommender : public Recommender {
 public:
  explicit BprRecommender(const Params& params = {});
  std::string name() const override { return "bpr"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  int factors_, epochs_;
  double lr_, reg_, init_std_;
  Eigen::VectorXf item_bias_;
  Eigen::MatrixXf user_factors_, item_factors_;
};

}  // namespace chatrec::recommend
