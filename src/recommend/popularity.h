#pragma once
// Most-popular baseline: scores an item by its number of training interactions, the same for every
// user.
#include "recommend/recommender.h"

namespace chatrec::recommend {

class PopularityRecommender : public Recommender {
 public:
  explicit PopularityRecommender(const Params& params = {});
  std::string name() const override { return "popularity"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;
  const std::vector<float>& counts() const { return counts_; }

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  std::vector<float> counts_;
};

}  // namespace chatrec::recommend
