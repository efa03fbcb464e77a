// SQLite engine. One connection guarded by a mutex: SQLite serialises writers anyway, and a single
// connection keeps every call's transaction simple. WAL lets other processes read while we write.
#include "store/sqlite/sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <algorithm>

#include <mutex>
#include <type_traits>

#include "common/clock.h"
#include "store/internal.h"

namespace chatrec::store {
namespace {

constexpr int kBusyTimeoutMs = 10000;

class SqliteStore final : public Store {
 public:
  SqliteStore(const std::string& path, std::int64_t max_bytes) : path_(path), db_(open(path)) {
    try {
      if (max_bytes > 0) {
        const std::int64_t page = db_.execAndGet("PRAGMA page_size").getInt64();
        const std::int64_t pages = std::max<std::int64_t>(1, (max_bytes + page - 1) / page);
        db_.exec("PRAGMA max_page_count=" + std::to_string(pages));
      }
      // WAL: readers don't block the writer. synchronous=FULL: a commit is fsynced before the call
      // returns, so an acknowledged write survives kill -9 and power loss.
      db_.exec("PRAGMA journal_mode=WAL");
      db_.exec("PRAGMA synchronous=FULL");
      db_.exec("PRAGMA foreign_keys=ON");
    } catch (const SQLite::Exception& e) {
      throw StoreError("cannot configure SQLite database '" + path + "': " + e.what());
    }
  }

  void migrate() override {
    guarded("migrate", [&] {
      db_.exec(
          "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description "
          "TEXT NOT NULL, "
          "applied_at INTEGER NOT NULL)");
      for (const auto& step : detail::migrations()) {
        // IMMEDIATE takes the write lock up front, so two processes migrating at once serialise
        // here and the second one sees the step as applied.
        SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
        if (current_version() >= step.version) continue;
        db_.exec(step.sqlite_sql);
        SQLite::Statement mark(
            db_, "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?,?,?)");
        mark.bind(1, step.version);
        mark.bind(2, step.description);
        mark.bind(3, clock::unix_seconds());
        mark.exec();
        tx.commit();
      }
      check_not_newer();
    });
  }

  int schema_version() override {
    return guarded("schema_version", [&] { return current_version(); });
  }

  void upsert_user(const data::User& user) override {
    detail::validate(user);
    in_write_transaction("upsert_user", [&] {
      SQLite::Statement st(db_,
                           "INSERT INTO users (id, attributes) VALUES (?, ?) "
                           "ON CONFLICT (id) DO UPDATE SET attributes = excluded.attributes");
      st.bind(1, user.id);
      st.bind(2, detail::encode_attributes(user.attributes));
      st.exec();
    });
  }

  std::optional<data::User> get_user(const std::string& id) override {
    return guarded("get_user", [&]() -> std::optional<data::User> {
      SQLite::Statement st(db_, "SELECT id, attributes FROM users WHERE id = ?");
      st.bind(1, id);
      if (!st.executeStep()) return std::nullopt;
      return read_user(st);
    });
  }

  std::vector<data::User> list_users(std::size_t limit, std::size_t offset) override {
    return guarded("list_users", [&] {
      SQLite::Statement st(db_, "SELECT id, attributes FROM users ORDER BY rowid LIMIT ? OFFSET ?");
      st.bind(1, clamp_count(limit));
      st.bind(2, clamp_count(offset));
      std::vector<data::User> users;
      while (st.executeStep()) users.push_back(read_user(st));
      return users;
    });
  }

  void upsert_items(const std::vector<data::Item>& items) override {
    for (const auto& item : items) detail::validate(item);
    in_write_transaction("upsert_items", [&] {
      SQLite::Statement st(
          db_,
          "INSERT INTO items (domain, id, title, year, categories, text) VALUES (?,?,?,?,?,?) "
          "ON CONFLICT (domain, id) DO UPDATE SET title = excluded.title, year = excluded.year, "
          "categories = excluded.categories, text = excluded.text");
      for (const auto& item : items) {
        st.reset();
        st.bind(1, item.domain);
        st.bind(2, item.id);
        st.bind(3, item.title);
        st.bind(4, item.year);
        st.bind(5, detail::encode_categories(item.categories));
        st.bind(6, detail::encode_attributes(item.text));
        st.exec();
      }
    });
  }

  std::optional<data::Item> get_item(const std::string& domain, const std::string& id) override {
    return guarded("get_item", [&]() -> std::optional<data::Item> {
      SQLite::Statement st(db_,
                           "SELECT domain, id, title, year, categories, text FROM items WHERE "
                           "domain = ? AND id = ?");
      st.bind(1, domain);
      st.bind(2, id);
      if (!st.executeStep()) return std::nullopt;
      return read_item(st);
    });
  }

