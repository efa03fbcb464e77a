#pragma once
// Extension points of the evaluation protocols, so that LLM stages (Chat-Rec reranking, InstructRec
// ranking, LLM rating prediction) are measured by exactly the same harness, on the same users and
// cases, as the classic models. protocols/ depends on recommend/ and eval/; chat_eval/ and
// instruct/ implement these.
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "eval/report.h"
#include "recommend/recommender.h"

namespace chatrec::protocols {

using eval::StageStats;

using data::ItemIndex;
using data::UserIndex;

// Protocol A: reorders the base recommender's candidates (best first) into a final list of `k`.
class TopkReranker {
 public:
  virtual ~TopkReranker() = default;
  virtual std::string name() const = 0;
  // Called once before any user, with the training split (e.g. to choose a fusion weight on
  // validation users carved out of `train`).
  virtual void prepare(const data::Dataset& ds, const data::InteractionMatrix& train,
                       const recommend::Recommender& base) {
    (void)ds, (void)train, (void)base;
  }
  virtual std::vector<ItemIndex> rerank(UserIndex user,
                                        const std::vector<recommend::ScoredItem>& candidates,
                                        std::size_t k) = 0;
  virtual StageStats stats() const = 0;
};

// Protocol B1: predicts a rating for (user, item); the harness clips to the rating range.
class RatingPredictor {
 public:
  virtual ~RatingPredictor() = default;
  virtual std::string name() const = 0;
  virtual float predict(UserIndex user, ItemIndex item) = 0;
  virtual StageStats stats() const = 0;
};

// Protocol C: scores each candidate for the user's case (history = chronological training items).
class CandidateRanker {
 public:
  virtual ~CandidateRanker() = default;
  virtual std::string name() const = 0;
  virtual std::vector<float> score(UserIndex user, std::span<const ItemIndex> history,
                                   std::span<const ItemIndex> candidates) = 0;
  virtual StageStats stats() const = 0;
};

}  // namespace chatrec::protocols
