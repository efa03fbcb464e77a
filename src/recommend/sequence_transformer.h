#pragma once
// Sequential recommenders on the transformer of transformer_net.h, with one training loop:
//
// sasrec   (Kang & McAuley 2018) — causal attention, every position predicts the next item;
// bert4rec (Sun et al. 2019)     — bidirectional attention, randomly masked items are predicted
//                                  from both sides (cloze); at inference a mask token after the
//                                  history stands for the next item.
//
// Both train with sampled softmax cross-entropy (`negatives` uniform items the user never
// interacted with, shared by a sequence's positions; full or sampled cross-entropy trains SASRec
// better than the paper's one-negative BCE, Klenitskiy & Vasilev 2023), Adam, and early stopping on
// the validation targets: when they are each user's last training item (games.valid.inter),
// training holds them out and validation ranks each among `valid_negatives` sampled items; the
// epoch with the best NDCG@10 is kept. Scoring reads the user's whole training sequence (its last
// `max_len` items). Deterministic for a seed and thread count (per-thread gradients summed in a
// fixed order; dropout and negatives seeded per user and epoch).
#include <memory>
#include <span>
#include <vector>

#include "common/random.h"
#include "recommend/recommender.h"
#include "recommend/transformer_net.h"

namespace chatrec::recommend {

namespace detail {
class ParamReader;
}

class SequenceTransformerRecommender : public Recommender {
 public:
  Params params() const override;
  void fit(const data::InteractionMatrix& train, const FitOptions& options) override;
  void score(UserIndex user, std::span<float> out) const override;
  bool supports_fold_in() const override { return true; }
  // `history` is chronological (oldest first).
  void score_items(std::span<const ItemIndex> history, std::span<float> out) const override;

  double best_validation() const { return best_validation_; }
  int best_epoch() const { return best_epoch_; }

 protected:
  void read_common(detail::ParamReader& r);
  virtual TransformerShape shape(std::size_t items) const = 0;
  // The sequence's training example (inputs and targets; negatives are added by the loop).
  virtual void training_example(const std::vector<ItemIndex>& seq, Rng& rng,
                                TransformerExample& ex) const = 0;
  // What the network reads to score the item after `history`.
  virtual std::vector<ItemIndex> inference_inputs(std::span<const ItemIndex> history) const = 0;
  virtual std::size_t min_training_length() const { return 2; }
  void save_state(std::ostream& out) const override;
  void load_state(std::istream& in) override;

  TransformerShape shape_;

 private:
  int epochs_ = 0, batch_ = 0, negatives_ = 0, patience_ = 0, valid_users_ = 0,
      valid_negatives_ = 0;
  double lr_ = 0, weight_decay_ = 0;
  // Share of the negatives drawn by popularity (count^0.75) rather than uniformly, with the
  // sampled-softmax log-q correction; popular items are the ones full ranking must push down.
  double pop_negatives_ = 0;
  std::unique_ptr<TransformerNet<float>> net_;
  double best_validation_ = 0.0;
  int best_epoch_ = 0;
};

class SasRecRecommender : public SequenceTransformerRecommender {
 public:
  explicit SasRecRecommender(const Params& params = {});
  std::string name() const override { return "sasrec"; }

 protected:
  TransformerShape shape(std::size_t items) const override;
  void training_example(const std::vector<ItemIndex>& seq, Rng& rng,
                        TransformerExample& ex) const override;
  std::vector<ItemIndex> inference_inputs(std::span<const ItemIndex> history) const override;
};

class Bert4RecRecommender : public SequenceTransformerRecommender {
 public:
  explicit Bert4RecRecommender(const Params& params = {});
  std::string name() const override { return "bert4rec"; }
  Params params() const override;

 protected:
  TransformerShape shape(std::size_t items) const override;
  void training_example(const std::vector<ItemIndex>& seq, Rng& rng,
                        TransformerExample& ex) const override;
  std::vector<ItemIndex> inference_inputs(std::span<const ItemIndex> history) const override;
  std::size_t min_training_length() const override { return 1; }

 private:
  double mask_prob_ = 0.2, last_prob_ = 0.1;
};

}  // namespace chatrec::recommend
