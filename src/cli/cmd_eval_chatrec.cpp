// Registers Chat-Rec with `chatrec eval`: the top-k reranker (ml100k-topk) and the rating predictor
// (ml100k-rating), both named "chatrec". Options: --llm, --rerank generate|score, --hint-top1,
// --fusion.
#include <memory>
#include <string>

#include "chat/engine.h"
#include "chat_eval/adapters.h"
#include "cli/eval_hooks.h"
#include "common/error.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "llm/runtime/gguf.h"

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
  out.validation_dump = o.validation_dump;
  if (o.open.lora.empty()) return out;
  // An adapter from `chatrec instruct tune` brings its prompt, and one tuned on this protocol's
  // training split must be evaluated on the same split, with the fusion weight chosen on the users
  // whose likes it held out.
  const auto file = llm::runtime::GgufFile::open(o.open.lora);
  if (file.get_string("chatrec.instruct.scoring", "") == "sequence") {
    chat::SequenceFormat f;
    f.system = file.get_string("chatrec.instruct.system", "");
    f.instruction = file.get_string("chatrec.instruct.instruction", "");
    f.history = std::stoul(file.get_string("chatrec.instruct.history", "20"));
    // Reordering a recommender's strong candidates is not ranking against random items: the full
    // PMI, which helps there, lowered the rerank's validation NDCG@5 on ml100k-topk (0.2267 ->
    // 0.1926). So the raw likelihood unless asked; with --fusion the weight is chosen together
    // with the fusion weight on the validation users' own candidates.
    const std::string calibration = o.calibration.empty() ? "none" : o.calibration;
    if (calibration != "pmi" && calibration != "none")
      throw InputError(o.calibration.empty() ? o.open.lora : "--calibration", 0, calibration,
                       "expected pmi or none");
    f.pmi_weight = o.pmi_weight >= 0.0 ? o.pmi_weight : calibration == "pmi" ? 1.0 : 0.0;
    out.choose_pmi_weight = o.fusion && o.pmi_weight < 0.0 && o.calibration.empty();
    if (f.instruction.empty())
      throw InputError(o.open.lora, 0, "chatrec.instruct.instruction",
                       "a sequence-tuned adapter must carry its instruction");
    out.sequence = std::move(f);
  }
  if (file.get_string("chatrec.instruct.scoring", "") == "label") {
    // A listwise adapter ranks the base model's candidates in the order it was tuned to see them.
    const std::string source = file.get_string("chatrec.instruct.candidates", "random");
    if (source == "random")
      throw InputError(o.open.lora, 0, "chatrec.instruct.candidates",
                       "this label adapter was tuned on a target among random items; the rerank "
                       "lists the base model's candidates: tune with --candidates MODEL");
    chat::ChatRecEvalOptions::LabelFormat f;
    f.template_id = file.get_string("chatrec.instruct.template", "P07");
    f.history = std::stoul(file.get_string("chatrec.instruct.history", "20"));
    f.options = std::stoul(file.get_string("chatrec.instruct.options", "10"));
    f.source = source;
    const std::string order = file.get_string("chatrec.instruct.option_order", "source");
    if (order != "source" && order != "shuffled")
      throw InputError(o.open.lora, 0, "chatrec.instruct.option_order",
                       "expected source or shuffled, got '" + order + "'");
    f.shuffled = order == "shuffled";
    f.seed = o.seed;
    if (out.mode != chat::RerankMode::kScore)
      throw InputError("--rerank", 0, mode, "a label adapter scores its options: use score");
    out.label = f;
  }
  if (file.get_string("chatrec.instruct.protocol", "") == "ml100k-topk") {
    const std::string seed = file.get_string("chatrec.instruct.seed", "");
    if (seed != std::to_string(o.seed))
      throw InputError(o.open.lora, 0, "chatrec.instruct.seed",
                       "the adapter was tuned on the ml100k-topk split of seed " + seed +
                           "; evaluating it with --seed " + std::to_string(o.seed) +
                           " would test it on items it was trained on");
    out.validation_users = std::stoul(file.get_string("chatrec.instruct.validation_users", "0"));
    if (out.fusion && out.validation_users == 0)
      throw InputError(o.open.lora, 0, "chatrec.instruct.validation_users",
                       "the adapter held out no validation users, so --fusion has no unseen "
                       "users to choose its weight on; tune with --validation-users");
  }
  return out;
}

std::shared_ptr<llm::LanguageModel> open_llm(const LlmEvalOptions& o) {
  return std::shared_ptr<llm::LanguageModel>(
      llm::open_language_model(o.llm_spec.empty() ? "builtin" : o.llm_spec, o.open));
}

const TopkRerankerHook chatrec_reranker(
    "chatrec",
    [](const data::Dataset&, const data::InteractionMatrix&, const recommend::Recommender&,
       const LlmEvalOptions& o) -> std::unique_ptr<protocols::TopkReranker> {
      return std::make_unique<chat::ChatRecReranker>(open_llm(o), eval_options(o));
    });

const RatingPredictorHook chatrec_rating(
    "chatrec",
    [](const data::Dataset& ds, const data::InteractionMatrix& train,
       const recommend::Recommender& base,
       const LlmEvalOptions& o) -> std::unique_ptr<protocols::RatingPredictor> {
      return std::make_unique<chat::ChatRecRatingPredictor>(open_llm(o), ds, train, base,
                                                            eval_options(o));
    });

}  // namespace
}  // namespace chatrec::cli
