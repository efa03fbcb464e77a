#pragma once
// The InstructRec ranker as a protocol C (games-seq) CandidateRanker, so it is measured by the same
// harness, on the same cases, as the classic models. Scenarios:
//   sequential ⟨P1,I0,T3⟩ — titles of the user's last 20 items and the candidates' titles (template
//   P07); search     ⟨P1,I2,T3⟩ — plus the target's category labels as the query (template B07);
//   only for data
//                            whose items have categories (Amazon Games as shipped has none).
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/dataset.h"
#include "instruct/ranker.h"
#include "instruct/templates.h"
#include "llm/language_model.h"
#include "protocols/rankers.h"

namespace chatrec::instruct {

struct CandidateRankerConfig {
  bool search = false;
  std::string template_id;  // empty: P07 (sequential) or B07 (search)
  std::size_t history_length = 20;
  // "title": mean log-likelihood of each candidate's title as the answer; "label": candidates
  // listed with letters and scored by the letter's probability in one pass (what `instruct tune
  // --loss label` trains); "yesno": P(Yes) of a T0 prompt per candidate; "sequence": the history
  // as the start of the reply, one title per line, and each candidate scored by the (summed)
  // log-likelihood of being the next line (what `instruct tune --loss seq` trains).
  std::string scoring = "title";
  // "pmi": a candidate's log-likelihood minus its log-likelihood after the same prompt with no
  // history (domain-conditional PMI): what the history adds, without the surface form's own
  // probability (a long or rare-token title is improbable after any history). "none": the raw
  // log-likelihood. Empty: "pmi" for sequence scoring (validation HR@1 0.333 -> 0.401 with a tuned
  // adapter on Games), "none" otherwise.
  std::string calibration;
  // How much of the no-history log-likelihood "pmi" subtracts: log p(line | history) −
  // pmi_weight · log p(line | no history). 1 is the full PMI, 0 the raw likelihood; between the
  // two, the model's own sense of which items are common survives in part (a tuned adapter's
  // weight is chosen on its validation users and stored with it).
  double pmi_weight = 1.0;
  // Each candidate's score gains prior_weight * log(1 + popularity): the LLM's evidence times a
  // popularity prior (product of experts). 0 ranks by the LLM alone; `eval --fusion` chooses it on
  // validation users.
  double prior_weight = 0.0;
  const TemplateSet* templates = nullptr;  // null: builtin_templates()
  // Fallback order when the LLM fails (per item, higher first); empty: training_popularity(ds).
  std::vector<double> popularity;
};

// Titles as shown to the model: whitespace-collapsed and cut at `max_chars` (a few Games titles are
// paragraphs), so the listed title and the scored continuation are the same string.
std::string display_title(const data::Item& item, std::size_t max_chars = 120);
// Numbered list "1. title" per line, and the bullet list "- title" used for histories.
std::string numbered_list(const std::vector<std::string>& titles);
std::string bullet_list(const std::vector<std::string>& titles);

// "A", "B", ... for option k (k < 26).
std::string option_label(std::size_t k);
// "A. title" per line.
std::string lettered_list(const std::vector<std::string>& titles);
// The answer instruction appended to a lettered T3 prompt.
inline constexpr const char* kLetterInstruction = "Answer with the letter of the option only.";
// The ranking prompt shown to the model: the set's system message and template `t` filled with
// the history (bullets) and the candidates (lettered when `letters`, else numbered).
std::vector<llm::Message> ranking_prompt(const TemplateSet& set, const Template& t,
                                         const std::vector<std::string>& history,
                                         const std::vector<std::string>& candidates, bool letters);
// The pointwise (T0) prompt about one item: the set's system message and template `t` filled with
// the history (bullets) and the item's title.
std::vector<llm::Message> pointwise_prompt(const TemplateSet& set, const Template& t,
                                           const std::vector<std::string>& history,
                                           const std::string& item);

// The sequence prompt: the set's system message, kSequenceInstruction as the user turn, and the
// history (oldest first, one title per line, each ending in a newline) as the start of the
// assistant's reply. A candidate is scored as the continuation `title + "\n"`: the next line.
inline constexpr const char* kSequenceInstruction =
    "List the items this user has interacted with, oldest first, one title per line, and continue "
    "the list with the item they will interact with next.";
std::vector<llm::Message> sequence_prompt(const TemplateSet& set,
                                          const std::vector<std::string>& history);

bool has_categories(const data::Dataset& ds);
// Interactions per item over all but each user's last interaction (the protocol C training data).
std::vector<double> training_popularity(const data::Dataset& ds);

// A case's two likelihood terms per candidate: with the history, and (for "pmi") with the same
// prompt and no history.
struct LikelihoodTerms {
  std::vector<double> conditional;
  std::vector<double> unconditional;  // empty without pmi calibration
  // conditional − pmi_weight · unconditional.
  std::vector<double> combined(double pmi_weight) const;
};

// The PMI weight that ranks the validation cases best, from {0, 0.05, ..., 1}: highest HR@1, then
// NDCG@5, then the weight nearest 1 (the full PMI). `targets[k]` is the target's position among
// case k's candidates.
struct PmiWeightChoice {
  double weight = 1.0;
  double hr1 = 0.0;
  double ndcg5 = 0.0;
  double hr1_full_pmi = 0.0;
};
PmiWeightChoice choose_pmi_weight(const std::vector<LikelihoodTerms>& cases,
                                  const std::vector<std::size_t>& targets);

class InstructCandidateRanker : public protocols::CandidateRanker {
 public:
  // Throws InputError when the search scenario is asked for on data without category labels.
  InstructCandidateRanker(const data::Dataset& ds, std::shared_ptr<llm::LanguageModel> model,
                          CandidateRankerConfig config = {});

