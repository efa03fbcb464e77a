#pragma once
// What a user message asks for. The LLM decides by constrained choice over the intent names; when
// it fails, answers something else, or contradicts an unambiguous phrase ("why did you recommend
// ...", "I didn't like
// ..."), a deterministic keyword classifier decides. The result says which did.
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

// `lm` may be null (rules only).
IntentDecision classify_intent(llm::LanguageModel* lm, std::string_view text,
                               const std::vector<std::string>& last_titles, double timeout_seconds,
                               Stats* stats);

}  // namespace chatrec::chat
