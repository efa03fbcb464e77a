#pragma once
// Reranking the candidate set to the final top-k with the LLM, in `generate` mode (the LLM writes a
// list, the parser maps it back) or `score` mode (length-normalised log-likelihood of each
// candidate's title as the answer; cannot leave the set), optionally fused with the base order. Any
// LLM failure yields the base order, flagged degraded with a note.
#include <optional>
#include <string>
#include <vector>

#include "chat/engine.h"
#include "chat/list_parser.h"
#include "chat/prompts.h"
#include "chat/types.h"
#include "llm/language_model.h"

namespace chatrec::chat {

struct RerankCandidate {
  std::string id;
  PromptItem item;  // title in display form, categories
};

// The prompt of an adapter tuned with `chatrec instruct tune --loss seq` (its chatrec.instruct.*
// keys): the instruction as the user turn, the liked history (oldest first, one title per line) as
// the start of the reply, and each candidate scored by log p(title + "\n") as the next line.
struct SequenceFormat {
  std::string system;
  std::string instruction;
  std::size_t history = 20;
  // Score log p(line | history) - pmi_weight * log p(line | no history): 1 is the full PMI (the
  // adapter's chatrec.instruct.calibration "pmi"), which stops a title being ranked by its own
  // surface probability; 0 the raw likelihood.
  double pmi_weight = 0.0;
  // Compute the no-history term even at weight 0 and return both terms (RerankResult::
  // llm_conditional / llm_unconditional), to choose the weight on validation users.
  bool keep_terms = false;
};

struct RerankRequest {
  PromptContext context;
  // Score mode with a sequence-tuned adapter: its prompt instead of Chat-Rec's.
  std::optional<SequenceFormat> sequence;
  std::vector<RerankCandidate> candidates;  // base order, best first
  std::size_t k = 5;
  RerankMode mode = RerankMode::kScore;
  bool hint_top1 = false;
  double fusion_weight = 1.0;
  int max_list_tokens = 160;
  double timeout_seconds = 60.0;
  CatalogueLookup in_catalogue;  // for out_of_candidates vs not_in_catalogue
};

struct RerankResult {
  std::vector<std::size_t> top;        // final top-k, indices into the candidates
  std::vector<std::size_t> llm_order;  // the LLM's order of all candidates (before fusion)
  std::vector<double> llm_scores;      // score mode: per candidate
  // Sequence scoring with a no-history term: log p(line | history) and log p(line | no history).
  std::vector<double> llm_conditional, llm_unconditional;
  bool llm_used = false;  // the LLM's answer shaped the order
  bool degraded = false;
  std::vector<std::string> notes;
};

RerankResult rerank(llm::LanguageModel* lm, const RerankRequest& request, Stats* stats);

}  // namespace chatrec::chat
