#pragma once
// Persistent storage of users, items (per domain), interactions, conversations and messages, the
// embedding cache and the trained-model registry. One interface, two engines: SQLite (default, WAL)
// and PostgreSQL. Every write is a transaction: when a call returns, the data is durable.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace chatrec::store {

// Every failure of a store call (bad URL, connection, constraint, unknown conversation, invalid
// JSON, ...). When a write call throws, nothing of it was written.
class StoreError : public std::runtime_error {
 public:
  // kUnavailable: the database cannot take the call now (disk or size limit full, read-only file,
  // I/O error, lock timeout, connection lost); the same call may succeed later, and the server
  // answers 503. kFailed: anything else.
  enum class Kind { kFailed, kUnavailable };
  // `reason`: a short cause fit for a client (no file names or URLs), e.g. "the database is full".
  explicit StoreError(const std::string& message, Kind kind = Kind::kFailed,
                      std::string reason = {})
      : std::runtime_error(message), kind_(kind), reason_(std::move(reason)) {}
  Kind kind() const { return kind_; }
  bool unavailable() const { return kind_ == Kind::kUnavailable; }
  const std::string& reason() const { return reason_; }

 private:
  Kind kind_;
  std::string reason_;
};

// Highest schema version this binary knows; schema_version() equals it after migrate().
int latest_schema_version();

struct StoredInteraction {
  std::string user_id;
  std::string item_id;
  std::string domain;
  std::optional<float> rating;
  std::string kind = "rating";  // "rating", "like", "dislike", "view"
  std::int64_t timestamp = 0;
};

struct StoredMessage {
  std::int64_t id = 0;
  std::string role;  // "user" or "assistant"
  std::string content;
  std::string payload_json;  // structured part: recommendations, intent, failures ("{}" when none)
  std::int64_t created_at = 0;
};

struct Conversation {
  std::string id;
  std::string user_id;
  std::string state_json;  // chat::ConversationState serialised
  std::int64_t created_at = 0;
  std::int64_t updated_at = 0;
};

struct ModelRecord {
  std::string name;  // e.g. "movies/ease"
  std::string path;  // model file
  std::string params_json;
  std::string dataset_checksum;
  std::int64_t created_at = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Applies pending schema migrations (versioned, idempotent).
  virtual void migrate() = 0;
  virtual int schema_version() = 0;

  // Users and items. upsert = insert or update by external id (items: by (domain, id)).
  virtual void upsert_user(const data::User& user) = 0;
  virtual std::optional<data::User> get_user(const std::string& id) = 0;
  virtual std::vector<data::User> list_users(std::size_t limit, std::size_t offset) = 0;
  virtual void upsert_items(const std::vector<data::Item>& items) = 0;  // one transaction
  virtual std::optional<data::Item> get_item(const std::string& domain, const std::string& id) = 0;
  virtual std::vector<data::Item> list_items(const std::string& domain) = 0;

  // Interactions: appended; ratings of the same (user, item) keep history but the latest counts.
  virtual void add_interactions(
      const std::vector<StoredInteraction>& interactions) = 0;  // one transaction
  virtual std::vector<StoredInteraction> interactions_of(const std::string& user_id) = 0;
  virtual std::vector<StoredInteraction> all_interactions(const std::string& domain) = 0;

  // Conversations.
  virtual Conversation create_conversation(const std::string& user_id) = 0;
  virtual std::optional<Conversation> get_conversation(const std::string& id) = 0;
  virtual std::vector<Conversation> conversations_of(const std::string& user_id) = 0;
  // Appends messages and replaces the state atomically.
  virtual void append_turn(const std::string& conversation_id,
                           const std::vector<StoredMessage>& messages,
                           const std::string& new_state_json) = 0;
  virtual std::vector<StoredMessage> messages(const std::string& conversation_id) = 0;

  // Embedding cache keyed by (model, text hash).
  virtual std::optional<std::vector<float>> get_embedding(const std::string& model,
                                                          const std::string& text_hash) = 0;
  virtual void put_embeddings(
      const std::string& model,
      const std::vector<std::pair<std::string, std::vector<float>>>& by_hash) = 0;

  // Trained-model registry.
  virtual void register_model(const ModelRecord& record) = 0;
  virtual std::optional<ModelRecord> latest_model(const std::string& name) = 0;
};

// "sqlite:PATH" (or a plain path), "postgresql://..." / "postgres://..." / "host=... dbname=..."
// (libpq connection string). Pending migrations are applied on open, so the returned store is ready
// to use. Throws StoreError naming the URL (password masked) on a bad URL or a failed connection.
// A PostgreSQL server that is unreachable at first (starting up, restarting) is retried with
// backoff for CHATREC_STORE_CONNECT_SECONDS (default 30) before that error.
std::unique_ptr<Store> open_store(const std::string& url);

// 128 random bits as 32 lowercase hex digits (conversation ids).
std::string random_id();

}  // namespace chatrec::store