  std::vector<data::Item> list_items(const std::string& domain) override {
    return guarded("list_items", [&] {
      SQLite::Statement st(db_,
                           "SELECT domain, id, title, year, categories, text FROM items WHERE "
                           "domain = ? ORDER BY rowid");
      st.bind(1, domain);
      std::vector<data::Item> items;
      while (st.executeStep()) items.push_back(read_item(st));
      return items;
    });
  }

  void add_interactions(const std::vector<StoredInteraction>& interactions) override {
    for (const auto& i : interactions) detail::validate(i);
    in_write_transaction("add_interactions", [&] {
      SQLite::Statement st(db_,
                           "INSERT INTO interactions (user_id, domain, item_id, rating, kind, ts) "
                           "VALUES (?,?,?,?,?,?)");
      for (const auto& i : interactions) {
        st.reset();
        st.bind(1, i.user_id);
        st.bind(2, i.domain);
        st.bind(3, i.item_id);
        if (i.rating) {
          st.bind(4, static_cast<double>(*i.rating));
        } else {
          st.bind(4);
        }
        st.bind(5, i.kind);
        st.bind(6, static_cast<std::int64_t>(i.timestamp));
        st.exec();
      }
    });
  }

  std::vector<StoredInteraction> interactions_of(const std::string& user_id) override {
    return guarded("interactions_of", [&] {
      SQLite::Statement st(
          db_,
          "SELECT user_id, item_id, domain, rating, kind, ts FROM interactions WHERE user_id = ? "
          "ORDER BY ts, id");
      st.bind(1, user_id);
      return read_interactions(st);
    });
  }

  std::vector<StoredInteraction> all_interactions(const std::string& domain) override {
    return guarded("all_interactions", [&] {
      SQLite::Statement st(
          db_,
          "SELECT user_id, item_id, domain, rating, kind, ts FROM interactions WHERE domain = ? "
          "ORDER BY ts, id");
      st.bind(1, domain);
      return read_interactions(st);
    });
  }

  Conversation create_conversation(const std::string& user_id) override {
    return in_write_transaction("create_conversation", [&] {
      require_user(user_id);
      Conversation c;
      c.id = random_id();
      c.user_id = user_id;
      c.state_json = "{}";
      c.created_at = c.updated_at = clock::unix_seconds();
      SQLite::Statement st(db_,
                           "INSERT INTO conversations (id, user_id, state_json, created_at, "
                           "updated_at) VALUES (?,?,?,?,?)");
      st.bind(1, c.id);
      st.bind(2, c.user_id);
      st.bind(3, c.state_json);
      st.bind(4, c.created_at);
      st.bind(5, c.updated_at);
      st.exec();
      return c;
    });
  }

  std::optional<Conversation> get_conversation(const std::string& id) override {
    return guarded("get_conversation", [&]() -> std::optional<Conversation> {
      SQLite::Statement st(
          db_,
          "SELECT id, user_id, state_json, created_at, updated_at FROM conversations WHERE id = ?");
      st.bind(1, id);
      if (!st.executeStep()) return std::nullopt;
      return read_conversation(st);
    });
  }

  std::vector<Conversation> conversations_of(const std::string& user_id) override {
    return guarded("conversations_of", [&] {
      SQLite::Statement st(
          db_,
          "SELECT id, user_id, state_json, created_at, updated_at FROM conversations "
          "WHERE user_id = ? ORDER BY updated_at DESC, rowid DESC");
      st.bind(1, user_id);
      std::vector<Conversation> out;
      while (st.executeStep()) out.push_back(read_conversation(st));
      return out;
    });
  }

  void append_turn(const std::string& conversation_id, const std::vector<StoredMessage>& messages,
                   const std::string& new_state_json) override {
    detail::require_json(new_state_json, "conversation state_json");
    for (const auto& m : messages) detail::validate(m);
    in_write_transaction("append_turn", [&] {
      const auto now = clock::unix_seconds();
      SQLite::Statement update(
          db_, "UPDATE conversations SET state_json = ?, updated_at = ? WHERE id = ?");
      update.bind(1, new_state_json);
      update.bind(2, now);
      update.bind(3, conversation_id);
      if (update.exec() == 0)
        throw StoreError("append_turn: unknown conversation '" + conversation_id + "'");
      SQLite::Statement insert(
          db_,
          "INSERT INTO messages (conversation_id, role, content, payload_json, created_at) "
          "VALUES (?,?,?,?,?)");
      for (const auto& m : messages) {
        insert.reset();
        insert.bind(1, conversation_id);
        insert.bind(2, m.role);
        insert.bind(3, m.content);
        insert.bind(4, detail::payload_or_empty_object(m.payload_json));
        insert.bind(5, m.created_at != 0 ? m.created_at : now);
        insert.exec();
      }
    });
  }

