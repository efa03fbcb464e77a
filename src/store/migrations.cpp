// The schema, as ordered steps. Append new steps; never edit an applied one.
#include "store/internal.h"

namespace chatrec::store::detail {

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> steps = {
      {1, "core tables",
       // SQLite: JSON is TEXT guarded by json_valid; rowid gives insertion order for users and
       // items.
       R"sql(
CREATE TABLE users (
  id TEXT PRIMARY KEY NOT NULL,
  attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)));
CREATE TABLE items (
  domain TEXT NOT NULL,
  id TEXT NOT NULL,
  title TEXT NOT NULL,
  year INTEGER NOT NULL DEFAULT 0,
  categories TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(categories)),
  text TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(text)),
  PRIMARY KEY (domain, id));
CREATE TABLE interactions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  domain TEXT NOT NULL,
  item_id TEXT NOT NULL,
  rating REAL,
  kind TEXT NOT NULL,
  ts INTEGER NOT NULL);
CREATE TABLE conversations (
  id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  state_json TEXT NOT NULL CHECK (json_valid(state_json)),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE TABLE messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  payload_json TEXT NOT NULL CHECK (json_valid(payload_json)),
  created_at INTEGER NOT NULL);
CREATE TABLE embeddings (
  model TEXT NOT NULL,
  text_hash TEXT NOT NULL,
  dim INTEGER NOT NULL,
  vector BLOB NOT NULL,
  PRIMARY KEY (model, text_hash));
CREATE TABLE models (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  params_json TEXT NOT NULL CHECK (json_valid(params_json)),
  dataset_checksum TEXT NOT NULL,
  created_at INTEGER NOT NULL);
)sql",
       // PostgreSQL: the json type (not jsonb) keeps the text exactly as written, like SQLite does;
       // seq gives insertion order for users and items.
       R"sql(
CREATE TABLE users (
  seq BIGSERIAL NOT NULL,
  id TEXT PRIMARY KEY NOT NULL,
  attributes JSON NOT NULL DEFAULT '{}');
CREATE TABLE items (
  seq BIGSERIAL NOT NULL,
  domain TEXT NOT NULL,
  id TEXT NOT NULL,
  title TEXT NOT NULL,
  year INTEGER NOT NULL DEFAULT 0,
  categories JSON NOT NULL DEFAULT '[]',
  text JSON NOT NULL DEFAULT '{}',
  PRIMARY KEY (domain, id));
CREATE TABLE interactions (
  id BIGSERIAL PRIMARY KEY,
  user_id TEXT NOT NULL,
  domain TEXT NOT NULL,
  item_id TEXT NOT NULL,
  rating REAL,
  kind TEXT NOT NULL,
  ts BIGINT NOT NULL);
CREATE TABLE conversations (
  id TEXT PRIMARY KEY NOT NULL,
  user_id TEXT NOT NULL REFERENCES users(id),
  state_json JSON NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL);
CREATE TABLE messages (
  id BIGSERIAL PRIMARY KEY,
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  payload_json JSON NOT NULL,
  created_at BIGINT NOT NULL);
CREATE TABLE embeddings (
  model TEXT NOT NULL,
  text_hash TEXT NOT NULL,
  dim INTEGER NOT NULL,
  vector BYTEA NOT NULL,
  PRIMARY KEY (model, text_hash));
CREATE TABLE models (
  id BIGSERIAL PRIMARY KEY,
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  params_json JSON NOT NULL,
  dataset_checksum TEXT NOT NULL,
  created_at BIGINT NOT NULL);
)sql"},
      {2, "lookup indexes",
       R"sql(
CREATE INDEX interactions_by_user ON interactions (user_id, ts, id);
CREATE INDEX interactions_by_domain ON interactions (domain, ts, id);
CREATE INDEX conversations_by_user ON conversations (user_id, updated_at);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX models_by_name ON models (name, created_at, id);
)sql",
       R"sql(
CREATE INDEX interactions_by_user ON interactions (user_id, ts, id);
CREATE INDEX interactions_by_domain ON interactions (domain, ts, id);
CREATE INDEX conversations_by_user ON conversations (user_id, updated_at);
CREATE INDEX messages_by_conversation ON messages (conversation_id, id);
CREATE INDEX models_by_name ON models (name, created_at, id);
CREATE INDEX users_by_seq ON users (seq);
CREATE INDEX items_by_seq ON items (domain, seq);
)sql"},
      // The Amazon Games import wrote its anonymous user ids bare, so the log of games user "196"
      // read as the history of this deployment's user "196". Imported rows are the "view" rows
      // whose timestamps are sequence positions (live interactions carry Unix times); they move
      // to the namespace the import now writes.
      {3, "namespaced anonymous game logs",
       R"sql(
UPDATE interactions SET user_id = 'games:' || user_id
  WHERE domain = 'games' AND kind = 'view' AND ts < 1000000000 AND user_id NOT LIKE 'games:%';
)sql",
       R"sql(
UPDATE interactions SET user_id = 'games:' || user_id
  WHERE domain = 'games' AND kind = 'view' AND ts < 1000000000 AND user_id NOT LIKE 'games:%';
)sql"},
  };
  return steps;
}

}  // namespace chatrec::store::detail

namespace chatrec::store {
int latest_schema_version() {
  return detail::migrations().back().version;
}
}  // namespace chatrec::store
