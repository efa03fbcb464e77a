#include "chat/sessions.h"

#include <algorithm>
#include <shared_mutex>

#include "chat/catalog.h"
#include "common/clock.h"
#include "store/store.h"

namespace chatrec::chat {

namespace {

std::string saved_state(const ConversationState& state) {
  return state.to_json(ConversationState::kWithoutHistory).dump();
}

}  // namespace

Sessions::Sessions(std::shared_ptr<Catalog> catalog, std::shared_ptr<store::Store> store,
                   const EngineOptions& options)
    : catalog_(std::move(catalog)), store_(std::move(store)), options_(options) {}

void Sessions::load_user(ConversationState& state) const {
  {
    std::shared_lock lock(catalog_->mutex());
    state.history = catalog_->history_of(state.user_id);
    state.profile = catalog_->profile_of(state.user_id);
  }
  if (!store_) return;
  // Interactions recorded in the store (outside the training data) extend the history.
  for (const auto& it : store_->interactions_of(state.user_id)) {
    auto& list = state.history[it.domain];
    const bool known = std::any_of(list.begin(), list.end(),
                                   [&](const RatedItem& r) { return r.item_id == it.item_id; });
    if (!known)
      list.push_back({it.item_id, it.rating.value_or(it.kind == "like"      ? 5.0f
                                                     : it.kind == "dislike" ? 1.0f
                                                                            : 0.0f)});
  }
}

std::shared_ptr<Session> Sessions::create(const std::string& user_id) {
  if (user_id.empty())
    throw ChatError(ChatError::Kind::kBadRequest, "a conversation needs a user id");
  auto s = std::make_shared<Session>();
  s->created_at = clock::unix_seconds();
  s->state.conversation_id = store_ ? store_->create_conversation(user_id).id : store::random_id();
  s->state.user_id = user_id;
  s->state.domain = options_.default_domain;
  load_user(s->state);
  if (store_) store_->append_turn(s->state.conversation_id, {}, saved_state(s->state));
  std::lock_guard lock(mutex_);
  sessions_[s->state.conversation_id] = s;
  touch_and_trim(s);
  return s;
}

void Sessions::touch_and_trim(const std::shared_ptr<Session>& s) {
  s->last_used = ++clock_;
  if (!store_ || sessions_.size() <= options_.session_cache) return;
  // Down to 90 % of the bound at once, so a full cache does not scan itself on every new session.
  const std::size_t keep = options_.session_cache - options_.session_cache / 10;
  std::vector<std::pair<std::uint64_t, std::string>> idle;
  for (const auto& [id, held] : sessions_) {
    // use_count 1: only this map holds it (no turn runs on it, no caller keeps it); nobody can
    // take it meanwhile without mutex_, which is held here.
    if (held.use_count() == 1) idle.emplace_back(held->last_used, id);
  }
  std::sort(idle.begin(), idle.end());
  for (const auto& [_, id] : idle) {
    if (sessions_.size() <= keep) break;
    sessions_.erase(id);
  }
}

std::size_t Sessions::cached() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

std::shared_ptr<Session> Sessions::get(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) {
      std::shared_ptr<Session> found = it->second;  // held: trimming must not let it go
      touch_and_trim(found);
      return found;
    }
  }
  if (!store_) throw ChatError(ChatError::Kind::kNotFound, "unknown conversation '" + id + "'");
  const auto conv = store_->get_conversation(id);
  if (!conv) throw ChatError(ChatError::Kind::kNotFound, "unknown conversation '" + id + "'");
  auto s = std::make_shared<Session>();
  s->created_at = conv->created_at;
  const auto j = nlohmann::json::parse(conv->state_json, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("version")) {
    s->state = ConversationState::from_json(j);
    // States saved before the history was left out carry their own copy; newer ones load it.
    if (!j.contains("history")) load_user(s->state);
  } else {
    s->state.conversation_id = id;
    s->state.user_id = conv->user_id;
    s->state.domain = options_.default_domain;
    load_user(s->state);
  }
  std::lock_guard lock(mutex_);
  auto [it, inserted] = sessions_.emplace(id, s);
  std::shared_ptr<Session> found = it->second;  // held: trimming must not let it go
  touch_and_trim(found);
  return found;
}

std::vector<ConversationInfo> Sessions::of_user(const std::string& user_id) {
  std::vector<ConversationInfo> out;
  if (store_) {
    for (const auto& c : store_->conversations_of(user_id))
      out.push_back({c.id, c.user_id, c.created_at, c.updated_at});
    return out;
  }
  std::lock_guard lock(mutex_);
  for (const auto& [id, s] : sessions_) {
    if (s->state.user_id == user_id) out.push_back({id, user_id, s->created_at, s->created_at});
  }
  return out;
}

std::vector<DialogueTurn> Sessions::messages(const std::string& id) {
  auto s = get(id);  // throws for an unknown id
  if (store_) {
    std::vector<DialogueTurn> out;
    for (const auto& m : store_->messages(id)) out.push_back({m.role, m.content});
    return out;
  }
  std::lock_guard lock(s->mutex);
  return s->said;
}

void Sessions::save_turn(Session& s, const std::vector<DialogueTurn>& new_turns,
                         const TurnResult& result, const std::string& listing) {
  for (const auto& t : new_turns) {
    s.state.dialogue.push_back(t);
    if (t.role == "assistant") s.state.dialogue.back().content += listing;
  }
  while (s.state.dialogue.size() > 2 * options_.max_dialogue_turns)
    s.state.dialogue.erase(s.state.dialogue.begin());
  s.state.turns += 1;
  if (!store_) {
    s.said.insert(s.said.end(), new_turns.begin(), new_turns.end());
    return;
  }
  std::vector<store::StoredMessage> msgs;
  for (const auto& t : new_turns) {
    store::StoredMessage m;
    m.role = t.role;
    m.content = t.content;
    m.payload_json = (m.role == "assistant") ? result.to_json().dump() : "{}";
    m.created_at = clock::unix_seconds();
    msgs.push_back(std::move(m));
  }
  try {
    store_->append_turn(s.state.conversation_id, msgs, saved_state(s.state));
  } catch (const store::StoreError& e) {
    // The client hears the cause, not the store's file name or URL (the log has those).
    throw ChatError(ChatError::Kind::kUnavailable,
                    "could not save the conversation, nothing was saved: " +
                        (e.reason().empty() ? std::string("storage error") : e.reason()));
  }
}

}  // namespace chatrec::chat
