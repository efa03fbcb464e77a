#pragma once
// SVD++ (Koren 2008): biased MF whose user vector adds the normalised sum of implicit item factors
// y_j over the items the user rated: r_ui ~ mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_j y_j).
// SGD, one user at a time so the implicit sum is computed once per user and the y updates are
// accumulated.
#include <Eigen/Dense>

#include "recommend/recommender.h"

namespace chatrec::recommend {

class SvdppRecommender : public Recommender {
 public:
  explicit SvdppRecommender(const Params& params = {});
  std::string name() const override { return "svdpp"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool predicts_ratings() const override { return true; }
  float predict(UserIndex user, ItemIndex item) const override;

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  void compute_user_vectors();
  int factors_, epochs_;
  double lr_, reg_, reg_bias_, reg_y_, init_std_, lr_decay_;
  float mu_ = 0.0f;
  Eigen::VectorXf user_bias_, item_bias_;
  Eigen::MatrixXf user_factors_, item_factors_, implicit_factors_;  // factors x entities
  Eigen::MatrixXf user_vectors_;  // p_u + |N(u)|^-1/2 sum y_j, derived (not saved)
};

}  // namespace chatrec::recommend
