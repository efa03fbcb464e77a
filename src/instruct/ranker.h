#pragma once
// Ranking candidates for an instruction by likelihood, as InstructRec does at inference: instead of
// parsing free text, every candidate is scored by the model, so the answer can never be an item
// outside the candidate list. Three modes:
//   likelihood — mean per-token log p(title | prompt) of each candidate's title as the assistant's
//   reply; pointwise  — P(Yes) / (P(Yes) + P(No)) for a yes/no prompt per candidate; pairwise   —
//   round robin of "which of the two" prompts, ordered by wins.
// A failing backend never fails the ranking: the caller's fallback order is used and the failure
// counted.
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "llm/language_model.h"
#include "protocols/rankers.h"

namespace chatrec::instruct {

struct RankResult {
  std::vector<std::size_t> order;  // a permutation of [0, n), best first
  std::vector<double> scores;      // per candidate (input order), higher is better
  bool fell_back = false;          // the LLM failed and the fallback order was used
};

struct RankerOptions {
  // Divide each title's log-probability by its token count, so long titles are not penalised.
  bool length_normalise = true;
  std::string yes = "Yes";
  std::string no = "No";
  // Name written into StageStats::resolutions when the fallback order is used.
  std::string fallback_name = "fallback_order";
};

class InstructionRanker {
 public:
  explicit InstructionRanker(llm::LanguageModel& model, RankerOptions options = {});

  // `fallback_scores` (same size as titles, higher is better) orders the candidates when the LLM
  // fails, and breaks exact ties; empty means input order.
  RankResult rank_by_likelihood(const std::vector<llm::Message>& prompt,
                                const std::vector<std::string>& titles,
                                std::span<const double> fallback_scores = {});
  // `prompt_for(i)` is a yes/no prompt about candidate i.
  RankResult rank_pointwise(std::size_t n,
                            const std::function<std::vector<llm::Message>(std::size_t)>& prompt_for,
                            std::span<const double> fallback_scores = {});
  // `prompt_for(a, b)` asks to choose between candidates a and b; the reply is scored as titles[a]
  // vs titles[b].
  RankResult rank_pairwise(
      const std::vector<std::string>& titles,
      const std::function<std::vector<llm::Message>(std::size_t, std::size_t)>& prompt_for,
      std::span<const double> fallback_scores = {});

  // P(Yes) normalised over {Yes, No}; throws llm::LlmError.
  double yes_probability(const std::vector<llm::Message>& prompt);
  // 0 when the reply is more likely `a`, 1 when `b` (ties: 0); throws llm::LlmError.
  int choose(const std::vector<llm::Message>& prompt, const std::string& a, const std::string& b);

  const eval::StageStats& stats() const { return stats_; }

 private:
  std::vector<double> likelihoods(const std::vector<llm::Message>& prompt,
                                  const std::vector<std::string>& texts);
  RankResult finish(std::vector<double> scores, std::span<const double> fallback,
                    std::size_t n) const;
  RankResult fallback(std::span<const double> fallback_scores, std::size_t n,
                      const llm::LlmError& error);

  llm::LanguageModel& model_;
  RankerOptions options_;
  eval::StageStats stats_;
};

// Order of `scores` (higher first); ties and NaN broken by `tiebreak` (higher first), then input
// order.
std::vector<std::size_t> order_by(std::span<const double> scores,
                                  std::span<const double> tiebreak = {});

}  // namespace chatrec::instruct
