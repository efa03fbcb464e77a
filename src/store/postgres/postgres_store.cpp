// PostgreSQL engine (libpqxx 6.4). A small pool of connections guarded by a mutex: each call
// borrows one, runs one transaction on it and hands it back, so concurrent HTTP handlers don't
// share a connection.
#include "store/postgres/postgres_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

#include "common/clock.h"
#include "store/internal.h"

namespace chatrec::store {
namespace {

// Idle connections kept for reuse; more are opened on demand when all are busy.
constexpr std::size_t kMaxIdleConnections = 8;
// Serialises concurrent migrate() calls across processes (an arbitrary constant, "chatrec" in
// ASCII).
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(99104097116114101)";

std::string float_text(float value) {
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;  // shortest exact form
  return std::string(buffer, end);
}

float parse_float(const pqxx::field& field) {
  const char* text = field.c_str();
  float value = 0;
  const auto [end, error] = std::from_chars(text, text + field.size(), value);
  if (error != std::errc())
    throw StoreError(std::string("stored rating is not a number: '") + text + "'");
  (void)end;
  return value;
}

class PostgresStore final : public Store {
 public:
  PostgresStore(std::string conninfo, std::string display, double wait_seconds)
      : conninfo_(std::move(conninfo)), display_(std::move(display)) {
    release(connect_at_start(wait_seconds));
  }

  void migrate() override {
    with("migrate", [&](pqxx::connection& c) {
      for (const auto& step : detail::migrations()) {
        pqxx::work tx(c);
        tx.exec(kMigrationLock);
        tx.exec(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "description TEXT NOT NULL, "
            "applied_at BIGINT NOT NULL)");
        if (version_in(tx) >= step.version) continue;
        tx.exec(step.postgres_sql);
        tx.exec_params(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)",
            step.version, std::string(step.description), clock::unix_seconds());
        tx.commit();
      }
      pqxx::read_transaction tx(c);
      const int version = version_in(tx);
      if (version > latest_schema_version()) {
        throw StoreError("database " + display_ + " has schema version " + std::to_string(version) +
                         ", newer than this build knows (" +
                         std::to_string(latest_schema_version()) + ")");
      }
    });
  }

  int schema_version() override {
    return with("schema_version", [&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      return version_in(tx);
    });
  }

  void upsert_user(const data::User& user) override {
    detail::validate(user);
    with("upsert_user", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec_params(
          "INSERT INTO users (id, attributes) VALUES ($1, $2) "
          "ON CONFLICT (id) DO UPDATE SET attributes = excluded.attributes",
          user.id, detail::encode_attributes(user.attributes));
      tx.commit();
    });
  }

  std::optional<data::User> get_user(const std::string& id) override {
    return with("get_user", [&](pqxx::connection& c) -> std::optional<data::User> {
      pqxx::read_transaction tx(c);
      const auto r = tx.exec_params("SELECT id, attributes FROM users WHERE id = $1", id);
      if (r.empty()) return std::nullopt;
      return read_user(r[0]);
    });
  }

  std::vector<data::User> list_users(std::size_t limit, std::size_t offset) override {
    return with("list_users", [&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      const auto r =
          tx.exec_params("SELECT id, attributes FROM users ORDER BY seq LIMIT $1 OFFSET $2",
                         clamp_count(limit), clamp_count(offset));
      std::vector<data::User> users;
      for (const auto& row : r) users.push_back(read_user(row));
      return users;
    });
  }

