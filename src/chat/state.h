#pragma once
// The state of one conversation: everything a later turn needs, serialised to JSON and persisted
// with each turn (store::Store::append_turn), so that a conversation survives a restart.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/types.h"

namespace chatrec::chat {

struct RatedItem {
  std::string item_id;
  float rating = 0.0f;  // 0 = implicit (no explicit rating)
};

struct DialogueTurn {
  std::string role;  // "user" or "assistant"
  std::string content;
};

struct ConversationState {
  static constexpr int kVersion = 1;

  std::string conversation_id;
  std::string user_id;
  std::map<std::string, std::string> profile;  // age, gender, occupation, ...
  std::map<std::string, std::vector<RatedItem>>
      history;                    // domain -> the user's items (catalogue + chat)
  std::string domain = "movies";  // current target domain
  Constraints constraints;        // stated preferences, cumulative
  std::vector<ItemRef> liked;     // "more like Y": anchors
  std::vector<ItemRef> disliked;  // never shown again
  std::vector<ItemRef> shown;     // everything recommended so far
  std::vector<Recommendation> last_recommendations;
  std::vector<DialogueTurn> dialogue;
  int turns = 0;

  bool is_disliked(const ItemRef& item) const;
  // Adds a like/dislike, removing the opposite one and keeping each list duplicate-free.
  void add_liked(const ItemRef& item);
  void add_disliked(const ItemRef& item);

  // kWithoutHistory leaves `history` out: a saved conversation gets it from the catalogue and the
  // store when it is loaded, so each saved turn does not repeat the user's whole history.
  enum HistoryMode { kWithHistory, kWithoutHistory };
  nlohmann::json to_json(HistoryMode mode = kWithHistory) const;
  // Throws std::invalid_argument naming the field when the JSON is not a conversation state.
  // `history` may be absent (kWithoutHistory).
  static ConversationState from_json(const nlohmann::json& j);
};

}  // namespace chatrec::chat