  std::vector<StoredMessage> messages(const std::string& conversation_id) override {
    return guarded("messages", [&] {
      SQLite::Statement st(db_,
                           "SELECT id, role, content, payload_json, created_at FROM messages "
                           "WHERE conversation_id = ? ORDER BY id");
      st.bind(1, conversation_id);
      std::vector<StoredMessage> out;
      while (st.executeStep()) {
        StoredMessage m;
        m.id = st.getColumn(0).getInt64();
        m.role = st.getColumn(1).getString();
        m.content = st.getColumn(2).getString();
        m.payload_json = st.getColumn(3).getString();
        m.created_at = st.getColumn(4).getInt64();
        out.push_back(std::move(m));
      }
      return out;
    });
  }

  std::optional<std::vector<float>> get_embedding(const std::string& model,
                                                  const std::string& text_hash) override {
    return guarded("get_embedding", [&]() -> std::optional<std::vector<float>> {
      SQLite::Statement st(db_,
                           "SELECT dim, vector FROM embeddings WHERE model = ? AND text_hash = ?");
      st.bind(1, model);
      st.bind(2, text_hash);
      if (!st.executeStep()) return std::nullopt;
      const auto blob = st.getColumn(1);
      return detail::decode_vector(blob.getBlob(), static_cast<std::size_t>(blob.getBytes()),
                                   st.getColumn(0).getInt(), "(" + model + ", " + text_hash + ")");
    });
  }

  void put_embeddings(
      const std::string& model,
      const std::vector<std::pair<std::string, std::vector<float>>>& by_hash) override {
    detail::validate_embeddings(model, by_hash);
    in_write_transaction("put_embeddings", [&] {
      SQLite::Statement st(
          db_,
          "INSERT INTO embeddings (model, text_hash, dim, vector) VALUES (?,?,?,?) "
          "ON CONFLICT (model, text_hash) DO UPDATE SET dim = excluded.dim, vector = "
          "excluded.vector");
      for (const auto& [hash, vector] : by_hash) {
        const std::string bytes = detail::encode_vector(vector);
        st.reset();
        st.bind(1, model);
        st.bind(2, hash);
        st.bind(3, static_cast<std::int64_t>(vector.size()));
        st.bind(4, bytes.data(), static_cast<int>(bytes.size()));
        st.exec();
      }
    });
  }

  void register_model(const ModelRecord& record) override {
    detail::validate(record);
    in_write_transaction("register_model", [&] {
      SQLite::Statement st(db_,
                           "INSERT INTO models (name, path, params_json, dataset_checksum, "
                           "created_at) VALUES (?,?,?,?,?)");
      st.bind(1, record.name);
      st.bind(2, record.path);
      st.bind(3, record.params_json.empty() ? std::string("{}") : record.params_json);
      st.bind(4, record.dataset_checksum);
      st.bind(5, record.created_at != 0 ? record.created_at : clock::unix_seconds());
      st.exec();
    });
  }

  std::optional<ModelRecord> latest_model(const std::string& name) override {
    return guarded("latest_model", [&]() -> std::optional<ModelRecord> {
      SQLite::Statement st(
          db_,
          "SELECT name, path, params_json, dataset_checksum, created_at FROM models WHERE name = ? "
          "ORDER BY created_at DESC, id DESC LIMIT 1");
      st.bind(1, name);
      if (!st.executeStep()) return std::nullopt;
      ModelRecord r;
      r.name = st.getColumn(0).getString();
      r.path = st.getColumn(1).getString();
      r.params_json = st.getColumn(2).getString();
      r.dataset_checksum = st.getColumn(3).getString();
      r.created_at = st.getColumn(4).getInt64();
      return r;
    });
  }

 private:
  static SQLite::Database open(const std::string& path) {
    try {
      return SQLite::Database(path,
                              SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_FULLMUTEX,
                              kBusyTimeoutMs);
    } catch (const SQLite::Exception& e) {
      throw StoreError("cannot open SQLite database '" + path + "': " + e.what());
    }
  }

