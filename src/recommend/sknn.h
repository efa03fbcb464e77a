#pragma once
// Sequence-aware nearest neighbours (V-SKNN, Ludewig & Jannach 2018): the history's recent items,
// weighted linearly by recency, find the most similar training sequences (users); each item is
// scored by the summed similarity of the neighbours that contain it, plus a small popularity prior.
#include "recommend/recommender.h"

namespace chatrec::recommend {

class SknnRecommender : public Recommender {
 public:
  explicit SknnRecommender(const Params& params = {});
  std::string name() const override { return "sknn"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  void score_impl(std::span<const ItemIndex> history, std::int64_t self,
                  std::span<float> out) const;
  int k_, window_;
  double pop_weight_, length_norm_;
  std::vector<float> prior_;
};

}  // namespace chatrec::recommend
