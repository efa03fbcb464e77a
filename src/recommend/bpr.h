#pragma once
// BPR-MF (Rendle et al. 2009): matrix factorisation with item biases trained by SGD on the pairwise
// Bayesian Personalised Ranking loss, one uniformly sampled negative per observed interaction.
// With more than one thread, epochs run as stratified SGD over user x item blocks (bpr.cpp):
// lock-free and reproducible for a seed and thread count.
#include <Eigen/Dense>

#include <utility>
#include <vector>

#include "common/random.h"
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
  // One SGD step on the pair (u, i) against negative j; returns the step's loss.
  float sgd_step(UserIndex u, ItemIndex i, ItemIndex j);
  double serial_epoch(const data::InteractionMatrix& train,
                      const std::vector<std::pair<UserIndex, ItemIndex>>& pairs, Rng& rng);
  double parallel_epoch(const data::InteractionMatrix& train,
                        const std::vector<std::pair<UserIndex, ItemIndex>>& pairs, int threads,
                        std::uint64_t seed, int epoch);

  int factors_, epochs_;
  double lr_, reg_, init_std_;
  Eigen::VectorXf item_bias_;
  Eigen::MatrixXf user_factors_, item_factors_;
};

}  // namespace chatrec::recommend