  // Runs `body` under the connection mutex; SQLite errors become StoreError naming the call and the
  // file. Transactions inside `body` roll back on the way out of a throw.
  template <typename Body>
  auto guarded(const char* call, Body&& body) -> decltype(body()) {
    std::lock_guard lock(mutex_);
    try {
      return body();
    } catch (const SQLite::Exception& e) {
      const char* why = unavailable_reason(e.getErrorCode());
      throw StoreError(std::string("sqlite store '") + path_ + "': " + call +
                           " failed: " + (why ? std::string(why) + ": " : std::string()) + e.what(),
                       why ? StoreError::Kind::kUnavailable : StoreError::Kind::kFailed,
                       why ? why : "");
    }
  }

  // SQLite result codes (primary, the low byte) of conditions that pass: the write may succeed
  // once space returns, the file is writable again or the other writer is done.
  static const char* unavailable_reason(int code) {
    switch (code & 0xff) {
      case SQLITE_FULL:
        return "the database is full (its disk, or its max_size_mb limit)";
      case SQLITE_READONLY:
        return "the database file is read-only";
      case SQLITE_IOERR:
        return "I/O error";
      case SQLITE_CANTOPEN:
        return "cannot open the database file";
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return "the database is locked by another writer";
      case SQLITE_NOMEM:
        return "out of memory";
      default:
        return nullptr;
    }
  }

  // guarded() inside a transaction committed when `body` returns. IMMEDIATE takes the write lock
  // up front, so a concurrent writer waits out the busy timeout instead of failing when a read
  // lock would have to be upgraded.
  template <typename Body>
  auto in_write_transaction(const char* call, Body&& body) -> decltype(body()) {
    return guarded(call, [&]() -> decltype(body()) {
      SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
      if constexpr (std::is_void_v<decltype(body())>) {
        body();
        tx.commit();
      } else {
        auto result = body();
        tx.commit();
        return result;
      }
    });
  }

  int current_version() {
    SQLite::Statement exists(
        db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    if (!exists.executeStep()) return 0;
    SQLite::Statement st(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    st.executeStep();
    return st.getColumn(0).getInt();
  }

  void check_not_newer() {
    const int version = current_version();
    if (version > latest_schema_version()) {
      throw StoreError("database '" + path_ + "' has schema version " + std::to_string(version) +
                       ", newer than this build knows (" + std::to_string(latest_schema_version()) +
                       ")");
    }
  }

  void require_user(const std::string& user_id) {
    SQLite::Statement st(db_, "SELECT 1 FROM users WHERE id = ?");
    st.bind(1, user_id);
    if (!st.executeStep())
      throw StoreError("create_conversation: unknown user '" + user_id + "' (upsert_user first)");
  }

  static std::int64_t clamp_count(std::size_t n) {
    return n > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(n);
  }

  static data::User read_user(SQLite::Statement& st) {
    data::User u;
    u.id = st.getColumn(0).getString();
    u.attributes = detail::decode_attributes(st.getColumn(1).getString(), "user attributes");
    return u;
  }

  static data::Item read_item(SQLite::Statement& st) {
    data::Item item;
    item.domain = st.getColumn(0).getString();
    item.id = st.getColumn(1).getString();
    item.title = st.getColumn(2).getString();
    item.year = st.getColumn(3).getInt();
    item.categories = detail::decode_categories(st.getColumn(4).getString());
    item.text = detail::decode_attributes(st.getColumn(5).getString(), "item text");
    return item;
  }

  static std::vector<StoredInteraction> read_interactions(SQLite::Statement& st) {
    std::vector<StoredInteraction> out;
    while (st.executeStep()) {
      StoredInteraction i;
      i.user_id = st.getColumn(0).getString();
      i.item_id = st.getColumn(1).getString();
      i.domain = st.getColumn(2).getString();
      if (!st.getColumn(3).isNull()) i.rating = static_cast<float>(st.getColumn(3).getDouble());
      i.kind = st.getColumn(4).getString();
      i.timestamp = st.getColumn(5).getInt64();
      out.push_back(std::move(i));
    }
    return out;
  }

  static Conversation read_conversation(SQLite::Statement& st) {
    Conversation c;
    c.id = st.getColumn(0).getString();
    c.user_id = st.getColumn(1).getString();
    c.state_json = st.getColumn(2).getString();
    c.created_at = st.getColumn(3).getInt64();
    c.updated_at = st.getColumn(4).getInt64();
    return c;
  }

  std::string path_;
  std::mutex mutex_;
  SQLite::Database db_;
};

}  // namespace

std::unique_ptr<Store> open_sqlite_store(const std::string& path, std::int64_t max_bytes) {
  auto store = std::make_unique<SqliteStore>(path, max_bytes);
  store->migrate();
  return store;
}

}  // namespace chatrec::store
