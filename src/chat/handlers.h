#pragma once
// One handler per intent of a turn. Each answers into the TurnContext (reply, recommendations,
// notes, stats) and updates the conversation's state; ChatEngine::turn decides which to call, and
// the structured API actions (explain, feedback) call theirs directly with the item.
#include <string>

#include "chat/turn_context.h"
#include "chat/types.h"

namespace chatrec::chat {

// Candidates from the classic recommender under the conversation's constraints (cross-domain by
// embedding similarity when the user has no history in the domain; cold-start items that match the
// request join them), reranked by the LLM to the top-k, with a reason per item.
void handle_recommend(TurnContext& tc, const std::string& text);

// Why `item` suits the user, grounded in its metadata and the user's most similar liked items.
void handle_explain(TurnContext& tc, const ItemRef& item, const std::string& text);

// A question about an item, answered by the LLM from its metadata (a template when it fails).
void handle_item_question(TurnContext& tc, const ItemRef& item, const std::string& text);

// A like or dislike of `item`: disliked items never come back, liked ones become anchors.
void handle_feedback(TurnContext& tc, const ItemRef& item, bool liked);

// Anything else: the LLM's free answer, or what chatrec can do.
void handle_other(TurnContext& tc, const std::string& text);

// Whether a feedback message is negative ("didn't like", "boring", "seen it", ...).
bool negative_feedback(const std::string& text);

}  // namespace chatrec::chat
