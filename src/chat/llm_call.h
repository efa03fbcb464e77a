#pragma once
// Every LLM call of the chat engine goes through here: a time budget, token accounting and failures
// counted by kind ("timeout", "llm_error") instead of exceptions, so callers can fall back to the
// classic answer.
#include <optional>
#include <string>
#include <vector>

#include "chat/types.h"
#include "llm/language_model.h"

namespace chatrec::chat {

struct LlmCallResult {
  std::optional<llm::Completion> completion;  // empty on failure
  std::string failure;                        // "", "timeout" or "llm_error"
  std::string message;                        // what failed, for notes
};

// chat() with a deadline: generation stops when `timeout_seconds` have passed (counted as a
// timeout). `on_text` (optional) also receives the streamed text.
LlmCallResult call_chat(llm::LanguageModel& lm, const std::vector<llm::Message>& messages,
                        llm::GenerationOptions options, double timeout_seconds, Stats* stats);

struct LikelihoodResult {
  std::optional<std::vector<llm::Likelihood>> scores;
  std::string failure;
  std::string message;
};
LikelihoodResult call_loglikelihood(llm::LanguageModel& lm,
                                    const std::vector<llm::Message>& messages,
                                    const std::vector<std::string>& continuations,
                                    double timeout_seconds, Stats* stats);

}  // namespace chatrec::chat
