// Registers the InstructRec likelihood ranker as the games-seq candidate ranker "instruct":
//   chatrec eval --protocol games-seq --ranker instruct --llm builtin [--search]
#include <memory>

#include "cli/eval_hooks.h"
#include "common/error.h"
#include "instruct/candidate_ranker.h"
#include "llm/language_model.h"

namespace chatrec::cli {
namespace {

const CandidateRankerHook instruct_hook(
    "instruct",
    [](const data::Dataset& ds, const data::InteractionMatrix& train, const recommend::Recommender&,
       const LlmEvalOptions& options) -> std::unique_ptr<eval::CandidateRanker> {
      instruct::CandidateRankerConfig config;
      config.search = options.search;
      if (config.search && !instruct::has_categories(ds)) {
        // Refuse before loading the model: the query of ⟨P1,I2,T3⟩ is the target's category labels.
        throw InputError(
            ds.name(), 0, "--search",
            "personalised search ⟨P1,I2,T3⟩ needs the target's category labels and this "
            "dataset's items have none (Amazon Games as shipped has titles only); drop --search "
            "for the sequential scenario ⟨P1,I0,T3⟩");
      }
      // Fall back to the training popularity of the harness's own split.
      config.popularity.resize(ds.num_items(), 0.0);
      for (data::ItemIndex i = 0; i < train.num_items() && i < ds.num_items(); ++i) {
        config.popularity[i] = static_cast<double>(train.users_of(i).size());
      }
      std::shared_ptr<llm::LanguageModel> model =
          llm::open_language_model(options.llm_spec.empty() ? "builtin" : options.llm_spec);
      return std::make_unique<instruct::InstructCandidateRanker>(ds, std::move(model),
                                                                 std::move(config));
    });

}  // namespace
}  // namespace chatrec::cli
