#pragma once
// Prompt construction. Everything the user typed (the query, the dialogue) is quoted between """
// fences with fence and chat-template sequences neutralised, so user text cannot change the
// prompt's structure. Dialogue history and item history are trimmed to the model's context budget
// (count_tokens / context_size).
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/state.h"
#include "llm/language_model.h"

namespace chatrec::chat {

struct PromptItem {
  std::string title;  // display form ("A Fish Called Wanda (1988)")
  std::vector<std::string> categories;
  float rating = 0.0f;  // 0 = not rated
  std::string description;
};

struct PromptContext {
  std::string domain = "movies";
  std::map<std::string, std::string> profile;
  std::vector<PromptItem> liked;     // most relevant first
  std::vector<PromptItem> disliked;  // most relevant first
  std::vector<DialogueTurn> dialogue;
  std::string query;
  std::string constraints;  // "comedies only, from the 1990s", already in words
};

// The user text fenced and neutralised.
std::string quote_user_text(std::string_view text);
// "film"/"films" for movies, "game"/"games" for games, else "item"/"items".
std::string domain_noun(const std::string& domain, bool plural);
std::string describe_item(const PromptItem& item, bool with_rating);
std::string describe_profile(const std::map<std::string, std::string>& profile);

// Fits the context: drops the oldest dialogue turns first, then the least relevant history items,
// until the messages plus `reserve_tokens` fit the model's context (keeping at least one item of
// each list).
struct BudgetedPrompt {
  std::vector<llm::Message> messages;
  int prompt_tokens = 0;
  std::size_t dialogue_kept = 0, liked_kept = 0, disliked_kept = 0;
};

// Generate mode: numbered candidates, answer with a numbered list of k titles. With `hint_title`
// the first pick is given and the model selects the remaining k-1.
BudgetedPrompt rerank_prompt(llm::LanguageModel& lm, const PromptContext& ctx,
                             const std::vector<PromptItem>& candidates, std::size_t k,
                             const std::optional<std::string>& hint_title, int reserve_tokens);
// Score mode: the same context asking for one item; each candidate title is then scored as the
// answer.
BudgetedPrompt score_prompt(llm::LanguageModel& lm, const PromptContext& ctx,
                            const std::vector<PromptItem>& candidates,
                            const std::optional<std::string>& hint_title, int reserve_tokens);
// Explanation grounded in the item's metadata and the named history items.
BudgetedPrompt explain_prompt(llm::LanguageModel& lm, const PromptContext& ctx,
                              const PromptItem& item, const std::vector<PromptItem>& support,
                              int reserve_tokens);
// Rating prediction: answer one digit 1..5.
BudgetedPrompt rating_prompt(llm::LanguageModel& lm, const PromptContext& ctx,
                             const PromptItem& item, int reserve_tokens);
// Answering a question about an item, or chit-chat (item may be null).
BudgetedPrompt answer_prompt(llm::LanguageModel& lm, const PromptContext& ctx,
                             const PromptItem* item, int reserve_tokens);
// Intent classification (constrained choice over the intent names).
std::vector<llm::Message> intent_prompt(std::string_view user_text,
                                        const std::vector<std::string>& last_titles);
// Constraint extraction as JSON (schema in constraints.h).
// The wanted genre as a constrained choice among `categories` or "none" (small models).
std::vector<llm::Message> genre_choice_prompt(std::string_view user_text, const std::string& domain,
                                              const std::vector<std::string>& categories);
std::vector<llm::Message> constraints_prompt(std::string_view user_text, const std::string& domain,
                                             const std::vector<std::string>& categories);

}  // namespace chatrec::chat
