#pragma once
// Explanations grounded in the item's metadata and the user's history: the caller picks the history
// items most similar to the item (item-item similarity of the recommender's data), they go into the
// prompt, and the answer is checked to mention them; when it does not (or the LLM fails) they are
// named in an appended sentence, so every explanation states what it relies on.
#include <string>
#include <string_view>
#include <vector>

#include "chat/engine.h"
#include "chat/prompts.h"
#include "chat/types.h"
#include "llm/language_model.h"

namespace chatrec::chat {

struct Explanation {
  std::string text;
  std::vector<std::string> support_titles;  // history items the explanation relies on
  bool llm_used = false;
  bool degraded = false;
  std::vector<std::string> notes;
};

// Rewrites a streamed answer that speaks of "the user" in the third person into the second person
// ("the user may like" -> "you may like", "the user's" -> "your", "The user is" -> "You are"): the
// explanation answers the person reading it. Pieces are held back only while they could still be
// the start of a phrase.
class SecondPersonRewriter {
 public:
  // The text that is final so far.
  std::string feed(std::string_view piece);
  // The rest, at the end of the answer.
  std::string flush();

 private:
  std::string rewrite_complete(bool at_end);
  std::string pending_;
};
// The whole text rewritten at once.
std::string to_second_person(std::string_view text);

// Does the text mention the title (key form, whole words; a long title's first words suffice)?
bool mentions_title(std::string_view text, std::string_view title);
// The deterministic explanation from metadata and support items.
std::string template_explanation(const PromptItem& item, const std::vector<PromptItem>& support,
                                 const std::string& domain);

// Whether an explanation repeats the prompt's own lines ("Heat (1995) [Action] rated 4", "You
// disliked:", "Your request:") instead of explaining: explain_item then answers with the template.
bool echoes_prompt(std::string_view answer);

Explanation explain_item(llm::LanguageModel* lm, const PromptContext& ctx, const PromptItem& item,
                         const std::vector<PromptItem>& support, int max_tokens,
                         double timeout_seconds, const TextCallback& on_text, Stats* stats);

// Rating prediction: the LLM's expected rating over the digits 1..5 (log-likelihood of each), or
// its constrained choice; `fallback` (the base model's prediction) when both fail. Sets *llm_used.
float predict_rating_llm(llm::LanguageModel* lm, const PromptContext& ctx, const PromptItem& item,
                         float fallback, double timeout_seconds, Stats* stats, bool* llm_used);

}  // namespace chatrec::chat
