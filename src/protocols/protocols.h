#pragma once
// Runners of the evaluation protocols of docs/protocols.md. Each fits the requested models on the
// protocol's training split, evaluates them on the same users (or cases) and returns a Report. LLM
// stages plug in as factories of the rankers.h interfaces and are measured on exactly the users the
// classic models are.
//
// Validation data (FitOptions::validation) is always a subset of the training split, never the test
// split: ml100k-topk a seeded 10% of each user's training likes, ml100k-rating/folds a seeded 10%
// of each user's training ratings (users with at least 10), games-seq the `games.valid.inter`
// targets. The interactions stay in the training matrix: a model that uses validation holds them
// out itself, the others lose no data.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/matrix.h"
#include "data/splits.h"
#include "eval/report.h"
#include "protocols/rankers.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"

namespace chatrec::protocols {

using eval::ModelResult;
using eval::Report;

using RecommenderFactory =
    std::function<std::unique_ptr<recommend::Recommender>(const std::string& name)>;
template <typename Stage>
using StageFactory = std::function<std::unique_ptr<Stage>(const data::Dataset& ds,
                                                          const data::InteractionMatrix& train,
                                                          const recommend::Recommender& base)>;

inline constexpr std::size_t kCandidates = 20;  // protocol A candidate list
inline constexpr std::size_t kFinal = 5;        // protocol A final list
// games-seq full ranking: the target against every item the user never interacted with, the
// measure sampled metrics can disagree with (Krichene & Rendle, KDD 2020).
inline constexpr std::size_t kAllNegatives = static_cast<std::size_t>(-1);

struct ProtocolOptions {
  std::uint64_t seed = 2023;
  // Users (cases) to evaluate: 0 = the protocol default (all users for classic runs; 200 for
  // ml100k-topk and ml100k-rating with an LLM stage, or always 200 for ml100k-rating; 500 for
  // games-seq with an LLM stage).
  std::size_t users = 0;
  std::size_t negatives = 9;         // games-seq; kAllNegatives ranks every unseen item
  double validation_fraction = 0.1;  // share of training interactions offered as validation
  std::string folds_dir;             // ml100k-folds: directory with u1..u5.base/.test
  std::string stage_name =
      "llm";  // name of the LLM stage in the report ("chatrec", "instruct", ...)
  bool progress = true;
  int threads = 0;  // 0 = all cores
  // With several models, a model that fails to fit is reported in notes instead of aborting the
  // run.
  bool keep_going = false;
};

// Models of recommender_names() that fit a protocol ("--model all").
std::vector<std::string> models_for_protocol(const std::string& protocol);

Report run_topk(const data::Dataset& ds, const std::vector<std::string>& models,
                const RecommenderFactory& make, const ProtocolOptions& options,
                const StageFactory<TopkReranker>& reranker = {});
Report run_rating(const data::Dataset& ds, const std::vector<std::string>& models,
                  const RecommenderFactory& make, const ProtocolOptions& options,
                  const StageFactory<RatingPredictor>& predictor = {});
Report run_folds(const data::Dataset& ds, const std::vector<std::string>& models,
                 const RecommenderFactory& make, const ProtocolOptions& options);
Report run_games_seq(const data::Dataset& ds, const std::vector<std::string>& models,
                     const RecommenderFactory& make, const ProtocolOptions& options,
                     const StageFactory<CandidateRanker>& ranker = {});

// ---- Building blocks, public for the tests and for other harnesses.

// A seeded share of each user's eligible training interactions (floor(fraction * n) per user, so
// users with few interactions keep them all), in input order.
std::vector<data::Interaction> carve_validation(
    const std::vector<data::Interaction>& train, std::uint64_t seed, double fraction,
    const std::function<bool(const data::Interaction&)>& eligible);

// Top-k of the model's scores over the items the user has no training interaction with (in
// `train`), best first; ties go to the lower item index, NaN scores rank as -infinity.
std::vector<recommend::ScoredItem> rank_unseen(const recommend::Recommender& model,
                                               data::UserIndex user,
                                               const data::InteractionMatrix& train, std::size_t k,
                                               std::vector<float>& scratch);

// Protocol C test case: the target plus negatives in a seeded random order.
struct SeqCase {
  data::UserIndex user = 0;
  data::ItemIndex target = 0;
  std::vector<data::ItemIndex> candidates;
};
// Negatives are drawn uniformly (seeded per user) from the items the user never interacted with in
// `all`; users with fewer than `negatives` such items are skipped. With kAllNegatives the cases
// hold no candidates: full_rank ranks the target against every unseen item.
std::vector<SeqCase> make_seq_cases(const std::vector<data::Interaction>& targets,
                                    const data::InteractionMatrix& all,
                                    const std::vector<data::UserIndex>& users,
                                    std::size_t negatives, std::uint64_t seed);
// 0-based rank of the target among the case's candidates under `scores` (aligned with candidates):
// the candidates scored higher, plus the tied ones placed before it in the case's seeded order (so
// ties do not favour the target). NaN scores rank last.
std::size_t target_rank(const SeqCase& c, const std::vector<float>& scores);
// 0-based rank of the target among itself and every item the user never interacted with in `all`,
// under `scores` (one per item): the items scored higher, plus tied ones of lower index. NaN scores
// rank last.
std::size_t full_rank(const SeqCase& c, const data::InteractionMatrix& all,
                      const std::vector<float>& scores);

}  // namespace chatrec::protocols
