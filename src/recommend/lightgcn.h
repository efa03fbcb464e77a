#pragma once
// LightGCN (He et al. 2020): user and item embeddings propagated over the normalised user-item
// graph without transforms or nonlinearities; the final embedding is the mean over layers. Trained
// with the BPR loss and Adam. Evaluated every few epochs by recall@20 on FitOptions::validation
// (or, without it, on a seeded valid_fraction of each user's items held out of the graph) and
// stopped early; validation interactions that belong to the training data are then put back and the
// model retrained for the best number of epochs.
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
  // Validation recall@20 at the best epoch (NaN when trained without validation data).
  double best_validation() const { return best_validation_; }
  int best_epoch() const { return best_epoch_; }

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  struct Trained {
    Eigen::MatrixXf users, items;
    double best_validation = 0.0;
    int best_epoch = 0;
  };
  // Trains from scratch on `train` for up to max_epochs; with `valid` (items per user), keeps the
  // best epoch.
  Trained train_embeddings(const data::InteractionMatrix& train,
                           const std::vector<std::vector<ItemIndex>>* valid, int max_epochs,
                           const FitOptions& options, const std::string& label) const;
  double valid_fraction_;
  bool refit_;
  int dim_, layers_, epochs_, batch_size_, eval_every_, patience_;
  double lr_, reg_, init_std_;
  double best_validation_ = 0.0;
  int best_epoch_ = 0;
  Eigen::MatrixXf user_emb_, item_emb_;  // dim x users, dim x items (layer-combined)
};

}  // namespace chatrec::recommend