  void upsert_items(const std::vector<data::Item>& items) override {
    for (const auto& item : items) detail::validate(item);
    with("upsert_items", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      for (const auto& item : items) {
        tx.exec_params(
            "INSERT INTO items (domain, id, title, year, categories, text) VALUES ($1, $2, $3, $4, "
            "$5, $6) "
            "ON CONFLICT (domain, id) DO UPDATE SET title = excluded.title, year = excluded.year, "
            "categories = excluded.categories, text = excluded.text",
            item.domain, item.id, item.title, item.year, detail::encode_categories(item.categories),
            detail::encode_attributes(item.text));
      }
      tx.commit();
    });
  }

  std::optional<data::Item> get_item(const std::string& domain, const std::string& id) override {
    return with("get_item", [&](pqxx::connection& c) -> std::optional<data::Item> {
      pqxx::read_transaction tx(c);
      const auto r = tx.exec_params(
          "SELECT domain, id, title, year, categories, text FROM items WHERE domain = $1 AND id = "
          "$2",
          domain, id);
      if (r.empty()) return std::nullopt;
      return read_item(r[0]);
    });
  }

  std::vector<data::Item> list_items(const std::string& domain) override {
    return with("list_items", [&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      const auto r = tx.exec_params(
          "SELECT domain, id, title, year, categories, text FROM items WHERE domain = $1 ORDER BY "
          "seq",
          domain);
      std::vector<data::Item> items;
      for (const auto& row : r) items.push_back(read_item(row));
      return items;
    });
  }

  void add_interactions(const std::vector<StoredInteraction>& interactions) override {
    for (const auto& i : interactions) detail::validate(i);
    with("add_interactions", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      static const std::string sql =
          "INSERT INTO interactions (user_id, domain, item_id, rating, kind, ts) VALUES ($1, $2, "
          "$3, $4, $5, $6)";
      for (const auto& i : interactions) {
        const std::int64_t ts = i.timestamp;
        if (i.rating) {
          tx.exec_params(sql, i.user_id, i.domain, i.item_id, float_text(*i.rating), i.kind, ts);
        } else {
          tx.exec_params(sql, i.user_id, i.domain, i.item_id, nullptr, i.kind, ts);
        }
      }
      tx.commit();
    });
  }

  std::vector<StoredInteraction> interactions_of(const std::string& user_id) override {
    return with("interactions_of", [&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      return read_interactions(
          tx.exec_params("SELECT user_id, item_id, domain, rating, kind, ts FROM interactions "
                         "WHERE user_id = $1 ORDER BY ts, id",
                         user_id));
    });
  }

  std::vector<StoredInteraction> all_interactions(const std::string& domain) override {
    return with("all_interactions", [&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      return read_interactions(
          tx.exec_params("SELECT user_id, item_id, domain, rating, kind, ts FROM interactions "
                         "WHERE domain = $1 ORDER BY ts, id",
                         domain));
    });
  }

  Conversation create_conversation(const std::string& user_id) override {
    return with("create_conversation", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      if (tx.exec_params("SELECT 1 FROM users WHERE id = $1", user_id).empty()) {
        throw StoreError("create_conversation: unknown user '" + user_id + "' (upsert_user first)");
      }
      Conversation conv;
      conv.id = random_id();
      conv.user_id = user_id;
      conv.state_json = "{}";
      conv.created_at = conv.updated_at = clock::unix_seconds();
      tx.exec_params(
          "INSERT INTO conversations (id, user_id, state_json, created_at, updated_at) VALUES ($1, "
          "$2, $3, $4, $5)",
          conv.id, conv.user_id, conv.state_json, conv.created_at, conv.updated_at);
      tx.commit();
      return conv;
    });
  }

  std::optional<Conversation> get_conversation(const std::string& id) override {
    return with("get_conversation", [&](pqxx::connection& c) -> std::optional<Conversation> {
      pqxx::read_transaction tx(c);
      const auto r = tx.exec_params(
          "SELECT id, user_id, state_json, created_at, updated_at FROM conversations WHERE id = $1",
          id);
      if (r.empty()) return std::nullopt;
      return read_conversation(r[0]);
    });
  }

  std::vector<Conversation> conversations_of(const std::string& user_id) override {
    return with("conversations_of", [&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      const auto r = tx.exec_params(
          "SELECT id, user_id, state_json, created_at, updated_at FROM conversations WHERE user_id "
          "= $1 "
          "ORDER BY updated_at DESC, created_at DESC, id DESC",
          user_id);
      std::vector<Conversation> out;
      for (const auto& row : r) out.push_back(read_conversation(row));
      return out;
    });
  }

  void append_turn(const std::string& conversation_id, const std::vector<StoredMessage>& messages,
                   const std::string& new_state_json) override {
    detail::require_json(new_state_json, "conversation state_json");
    for (const auto& m : messages) detail::validate(m);
    with("append_turn", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      const auto now = clock::unix_seconds();
      const auto updated =
          tx.exec_params("UPDATE conversations SET state_json = $1, updated_at = $2 WHERE id = $3",
                         new_state_json, now, conversation_id);
      if (updated.affected_rows() == 0) {
        throw StoreError("append_turn: unknown conversation '" + conversation_id + "'");
      }
      for (const auto& m : messages) {
        tx.exec_params(
            "INSERT INTO messages (conversation_id, role, content, payload_json, created_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            conversation_id, m.role, m.content, detail::payload_or_empty_object(m.payload_json),
            m.created_at != 0 ? m.created_at : now);
      }
      tx.commit();
    });
  }

  std::vector<StoredMessage> messages(const std::string& conversation_id) override {
    return with("messages", [&](pqxx::connection& c) {
      pqxx::read_transaction tx(c);
      const auto r = tx.exec_params(
          "SELECT id, role, content, payload_json, created_at FROM messages WHERE conversation_id "
          "= $1 ORDER BY id",
          conversation_id);
      std::vector<StoredMessage> out;
      for (const auto& row : r) {
        StoredMessage m;
        m.id = row[0].as<std::int64_t>();
        m.role = row[1].as<std::string>();
        m.content = row[2].as<std::string>();
        m.payload_json = row[3].as<std::string>();
        m.created_at = row[4].as<std::int64_t>();
        out.push_back(std::move(m));
      }
      return out;
    });
  }

  std::optional<std::vector<float>> get_embedding(const std::string& model,
                                                  const std::string& text_hash) override {
    return with("get_embedding", [&](pqxx::connection& c) -> std::optional<std::vector<float>> {
      pqxx::read_transaction tx(c);
      const auto r =
          tx.exec_params("SELECT dim, vector FROM embeddings WHERE model = $1 AND text_hash = $2",
                         model, text_hash);
      if (r.empty()) return std::nullopt;
      const pqxx::binarystring bytes(r[0][1]);
      return detail::decode_vector(bytes.data(), bytes.size(), r[0][0].as<int>(),
                                   "(" + model + ", " + text_hash + ")");
    });
  }

  void put_embeddings(
      const std::string& model,
      const std::vector<std::pair<std::string, std::vector<float>>>& by_hash) override {
    detail::validate_embeddings(model, by_hash);
    with("put_embeddings", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      for (const auto& [hash, vector] : by_hash) {
        const std::string bytes = detail::encode_vector(vector);
        tx.exec_params(
            "INSERT INTO embeddings (model, text_hash, dim, vector) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (model, text_hash) DO UPDATE SET dim = excluded.dim, vector = "
            "excluded.vector",
            model, hash, static_cast<std::int64_t>(vector.size()),
            pqxx::binarystring(bytes.data(), bytes.size()));
      }
      tx.commit();
    });
  }

  void register_model(const ModelRecord& record) override {
    detail::validate(record);
    with("register_model", [&](pqxx::connection& c) {
      pqxx::work tx(c);
      tx.exec_params(
          "INSERT INTO models (name, path, params_json, dataset_checksum, created_at) VALUES ($1, "
          "$2, $3, $4, $5)",
          record.name, record.path,
          record.params_json.empty() ? std::string("{}") : record.params_json,
          record.dataset_checksum,
          record.created_at != 0 ? record.created_at : clock::unix_seconds());
      tx.commit();
    });
  }

  std::optional<ModelRecord> latest_model(const std::string& name) override {
    return with("latest_model", [&](pqxx::connection& c) -> std::optional<ModelRecord> {
      pqxx::read_transaction tx(c);
      const auto r = tx.exec_params(
          "SELECT name, path, params_json, dataset_checksum, created_at FROM models WHERE name = "
          "$1 "
          "ORDER BY created_at DESC, id DESC LIMIT 1",
          name);
      if (r.empty()) return std::nullopt;
      ModelRecord m;
      m.name = r[0][0].as<std::string>();
      m.path = r[0][1].as<std::string>();
      m.params_json = r[0][2].as<std::string>();
      m.dataset_checksum = r[0][3].as<std::string>();
      m.created_at = r[0][4].as<std::int64_t>();
      return m;
    });
  }

 private:
  std::unique_ptr<pqxx::connection> connect() {
    try {
      return std::make_unique<pqxx::connection>(conninfo_);
    } catch (const std::exception& e) {
      // At run time (the store opened at start): the server is down or restarting, which passes.
      throw StoreError("cannot connect to PostgreSQL " + display_ + ": " + e.what(),
                       StoreError::Kind::kUnavailable, "the database server cannot be reached");
    }
  }

  // A server that is briefly unreachable (starting, restarting, a network blip) is retried with
  // exponential backoff for `wait_seconds`; anything else (a bad URL, a refused login) fails at
  // once, and so does the last attempt, saying how long it tried.
  std::unique_ptr<pqxx::connection> connect_at_start(double wait_seconds) {
    const auto start = std::chrono::steady_clock::now();
    double delay = 0.25;
    for (int attempt = 1;; ++attempt) {
      try {
        return std::make_unique<pqxx::connection>(conninfo_);
      } catch (const std::exception& e) {
        const double waited =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::string why = e.what();
        if (!is_unreachable(why) || waited + delay > wait_seconds) {
          throw StoreError("cannot connect to PostgreSQL " + display_ +
                           (attempt > 1 ? " (" + std::to_string(attempt) + " attempts in " +
                                              std::to_string(static_cast<int>(waited + 0.5)) + " s)"
                                        : std::string()) +
                           ": " + trim_trailing_space(why));
        }
        spdlog::warn("PostgreSQL {} is unreachable ({}); retrying in {:.2f} s", display_,
                     trim_trailing_space(why), delay);
        std::this_thread::sleep_for(std::chrono::duration<double>(delay));
        delay = std::min(delay * 2, 4.0);
      }
    }
  }

  // libpq's words for a server that is not there (yet), as opposed to one that said no.
  static bool is_unreachable(const std::string& why) {
    for (const char* sign :
         {"Connection refused", "could not connect", "timeout expired",
          "the database system is starting up", "the database system is shutting down",
          "No route to host", "Network is unreachable", "server closed the connection"}) {
      if (why.find(sign) != std::string::npos) return true;
    }
    return false;
  }

  static std::string trim_trailing_space(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return s;
  }

  std::unique_ptr<pqxx::connection> acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    return connect();  // outside the lock: connecting is slow and must not block other callers
  }

  void release(std::unique_ptr<pqxx::connection> c) {
    if (!c || !c->is_open()) return;
    std::lock_guard lock(mutex_);
    if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
  }

  // Borrows a connection for one call. A connection that broke is dropped, not returned to the
  // pool. pqxx transactions roll back in their destructor when the body throws.
  template <typename Body>
  auto with(const char* call, Body&& body) -> decltype(body(std::declval<pqxx::connection&>())) {
    auto c = acquire();
    try {
      if constexpr (std::is_void_v<decltype(body(*c))>) {
        body(*c);
        release(std::move(c));
      } else {
        auto result = body(*c);
        release(std::move(c));
        return result;
      }
    } catch (const StoreError&) {
      release(std::move(c));
      throw;
    } catch (const pqxx::broken_connection& e) {
      throw StoreError(
          "postgres store " + display_ + ": " + call + ": connection lost: " + e.what(),
          StoreError::Kind::kUnavailable, "the connection to the database was lost");
    } catch (const pqxx::in_doubt_error& e) {
      // The commit may or may not have happened: never acknowledged, so the client retries.
      throw StoreError(
          "postgres store " + display_ + ": " + call + ": commit outcome unknown: " + e.what(),
          StoreError::Kind::kUnavailable, "the database connection broke during the commit");
    } catch (const std::exception& e) {
      release(std::move(c));
      throw StoreError("postgres store " + display_ + ": " + call + " failed: " + e.what());
    }
  }

  template <typename Tx>
  static int version_in(Tx& tx) {
    const auto exists = tx.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists[0][0].template as<bool>()) return 0;
    return tx.exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0]
        .template as<int>();
  }

  static std::int64_t clamp_count(std::size_t n) {
    return n > static_cast<std::size_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(n);
  }

  static data::User read_user(const pqxx::row& row) {
    data::User u;
    u.id = row[0].as<std::string>();
    u.attributes = detail::decode_attributes(row[1].as<std::string>(), "user attributes");
    return u;
  }

  static data::Item read_item(const pqxx::row& row) {
    data::Item item;
    item.domain = row[0].as<std::string>();
    item.id = row[1].as<std::string>();
    item.title = row[2].as<std::string>();
    item.year = row[3].as<int>();
    item.categories = detail::decode_categories(row[4].as<std::string>());
    item.text = detail::decode_attributes(row[5].as<std::string>(), "item text");
    return item;
  }

  static std::vector<StoredInteraction> read_interactions(const pqxx::result& r) {
    std::vector<StoredInteraction> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      StoredInteraction i;
      i.user_id = row[0].as<std::string>();
      i.item_id = row[1].as<std::string>();
      i.domain = row[2].as<std::string>();
      if (!row[3].is_null()) i.rating = parse_float(row[3]);
      i.kind = row[4].as<std::string>();
      i.timestamp = row[5].as<std::int64_t>();
      out.push_back(std::move(i));
    }
    return out;
  }

  static Conversation read_conversation(const pqxx::row& row) {
    Conversation c;
    c.id = row[0].as<std::string>();
    c.user_id = row[1].as<std::string>();
    c.state_json = row[2].as<std::string>();
    c.created_at = row[3].as<std::int64_t>();
    c.updated_at = row[4].as<std::int64_t>();
    return c;
  }

  std::string conninfo_;
  std::string display_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
};

}  // namespace

std::unique_ptr<Store> open_postgres_store(const std::string& conninfo, const std::string& display,
                                           double wait_seconds) {
  auto store = std::make_unique<PostgresStore>(conninfo, display, wait_seconds);
  store->migrate();
  return store;
}

}  // namespace chatrec::store
