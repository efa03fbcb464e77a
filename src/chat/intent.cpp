#include "chat/intent.h"

#include <regex>

#include "chat/llm_call.h"
#include "chat/prompts.h"
#include "common/text.h"

namespace chatrec::chat {

namespace {

bool has(const std::string& text, const char* pattern) {
  return std::regex_search(text, std::regex(pattern, std::regex::icase | std::regex::ECMAScript));
}

}  // namespace

Intent classify_intent_rules(std::string_view raw, bool* strong) {
  const std::string t = text::to_lower(raw);
  bool s = true;
  Intent out = Intent::kOther;
  const bool recommend_verb = has(t, R"(\b(recommend|suggest|propose)\w*\b)");
  if (has(t, R"(\b(why|how come|what makes)\b)") || has(t, R"(\bexplain\w*\b)") ||
      has(t, R"(\breason\w* (for|why|behind)\b)")) {
    out = Intent::kExplain;
  } else if (!recommend_verb &&
             (has(t, R"(\b(didn'?t|did not|don'?t|do not|never) (like|enjoy|want|care for)\b)") ||
              has(t, R"(\b(hated?|disliked?|loved|enjoyed|liked)\b)") ||
              has(t, R"(\bnot for me\b)") ||
              has(t, R"(\b(seen|watched|played) (it|that|this)\b)") || has(t, R"(\bmore like\b)") ||
              has(t, R"(\b(boring|terrible|awful)\b)"))) {
    out = Intent::kFeedback;
  } else if (
      recommend_verb ||
      has(t,
          R"(\b(looking for|what should i|show me|give me|any good|something|another|more|only|instead)\b)") ||
      has(t, R"(\b(movies?|films?|games?)\b)")) {
    out = Intent::kRecommend;
    s = recommend_verb || has(t, R"(\b(looking for|what should i|show me|give me)\b)");
  } else if (has(t, R"(\b(who|when|where|what is|what's|tell me about|how long|is it)\b)")) {
    out = Intent::kItemQuestion;
    s = false;
  } else {
    s = false;
  }
  if (strong) *strong = s;
  return out;
}

std::optional<FeedbackAndRequest> split_feedback_and_request(std::string_view text) {
  static const std::regex boundary(R"((?:[.!?;]+\s+|,?\s+but\s+))", std::regex::icase);
  const std::string all(text);
  FeedbackAndRequest out;
  auto add = [](std::string& to, std::string_view part) {
    if (!to.empty()) to += ' ';
    to += part;
  };
  std::sregex_token_iterator it(all.begin(), all.end(), boundary, -1), end;
  for (; it != end; ++it) {
    const std::string part(text::trim(it->str()));
    if (part.empty()) continue;
    const Intent intent = classify_intent_rules(part);
    if (intent == Intent::kFeedback)
      add(out.feedback, part);
    else if (intent == Intent::kRecommend)
      add(out.request, part);
  }
  if (out.feedback.empty() || out.request.empty()) return std::nullopt;
  return out;
}

IntentDecision classify_intent(llm::LanguageModel* lm, std::string_view text,
                               const std::vector<std::string>& last_titles, double timeout_seconds,
                               Stats* stats) {
  bool strong = false;
  const Intent by_rules = classify_intent_rules(text, &strong);
  if (!lm) return {by_rules, "rules", "no LLM configured"};
  llm::GenerationOptions options;
  options.max_tokens = 8;
  for (Intent i : {Intent::kRecommend, Intent::kExplain, Intent::kFeedback, Intent::kItemQuestion,
                   Intent::kOther}) {
    options.choices.push_back(to_string(i));
  }
  LlmCallResult r =
      call_chat(*lm, intent_prompt(text, last_titles), options, timeout_seconds, stats);
  if (!r.completion) {
    if (stats) stats->fail(r.failure, "rules_intent");
    return {by_rules, "rules", r.message};
  }
  const std::string answer = text::to_lower(text::trim(r.completion->text));
  Intent by_llm;
  bool ok = parse_intent(answer, &by_llm);
  if (!ok) {
    // Remote backends may wrap the choice in prose.
    for (const auto& c : options.choices) {
      if (answer.find(c) != std::string::npos && parse_intent(c, &by_llm)) {
        ok = true;
        break;
      }
    }
  }
  if (!ok) {
    if (stats) stats->fail("unparseable", "rules_intent");
    return {by_rules, "rules", "the LLM answered '" + answer + "', not an intent"};
  }
  if (strong && by_llm != by_rules) {
    return {
        by_rules, "rules",
        std::string("the LLM said ") + to_string(by_llm) + ", contradicting an explicit phrase"};
  }
  return {by_llm, "llm", ""};
}

}  // namespace chatrec::chat