  std::string name() const override { return config_.search ? "instruct-search" : "instruct"; }
  // Scores are rank-based (n for the best, 1 for the last), so the harness reproduces the ranker's
  // exact order, including its popularity tie-break.
  std::vector<float> score(data::UserIndex user, std::span<const data::ItemIndex> history,
                           std::span<const data::ItemIndex> candidates) override;
  eval::StageStats stats() const override;

  // Both likelihood terms per candidate, or nullopt when the LLM failed (counted in stats()).
  std::optional<LikelihoodTerms> likelihood_terms(data::UserIndex user,
                                                  std::span<const data::ItemIndex> history,
                                                  std::span<const data::ItemIndex> candidates);
  // The LLM's calibrated log-score per candidate (no prior), or nullopt when the LLM failed (the
  // failure is counted in stats()).
  std::optional<std::vector<double>> log_scores(data::UserIndex user,
                                                std::span<const data::ItemIndex> history,
                                                std::span<const data::ItemIndex> candidates);
  // Scores `log_scores + prior_weight * log(1 + prior[c])` as rank scores, popularity tie-break;
  // the fallback order when the LLM failed.
  std::vector<float> rank_scores(const std::optional<std::vector<double>>& log_scores,
                                 std::span<const data::ItemIndex> candidates, double prior_weight,
                                 std::span<const double> prior) const;
  const std::string& calibration() const { return config_.calibration; }
  std::span<const double> popularity() const { return popularity_; }

  // The rendered prompt for a case (for tests and debugging).
  std::vector<llm::Message> prompt(data::UserIndex user, std::span<const data::ItemIndex> history,
                                   std::span<const data::ItemIndex> candidates) const;

 private:
  // Each candidate's popularity: the fallback order and the tie-break.
  std::vector<double> popularity_of(std::span<const data::ItemIndex> candidates) const;
  // Display titles of the last history_length items of `history`.
  std::vector<std::string> history_titles(std::span<const data::ItemIndex> history) const;

  const data::Dataset& ds_;
  std::shared_ptr<llm::LanguageModel> model_;
  CandidateRankerConfig config_;
  const TemplateSet* templates_;
  const Template* template_;
  InstructionRanker ranker_;
  std::vector<double> popularity_;
  std::unordered_map<data::UserIndex, data::ItemIndex> test_target_;  // for the search query
  // The no-history log-likelihood of a title under the (fixed) sequence prompt.
  std::unordered_map<std::string, double> null_sequence_;
};

}  // namespace chatrec::instruct
