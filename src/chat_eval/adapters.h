#pragma once
// Chat-Rec as measured by `chatrec eval`: the reranker of protocol A (ml100k-topk) and the rating
// predictor of protocol B1 (ml100k-rating), built from the same prompts, parser, reranking and
// fusion as the chat engine.
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>

#include "chat/engine.h"
#include "chat/fusion.h"
#include "chat/prompts.h"
#include "chat/rerank.h"
#include "llm/language_model.h"
#include "protocols/rankers.h"

namespace chatrec::instruct {
class InstructCandidateRanker;
}

namespace chatrec::chat {

struct ChatRecEvalOptions {
  RerankMode mode = RerankMode::kScore;
  bool hint_top1 = false;
  bool fusion = false;
  std::uint64_t seed = 2023;
  std::size_t validation_users = 60;  // carved from the training data to choose the fusion weight
  int max_list_tokens = 120;
  double timeout_seconds = 60.0;
  bool progress = true;
  // Score mode with a sequence-tuned adapter (chatrec instruct tune --loss seq): its prompt.
  std::optional<SequenceFormat> sequence;
  // With `sequence` and `fusion`: choose the sequence's PMI weight together with the fusion
  // weight on the validation users (choose_pmi_and_fusion_weight).
  bool choose_pmi_weight = false;
  // Score mode with a listwise adapter (`instruct tune --loss label --candidates MODEL`): the
  // candidates lettered in the base model's order, each scored by its letter's log-probability in
  // one pass, after the user's latest likes (instruct::latest_likes), as the adapter was tuned.
  struct LabelFormat {
    std::string template_id = "P07";
    std::size_t history = 20;
    std::size_t options = 20;  // letters the adapter was tuned on
    std::string source;        // the recommender whose candidates it was tuned on
    // Listed in a seeded permutation per user (instruct::listed_order with this seed), as tuned.
    bool shuffled = false;
    std::uint64_t seed = 0;
  };
  std::optional<LabelFormat> label;
  // With `fusion`: write each validation case (the base model's candidates and scores, the LLM's
  // scores or likelihood terms, which candidates were held out) as one JSON line here, for analysis
  // of the fusion choice.
  std::filesystem::path validation_dump;
};

// The user's training items as prompt history: latest liked (>= 4) and disliked (<= 2) items with
// ratings.
PromptContext history_context(const data::Dataset& ds, const data::InteractionMatrix& train,
                              data::UserIndex user, std::size_t max_liked,
                              std::size_t max_disliked);

class ChatRecReranker : public protocols::TopkReranker {
 public:
  ChatRecReranker(std::shared_ptr<llm::LanguageModel> lm, ChatRecEvalOptions options);
  std::string name() const override;
  void prepare(const data::Dataset& ds, const data::InteractionMatrix& train,
               const recommend::Recommender& base) override;
  std::vector<data::ItemIndex> rerank(data::UserIndex user,
                                      const std::vector<recommend::ScoredItem>& candidates,
                                      std::size_t k) override;
  eval::StageStats stats() const override;
  const FusionChoice& fusion_choice() const { return fusion_; }

 private:
  // The LLM's ranking of the candidates: llm_order is the base order on failure.
  RerankResult llm_rerank(data::UserIndex user, const data::InteractionMatrix& train,
                          const std::vector<recommend::ScoredItem>& candidates, std::size_t k,
                          bool keep_terms);

  // The listwise adapter's scoring (options_.label): the ranking of the candidates in base order.
  RerankResult label_rerank(data::UserIndex user, const data::InteractionMatrix& train,
                            const std::vector<recommend::ScoredItem>& candidates);

  std::shared_ptr<llm::LanguageModel> lm_;
  ChatRecEvalOptions options_;
  std::shared_ptr<instruct::InstructCandidateRanker> label_ranker_;
  const data::Dataset* ds_ = nullptr;
  const data::InteractionMatrix* train_ = nullptr;
  double weight_ = 1.0;
  FusionChoice fusion_;
  mutable std::mutex mutex_;
  Stats stats_;
};

class ChatRecRatingPredictor : public protocols::RatingPredictor {
 public:
  ChatRecRatingPredictor(std::shared_ptr<llm::LanguageModel> lm, const data::Dataset& ds,
                         const data::InteractionMatrix& train, const recommend::Recommender& base,
                         ChatRecEvalOptions options);
  std::string name() const override { return "chatrec"; }
  float predict(data::UserIndex user, data::ItemIndex item) override;
  eval::StageStats stats() const override;
  double weight() const { return weight_; }

 private:
  float base_prediction(data::UserIndex user, data::ItemIndex item) const;
  float llm_prediction(data::UserIndex user, data::ItemIndex item, bool* used);

  std::shared_ptr<llm::LanguageModel> lm_;
  const data::Dataset& ds_;
  const data::InteractionMatrix& train_;
  const recommend::Recommender& base_;
  ChatRecEvalOptions options_;
  double weight_ = 1.0;  // final = w * LLM + (1 - w) * base
  mutable std::mutex mutex_;
  Stats stats_;
};

eval::StageStats to_stage_stats(const Stats& s);

}  // namespace chatrec::chat
