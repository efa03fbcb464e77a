#pragma once
// The conversations of an engine: each one's state cached in memory in front of the store (when
// there is one), created, found, listed and saved turn by turn. A saved state leaves the user's
// history out (it is the catalogue's and the store's, and can be long); a conversation loaded from
// the store gets it from them again, as a new one does.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "chat/engine.h"
#include "chat/state.h"

namespace chatrec::store {
class Store;
}

namespace chatrec::chat {

class Catalog;

struct Session {
  std::mutex mutex;  // serialises the turns of one conversation
  ConversationState state;
  std::int64_t created_at = 0;
  std::uint64_t last_used = 0;  // Sessions' clock at the last create/get (under its mutex)
  // Without a store: the messages as they were said (the state's dialogue also holds each shown
  // list, for prompts).
  std::vector<DialogueTurn> said;
};

class Sessions {
 public:
  // `store` may be null (conversations live in memory only).
  Sessions(std::shared_ptr<Catalog> catalog, std::shared_ptr<store::Store> store,
           const EngineOptions& options);

  std::shared_ptr<Session> create(const std::string& user_id);
  // Throws ChatError kNotFound for an unknown id.
  std::shared_ptr<Session> get(const std::string& id);
  std::vector<ConversationInfo> of_user(const std::string& user_id);
  std::vector<DialogueTurn> messages(const std::string& id);
  std::size_t cached() const;  // sessions in memory now

  // Saves the turn's messages with the state, and appends them to the dialogue (trimmed to the
  // options' length) with `listing`, the list the reply's cards showed, after the assistant's
  // reply. Throws ChatError kUnavailable when the store fails: the answer stands, but the user must
  // be told it was not saved.
  void save_turn(Session& session, const std::vector<DialogueTurn>& new_turns,
                 const TurnResult& result, const std::string& listing = {});

 private:
  // The user's profile and history: the catalogue's, extended by the store's interactions.
  void load_user(ConversationState& state) const;

  std::shared_ptr<Catalog> catalog_;
  std::shared_ptr<store::Store> store_;
  const EngineOptions& options_;
  // Caller holds mutex_: stamps `s` as just used and, past options_.session_cache, lets the least
  // recently used sessions that nobody holds go (only with a store, which has them all).
  void touch_and_trim(const std::shared_ptr<Session>& s);

  mutable std::mutex mutex_;
  std::uint64_t clock_ = 0;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace chatrec::chat
