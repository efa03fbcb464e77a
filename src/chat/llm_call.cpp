#include "chat/llm_call.h"

#include <chrono>

namespace chatrec::chat {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void account(llm::LanguageModel& lm, const llm::Usage& before, Clock::time_point start,
             Stats* stats) {
  if (!stats) return;
  const llm::Usage after = lm.total_usage();
  stats->llm_calls += 1;
  stats->tokens_in += after.prompt_tokens - before.prompt_tokens;
  stats->tokens_out += after.completion_tokens - before.completion_tokens;
  stats->latency_ms += ms_since(start);
}

std::string over_budget(double timeout_seconds) {
  return "the LLM exceeded its time budget of " + std::to_string(timeout_seconds) + " s";
}

// Runs call(result, start) with token and latency accounting, turning what it throws into a
// failure kind and message, so that callers can fall back instead of unwinding.
template <typename Result, typename Call>
Result accounted_call(llm::LanguageModel& lm, Stats* stats, Call&& call) {
  Result result;
  const auto start = Clock::now();
  const llm::Usage before = lm.total_usage();
  try {
    call(result, start);
  } catch (const llm::LlmError& e) {
    result.failure = e.kind() == llm::LlmError::Kind::kTimeout ? "timeout" : "llm_error";
    result.message = std::string("LLM ") + llm::to_string(e.kind()) + ": " + e.what();
  } catch (const std::exception& e) {
    result.failure = "llm_error";
    result.message = std::string("LLM error: ") + e.what();
  }
  account(lm, before, start, stats);
  return result;
}

}  // namespace

LlmCallResult call_chat(llm::LanguageModel& lm, const std::vector<llm::Message>& messages,
                        llm::GenerationOptions options, double timeout_seconds, Stats* stats) {
  return accounted_call<LlmCallResult>(
      lm, stats, [&](LlmCallResult& result, Clock::time_point start) {
        const auto deadline = start + std::chrono::duration<double>(timeout_seconds);
        bool timed_out = false;
        auto user_callback = options.on_text;
        options.on_text = [&](std::string_view piece) {
          if (Clock::now() > deadline) {
            timed_out = true;
            return false;
          }
          return user_callback ? user_callback(piece) : true;
        };
        llm::Completion c = lm.chat(messages, options);
        if (timed_out || Clock::now() > deadline + std::chrono::seconds(1)) {
          result.failure = "timeout";
          result.message = over_budget(timeout_seconds);
        } else {
          result.completion = std::move(c);
        }
      });
}

LikelihoodResult call_loglikelihood(llm::LanguageModel& lm,
                                    const std::vector<llm::Message>& messages,
                                    const std::vector<std::string>& continuations,
                                    double timeout_seconds, Stats* stats) {
  return accounted_call<LikelihoodResult>(
      lm, stats, [&](LikelihoodResult& result, Clock::time_point start) {
        auto scores = lm.loglikelihood(messages, continuations);
        if (scores.size() != continuations.size()) {
          result.failure = "llm_error";
          result.message = "the LLM scored " + std::to_string(scores.size()) + " of " +
                           std::to_string(continuations.size()) + " continuations";
        } else if (ms_since(start) > timeout_seconds * 1000.0) {
          result.failure = "timeout";
          result.message = over_budget(timeout_seconds);
        } else {
          result.scores = std::move(scores);
        }
      });
}

}  // namespace chatrec::chat
