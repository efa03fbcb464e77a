#pragma once
// SVD++ (Koren 2008): biased MF whose user vector adds the normalised sum of implicit item factors
// y_j over the items the user rated: r_ui ~ mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_j y_j).
// SGD, one user at a time so the implicit sum is computed once per user and the y updates are
// accumulated.
#include "recommend/biased_factors.h"

namespace chatrec::recommend {

class SvdppRecommender : public BiasedFactorRecommender {
 public:
  explicit SvdppRecommender(const Params& params = {});
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;

 protected:
  const Eigen::MatrixXf& user_vectors() const override { return user_vectors_; }
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  void compute_user_vectors();
  double reg_y_;
  Eigen::MatrixXf implicit_factors_;  // factors x items
  Eigen::MatrixXf user_vectors_;      // p_u + |N(u)|^-1/2 sum y_j, derived (not saved)
};

}  // namespace chatrec::recommend
