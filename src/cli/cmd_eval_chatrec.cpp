// Registers Chat-Rec with `chatrec eval`: the top-k reranker (ml100k-topk) and the rating predictor
// (ml100k-rating), both named "chatrec". Options: --llm, --rerank generate|score, --hint-top1,
// --fusion.
#include <memory>

#include "chat/engine.h"
#include "chat/eval_adapters.h"
#include "cli/eval_hooks.h"
#include "common/error.h"
#include "llm/language_model.h"

namespace chatrec::cli {
namespace {

chat::ChatRecEvalOptions eval_options(const LlmEvalOptions& o) {
  chat::ChatRecEvalOptions out;
  const std::string mode = o.rerank_mode.empty() ? "score" : o.rerank_mode;
  if (!chat::parse_rerank_mode(mode, &out.mode) || out.mode == chat::RerankMode::kNone) {
    throw InputError("--rerank", 0, mode, "expected generate or score");
  }
  out.hint_top1 = o.hint_top1;
  out.fusion = o.fusion;
  out.seed = o.seed;
  return out;
}

std::shared_ptr<llm::LanguageModel> open_llm(const LlmEvalOptions& o) {
  return std::shared_ptr<llm::LanguageModel>(
      llm::open_language_model(o.llm_spec.empty() ? "builtin" : o.llm_spec, o.open));
}

const TopkRerankerHook chatrec_reranker(
    "chatrec",
    [](const data::Dataset&, const data::InteractionMatrix&, const recommend::Recommender&,
       const LlmEvalOptions& o) -> std::unique_ptr<eval::TopkReranker> {
      return std::make_unique<chat::ChatRecReranker>(open_llm(o), eval_options(o));
    });

const RatingPredictorHook chatrec_rating(
    "chatrec",
    [](const data::Dataset& ds, const data::InteractionMatrix& train,
       const recommend::Recommender& base,
       const LlmEvalOptions& o) -> std::unique_ptr<eval::RatingPredictor> {
      return std::make_unique<chat::ChatRecRatingPredictor>(open_llm(o), ds, train, base,
                                                            eval_options(o));
    });

}  // namespace
}  // namespace chatrec::cli
