#pragma once
// LightGCN (He et al. 2020): user and item embeddings propagated over the normalised user-item graph
// without transforms or nonlinearities; the final embedding is the mean over layers. Trained with the BPR
// loss and Adam; when FitOptions::validation is given, evaluated every few epochs (recall@20 on the
// validation interactions) and stopped early, keeping the best embeddings.
#include <Eigen/Dense>

#include "recommend/recommender.h"

namespace chatrec::recommend {

class LightGcnRecommender : public Recommender {
 public:
  explicit LightGcnRecommender(const Params& params = {});
  std::string name() const override { return "lightgcn"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  // Validation recall@20 of the kept embeddings (NaN when trained without validation data).
  double best_validation() const { return best_validation_; }
  int best_epoch() const { return best_epoch_; }

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  int dim_, layers_, epochs_, batch_size_, eval_every_, patience_;
  double lr_, reg_, init_std_;
  double best_validation_ = 0.0;
  int best_epoch_ = 0;
  Eigen::MatrixXf user_emb_, item_emb_;  // dim x users, dim x items (layer-combined)
};

}  // namespace chatrec::recommend
