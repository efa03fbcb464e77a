#pragma once
// SASRec (Kang & McAuley 2018): self-attentive sequential recommendation. The network
// (sasrec_net.h) reads the last `max_len` items of a user's sequence and scores every item as the
// next one. Trained on every prefix of each training sequence with sampled softmax cross-entropy
// (`negatives` uniform items the user never interacted with, shared by the sequence's positions;
// full or sampled cross-entropy trains SASRec better than the paper's one-negative BCE, Klenitskiy
// & Vasilev 2023), Adam, early stopping on the validation targets: when they are each user's last
// training item (games.valid.inter), training holds them out and validation ranks each among
// `valid_negatives` sampled items; the epoch with the best NDCG@10 is kept. Scoring then reads the
// user's whole training sequence. Deterministic for a seed and thread count.
#include <memory>

#include "recommend/recommender.h"
#include "recommend/sasrec_net.h"

namespace chatrec::recommend {

class SasRecRecommender : public Recommender {
 public:
  explicit SasRecRecommender(const Params& params = {});
  std::string name() const override { return "sasrec"; }
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  // `history` is chronological (oldest first).
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;

  double best_validation() const { return best_validation_; }
  int best_epoch() const { return best_epoch_; }

 protected:
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

 private:
  SasRecShape shape(std::size_t items) const;

  SasRecShape shape_;
  int epochs_, batch_, negatives_, patience_, valid_users_, valid_negatives_;
  double lr_, weight_decay_;
  std::unique_ptr<SasRecNet<float>> net_;
  double best_validation_ = 0.0;
  int best_epoch_ = 0;
};

}  // namespace chatrec::recommend
