#pragma once
// Biased matrix factorisation trained by SGD on explicit ratings (Funk SVD / Surprise's SVD):
// r_ui ~ mu + b_u + b_i + p_u . q_i.
#include "recommend/biased_factors.h"

namespace chatrec::recommend {

class MfRecommender : public BiasedFactorRecommender {
 public:
  explicit MfRecommender(const Params& params = {});
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
};

}  // namespace chatrec::recommend
