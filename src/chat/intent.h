#pragma once
// What a user message asks for. The LLM decides by constrained choice over the intent names; when
// it fails, answers something else, or contradicts an unambiguous phrase ("why did you recommend
// ...", "I didn't like
// ..."), a deterministic keyword classifier decides. The result says which did.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/types.h"
#include "llm/language_model.h"

namespace chatrec::chat {

struct IntentDecision {
  Intent intent = Intent::kOther;
  std::string decided_by;  // "llm" or "rules"
  std::string note;        // why the rules decided, when they did
};

// The keyword/regex classifier. `strong` is set when an unambiguous phrase decided.
Intent classify_intent_rules(std::string_view text, bool* strong = nullptr);

// A message that gives feedback and asks for something new ("I didn't like the second one. Any
// sci-fi instead?"): its feedback sentences and its request sentences, each as the user wrote
// them. nullopt unless the keyword rules find both in different sentences (or either side of a
// "but").
struct FeedbackAndRequest {
  std::string feedback;
  std::string request;
};
std::optional<FeedbackAndRequest> split_feedback_and_request(std::string_view text);

// `lm` may be null (rules only).
IntentDecision classify_intent(llm::LanguageModel* lm, std::string_view text,
                               const std::vector<std::string>& last_titles, double timeout_seconds,
                               Stats* stats);

}  // namespace chatrec::chat
