#pragma once
// What every part of a turn works with: the catalogue (under its shared lock), the conversation's
// state, the result being built and the reply stream. Also the user context as prompt lines (a
// rated item as a liked or disliked line), which the evaluation adapters reuse so that a prompt in
// an evaluation is the prompt a user's turn gets.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "chat/catalog.h"
#include "chat/constraints.h"
#include "chat/engine.h"
#include "chat/prompts.h"
#include "chat/state.h"
#include "chat/types.h"
#include "data/dataset.h"

namespace chatrec::chat {

class ColdStartIndex;

// An item as a prompt line: display title, categories (without "unknown"), rating, description.
PromptItem prompt_item(const data::Item& item, float rating = 0.0f);

// Adds a rated item (0 = implicit) to the liked lines (rating >= 4, or implicit) or the disliked
// ones (<= 2) while they have room; a middling rating goes to neither.
void add_rated_item(PromptContext& ctx, const data::Item& item, float rating, std::size_t max_liked,
                    std::size_t max_disliked);

Recommendation make_recommendation(const data::Item& item, const std::string& domain, double score,
                                   Source source);

struct TurnContext {
  const Catalog& catalog;
  const EngineOptions& options;
  llm::LanguageModel* lm;
  ColdStartIndex* cold;
  ConversationState& state;
  TurnResult& result;
  const TextCallback& on_text;
  // The recommended list as lines ("1. Title — reason"): not part of the reply, which the cards
  // (page) or the printed list (terminal) show, but kept in the dialogue so that later prompts know
  // what was shown.
  std::string listing = {};

  // Appends to the reply and streams it.
  void emit(const std::string& s);

  // Throws ChatError kBadRequest for a domain the catalogue does not have.
  const DomainCatalog& domain(const std::string& name) const;
  // The catalogue index of `ref` in its domain; throws as domain() does, and ChatError kNotFound
  // for an item the domain does not have.
  data::ItemIndex item_index(const ItemRef& ref) const;

  // The user's history items in `d` with a rating of at least `min_rating` (implicit ones always).
  std::vector<data::ItemIndex> history_items(const DomainCatalog& d, float min_rating = 0.0f) const;
  std::vector<data::ItemIndex> refs_in(const DomainCatalog& d,
                                       const std::vector<ItemRef>& refs) const;

  // The user's best-rated items (most recent first) and the worst, as prompt lines.
  PromptContext prompt_context(const std::string& domain_name, const std::string& query,
                               std::size_t max_liked = 10, std::size_t max_disliked = 5) const;

  // A title typed by the user in a domain: a whole-title mention first, then a close fuzzy match.
  std::optional<data::ItemIndex> resolve_title(const DomainCatalog& d,
                                               const std::string& snippet) const;

  // An item the message refers to: a title among the last recommendations, an ordinal ("the
  // second one"), a title in the catalogue, else the first recommendation when `default_first`.
  std::optional<ItemRef> referenced_item(const std::string& text, bool default_first) const;

  // Liked and disliked titles of a constraint update become the state's anchors and exclusions.
  void apply_titles(const ConstraintUpdate& u);

  // Reason for a recommendation: the liked history item most similar to it, and its categories.
  std::string reason_for(const DomainCatalog& d, data::ItemIndex item, Source source) const;

  // A free-form LLM answer streamed into the reply. On failure the turn is marked degraded and ""
  // returned, so the caller falls back to `resolution` (a template or canned text).
  std::string llm_answer(const PromptContext& ctx, const PromptItem* item, const char* resolution);
};

}  // namespace chatrec::chat
