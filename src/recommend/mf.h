#pragma once
// Biased matrix factorisation trained by SGD on explicit ratings (Funk SVD / Surprise's SVD):
// r_ui ~ mu + b_u + b_i + p_u . q_i.
#include <Eigen/Dense>

#include "recommend/recommender.h"

namespace chatrec::recommend {

class MfRecommender : public Recommender {
 public:
  explicit MfRecommender(const Params& params = {});
  std::string name() const override { return "mf"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool predicts_ratings() const override { return true; }
  float predict(UserIndex user, ItemIndex item) const override;

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  int factors_, epochs_;
  double lr_, reg_, reg_bias_, init_std_, lr_decay_;
  float mu_ = 0.0f;
  Eigen::VectorXf user_bias_, item_bias_;
  Eigen::MatrixXf user_factors_,
      item_factors_;  // factors x users / factors x items (column per entity)
};

}  // namespace chatrec::recommend
