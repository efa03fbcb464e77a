#include "chat/rerank.h"

#include <algorithm>
#include <numeric>
#include <regex>

#include "chat/fusion.h"
#include "chat/llm_call.h"

namespace chatrec::chat {

namespace {

std::string without_year(const std::string& title) {
  static const std::regex year(R"(\s*\((19|20)\d\d\)\s*$)");
  std::string t = std::regex_replace(title, year, "");
  return t.empty() ? title : t;
}

std::vector<std::size_t> base_order(std::size_t n) {
  std::vector<std::size_t> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

void degrade(RerankResult& r, const std::string& why, std::size_t n, std::size_t k) {
  r.degraded = true;
  r.llm_used = false;
  r.notes.push_back(why + "; showing the recommender's own ranking");
  r.llm_order = base_order(n);
  r.top = complete_from_base({}, n, k);
}

void rerank_generate(llm::LanguageModel& lm, const RerankRequest& q, Stats* stats,
                     RerankResult& r) {
  const std::size_t n = q.candidates.size();
  std::vector<PromptItem> items;
  std::vector<ListCandidate> list;
  for (const auto& c : q.candidates) {
    items.push_back(c.item);
    list.push_back({c.id, c.item.title});
  }
  const bool hint = q.hint_top1 && q.k > 1 && n > 0;
  const auto prompt = rerank_prompt(
      lm, q.context, items, q.k, hint ? std::optional<std::string>(items[0].title) : std::nullopt,
      q.max_list_tokens + 8);
  llm::GenerationOptions options;
  options.max_tokens = q.max_list_tokens;
  options.stop = {"\n\n\n"};
  LlmCallResult call = call_chat(lm, prompt.messages, options, q.timeout_seconds, stats);
  if (!call.completion) {
    if (stats) stats->fail(call.failure, "classic_ranking");
    degrade(r, call.message, n, q.k);
    return;
  }
  Stats parse_stats;
  ParsedList parsed =
      parse_ranked_list(call.completion->text, list, hint ? q.k - 1 : q.k, q.in_catalogue,
                        &parse_stats, hint ? std::optional<std::size_t>(0) : std::nullopt);
  if (stats) stats->merge(parse_stats);
  for (auto& note : parsed.notes) r.notes.push_back("LLM list: " + note);
  std::vector<std::size_t> picks;
  if (hint) picks.push_back(0);
  for (std::size_t p : parsed.picks) picks.push_back(p);
  if (parsed.picks.empty()) {
    degrade(r, "the LLM's list named no candidate", n, q.k);
    return;
  }
  const std::size_t wanted = hint ? q.k - 1 : q.k;
  if (parsed.picks.size() < wanted && stats) {
    stats->resolutions["filled_from_base"] +=
        static_cast<std::int64_t>(wanted - parsed.picks.size());
  }
  r.llm_used = true;
  r.llm_order = complete_from_base(picks, n, n);
}

void rerank_score(llm::LanguageModel& lm, const RerankRequest& q, Stats* stats, RerankResult& r) {
  const std::size_t n = q.candidates.size();
  std::vector<PromptItem> items;
  std::vector<std::string> continuations;
  for (const auto& c : q.candidates) {
    items.push_back(c.item);
    // The title without its year: the year's digits carry no taste, and dropping them halves the
    // tokens to score (the prompt's candidate list still shows the year).
    continuations.push_back(without_year(c.item.title));
  }
  const bool hint = q.hint_top1 && n > 1;
  std::vector<llm::Message> messages;
  if (q.sequence) {
    if (!q.sequence->system.empty()) messages.push_back({"system", q.sequence->system});
    messages.push_back({"user", q.sequence->instruction});
    std::string lines;
    const std::size_t shown = std::min(q.sequence->history, q.context.liked.size());
    for (std::size_t k = shown; k-- > 0;) lines += q.context.liked[k].title + "\n";
    messages.push_back({"assistant", std::move(lines)});
    for (std::size_t i = 0; i < n; ++i) continuations[i] = q.candidates[i].item.title + "\n";
  } else {
    messages = score_prompt(lm, q.context, items,
                            hint ? std::optional<std::string>(items[0].title) : std::nullopt, 48)
                   .messages;
  }
  LikelihoodResult call = call_loglikelihood(lm, messages, continuations, q.timeout_seconds, stats);
  if (!call.scores) {
    if (stats) stats->fail(call.failure, "classic_ranking");
    degrade(r, call.message, n, q.k);
    return;
  }
  r.llm_scores.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& s = (*call.scores)[i];
    // A sequence line's summed log-likelihood is the item's probability (what the adapter was
    // tuned on); Chat-Rec's free answers are compared per token.
    r.llm_scores[i] = s.tokens == 0 ? -1e9 : q.sequence ? s.logprob : s.logprob / s.tokens;
  }
  if (q.sequence && (q.sequence->pmi_weight != 0.0 || q.sequence->keep_terms)) {
    messages.back().content.clear();  // the same prompt without the history
    LikelihoodResult null =
        call_loglikelihood(lm, messages, continuations, q.timeout_seconds, stats);
    if (!null.scores) {
      if (stats) stats->fail(null.failure, "classic_ranking");
      degrade(r, null.message, n, q.k);
      r.llm_scores.clear();
      return;
    }
    r.llm_conditional = r.llm_scores;
    r.llm_unconditional.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      r.llm_unconditional[i] = (*null.scores)[i].logprob;
      r.llm_scores[i] -= q.sequence->pmi_weight * r.llm_unconditional[i];
    }
  }
  std::vector<std::size_t> order = base_order(n);
  std::stable_sort(order.begin() + (hint ? 1 : 0), order.end(),
                   [&](std::size_t a, std::size_t b) { return r.llm_scores[a] > r.llm_scores[b]; });
  r.llm_used = true;
  r.llm_order = order;
}

}  // namespace

RerankResult rerank(llm::LanguageModel* lm, const RerankRequest& q, Stats* stats) {
  RerankResult r;
  const std::size_t n = q.candidates.size();
  if (n == 0) return r;
  if (!lm || q.mode == RerankMode::kNone || n == 1) {
    r.llm_order = base_order(n);
    r.top = complete_from_base({}, n, q.k);
    return r;
  }
  if (q.mode == RerankMode::kGenerate) {
    rerank_generate(*lm, q, stats, r);
  } else {
    rerank_score(*lm, q, stats, r);
  }
  if (r.llm_used) r.top = fuse_orders(r.llm_order, n, q.fusion_weight, q.k);
  return r;
}

}  // namespace chatrec::chat
