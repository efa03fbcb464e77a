#include "instruct/ranker.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

namespace chatrec::instruct {

namespace {

std::string kind_name(llm::LlmError::Kind kind) {
  // Kept local so the library does not need the backend factory to link.
  switch (kind) {
    case llm::LlmError::Kind::kTimeout:
      return "timeout";
    case llm::LlmError::Kind::kTransport:
      return "transport";
    case llm::LlmError::Kind::kHttp:
      return "http";
    case llm::LlmError::Kind::kBadResponse:
      return "bad_response";
    case llm::LlmError::Kind::kUnsupported:
      return "unsupported";
    case llm::LlmError::Kind::kContextOverflow:
      return "context_overflow";
    case llm::LlmError::Kind::kModel:
      return "model";
  }
  return "unknown";
}

double finite_or_lowest(double x) {
  return std::isfinite(x) ? x : std::numeric_limits<double>::lowest();
}

}  // namespace

std::vector<std::size_t> order_by(std::span<const double> scores,
                                  std::span<const double> tiebreak) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const double sa = finite_or_lowest(scores[a]), sb = finite_or_lowest(scores[b]);
    if (sa != sb) return sa > sb;
    if (tiebreak.size() == scores.size()) {
      const double ta = finite_or_lowest(tiebreak[a]), tb = finite_or_lowest(tiebreak[b]);
      if (ta != tb) return ta > tb;
    }
    return false;
  });
  return order;
}

InstructionRanker::InstructionRanker(llm::LanguageModel& model, RankerOptions options)
    : model_(model), options_(std::move(options)) {}

std::vector<double> InstructionRanker::likelihoods(const std::vector<llm::Message>& prompt,
                                                   const std::vector<std::string>& texts) {
  const llm::Usage before = model_.total_usage();
  const auto start = std::chrono::steady_clock::now();
  ++stats_.prompts;
  std::vector<llm::Likelihood> ls;
  try {
    ls = model_.loglikelihood(prompt, texts);
  } catch (...) {
    stats_.seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    throw;
  }
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const llm::Usage after = model_.total_usage();
  if (after.prompt_tokens != before.prompt_tokens ||
      after.completion_tokens != before.completion_tokens) {
    stats_.tokens_in += after.prompt_tokens - before.prompt_tokens;
    stats_.tokens_out += after.completion_tokens - before.completion_tokens;
  } else {
    // Backends that do not meter scoring calls: count what was sent (prompt plus each scored
    // continuation).
    for (const auto& m : prompt) stats_.tokens_in += model_.count_tokens(m.content);
    for (const auto& t : texts) stats_.tokens_in += model_.count_tokens(t);
  }
  if (ls.size() != texts.size()) {
    throw llm::LlmError(llm::LlmError::Kind::kBadResponse,
                        "loglikelihood returned a wrong number of scores");
  }
  std::vector<double> out(ls.size());
  for (std::size_t k = 0; k < ls.size(); ++k) {
    out[k] = options_.length_normalise && ls[k].tokens > 0 ? ls[k].logprob / ls[k].tokens
                                                           : ls[k].logprob;
  }
  return out;
}

RankResult InstructionRanker::finish(std::vector<double> scores, std::span<const double> fallback,
                                     std::size_t n) const {
  RankResult r;
  r.order = order_by(scores, fallback.size() == n ? fallback : std::span<const double>{});
  r.scores = std::move(scores);
  return r;
}

RankResult InstructionRanker::fallback(std::span<const double> fallback_scores, std::size_t n,
                                       const llm::LlmError& error) {
  ++stats_.failures[kind_name(error.kind())];
  ++stats_.resolutions[options_.fallback_name];
  RankResult r;
  if (fallback_scores.size() == n) {
    r.scores.assign(fallback_scores.begin(), fallback_scores.end());
  } else {
    // Input order: the first candidate scores highest.
    r.scores.resize(n);
    for (std::size_t k = 0; k < n; ++k) r.scores[k] = -static_cast<double>(k);
  }
  r.order = order_by(r.scores);
  r.fell_back = true;
  return r;
}

RankResult InstructionRanker::rank_by_likelihood(const std::vector<llm::Message>& prompt,
                                                 const std::vector<std::string>& titles,
                                                 std::span<const double> fallback_scores) {
  if (titles.empty()) return {};
  try {
    return finish(likelihoods(prompt, titles), fallback_scores, titles.size());
  } catch (const llm::LlmError& e) {
    return fallback(fallback_scores, titles.size(), e);
  }
}

double InstructionRanker::yes_probability(const std::vector<llm::Message>& prompt) {
  // Compare raw sums: "Yes" and "No" are single tokens in common vocabularies, and normalising
  // would only matter if they were not.
  const bool normalise = options_.length_normalise;
  options_.length_normalise = false;
  std::vector<double> lp;
  try {
    lp = likelihoods(prompt, {options_.yes, options_.no});
  } catch (...) {
    options_.length_normalise = normalise;
    throw;
  }
  options_.length_normalise = normalise;
  const double m = std::max(lp[0], lp[1]);
  const double ey = std::exp(lp[0] - m), en = std::exp(lp[1] - m);
  return ey / (ey + en);
}

int InstructionRanker::choose(const std::vector<llm::Message>& prompt, const std::string& a,
                              const std::string& b) {
  const auto lp = likelihoods(prompt, {a, b});
  return lp[1] > lp[0] ? 1 : 0;
}

RankResult InstructionRanker::rank_pointwise(
    std::size_t n, const std::function<std::vector<llm::Message>(std::size_t)>& prompt_for,
    std::span<const double> fallback_scores) {
  if (n == 0) return {};
  std::vector<double> scores(n);
  try {
    for (std::size_t k = 0; k < n; ++k) scores[k] = yes_probability(prompt_for(k));
  } catch (const llm::LlmError& e) {
    return fallback(fallback_scores, n, e);
  }
  return finish(std::move(scores), fallback_scores, n);
}

RankResult InstructionRanker::rank_pairwise(
    const std::vector<std::string>& titles,
    const std::function<std::vector<llm::Message>(std::size_t, std::size_t)>& prompt_for,
    std::span<const double> fallback_scores) {
  const std::size_t n = titles.size();
  if (n == 0) return {};
  std::vector<double> wins(n, 0.0);
  try {
    for (std::size_t a = 0; a < n; ++a) {
      for (std::size_t b = a + 1; b < n; ++b) {
        const int pick = choose(prompt_for(a, b), titles[a], titles[b]);
        wins[pick == 0 ? a : b] += 1.0;
      }
    }
  } catch (const llm::LlmError& e) {
    return fallback(fallback_scores, n, e);
  }
  return finish(std::move(wins), fallback_scores, n);
}

}  // namespace chatrec::instruct
