// The store contract on SQLite (temp file), plus URL parsing and SQLite-only checks.
#include <SQLiteCpp/SQLiteCpp.h>

#include <optional>
#include <set>

#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"
#include "store_contract.h"
#include "testing/test_env.h"

namespace chatrec::store::testing {

struct SqliteEngine {
  chatrec::testing::TempDir dir;
  bool available(std::string*) { return true; }
  std::unique_ptr<Store> open() {
    return open_store("sqlite:" + (dir.path() / "store.db").string());
  }
};

using Engines = ::testing::Types<SqliteEngine>;
INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StoreContract, Engines);

namespace {

std::string error_of(const std::string& url) {
  try {
    open_store(url);
  } catch (const StoreError& e) {
    return e.what();
  }
  return "";
}

TEST(OpenStore, PlainPathAndSqlitePrefixOpenTheSameFile) {
  chatrec::testing::TempDir dir;
  const auto path = (dir.path() / "plain.db").string();
  open_store(path)->upsert_user({"u", {{"k", "v"}}});
  auto again = open_store("sqlite:" + path)->get_user("u");
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->attributes.at("k"), "v");
  EXPECT_TRUE(open_store("sqlite://" + path)->get_user("u").has_value());
}

TEST(OpenStore, BadUrlsGiveClearErrors) {
  EXPECT_NE(error_of("").find("empty store URL"), std::string::npos);
  EXPECT_NE(error_of("sqlite:").find("empty SQLite path"), std::string::npos);
  EXPECT_NE(error_of("mysql://user@host/db").find("unsupported store URL"), std::string::npos);
  const auto missing_dir = error_of("sqlite:/nonexistent-dir-for-chatrec/x.db");
  EXPECT_NE(missing_dir.find("/nonexistent-dir-for-chatrec/x.db"), std::string::npos)
      << missing_dir;
}

TEST(OpenStore, PostgresConnectionFailureNamesTheServerButNotThePassword) {
  // Port 1 on loopback refuses at once: no server needed.
  const auto error = error_of("postgresql://someone:s3cret@127.0.0.1:1/chatrec?connect_timeout=2");
  EXPECT_NE(error.find("cannot connect to PostgreSQL"), std::string::npos) << error;
  EXPECT_NE(error.find("127.0.0.1:1"), std::string::npos) << error;
  EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
  const auto keywords =
      error_of("host=127.0.0.1 port=1 dbname=chatrec password=s3cret connect_timeout=2");
  EXPECT_NE(keywords.find("cannot connect to PostgreSQL"), std::string::npos) << keywords;
  EXPECT_EQ(keywords.find("s3cret"), std::string::npos) << keywords;
}

TEST(OpenStore, MasksPasswordsInEveryUrlForm) {
  EXPECT_EQ(mask_password("postgresql://bob:pa:ss@db.example:5432/chatrec?sslmode=require"),
            "postgresql://bob:***@db.example:5432/chatrec?sslmode=require");
  EXPECT_EQ(mask_password("postgres://bob@db/chatrec"), "postgres://bob@db/chatrec");
  EXPECT_EQ(mask_password("postgresql://db/chatrec?user=bob&password=pw&sslmode=disable"),
            "postgresql://db/chatrec?user=bob&password=***&sslmode=disable");
  EXPECT_EQ(mask_password("host=db password = 'with space' dbname=x"),
            "host=db password = *** dbname=x");
  EXPECT_EQ(mask_password("host=db password=pw"), "host=db password=***");
}

TEST(SqliteStore, UsesWalFullSyncAndForeignKeys) {
  chatrec::testing::TempDir dir;
  const auto path = (dir.path() / "pragmas.db").string();
  auto store = open_store(path);
  SQLite::Database raw(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(raw.execAndGet("PRAGMA journal_mode").getString(), "wal");
  // Per-connection settings can't be read from another connection; check what they protect instead:
  // the conversations -> users foreign key is declared and the schema is versioned.
  EXPECT_EQ(
      raw.execAndGet("SELECT COUNT(*) FROM pragma_foreign_key_list('conversations')").getInt(), 1);
  EXPECT_EQ(raw.execAndGet("SELECT MAX(version) FROM schema_migrations").getInt(),
            latest_schema_version());
}

TEST(SqliteStore, RefusesADatabaseFromANewerBuild) {
  chatrec::testing::TempDir dir;
  const auto path = (dir.path() / "newer.db").string();
  open_store(path);
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec(
        "INSERT INTO schema_migrations (version, description, applied_at) VALUES (999, 'future', "
        "0)");
  }
  const auto error = error_of(path);
  EXPECT_NE(error.find("schema version 999"), std::string::npos) << error;
}

// Schema 3: a store imported before it holds the Amazon Games log under bare user ids, so games
// user "196" read as the deployment's user "196". Migrating moves exactly the imported rows (views
// at sequence positions) into the "games:" namespace; live interactions stay where they are.
TEST(SqliteStore, MigrationMovesImportedGameLogsIntoTheirNamespace) {
  chatrec::testing::TempDir dir;
  const auto path = (dir.path() / "old.db").string();
  open_store(path);
  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    raw.exec("DELETE FROM schema_migrations WHERE version >= 3");
    raw.exec(
        "INSERT INTO interactions (user_id, domain, item_id, rating, kind, ts) VALUES "
        "('196', 'games', '10', NULL, 'view', 0), ('196', 'games', '11', NULL, 'view', 1), "
        "('196', 'games', '12', NULL, 'like', 1764000000), "
        "('196', 'games', '13', NULL, 'view', 1764000001), "
        "('196', 'movies', '242', 3, 'rating', 881250949), "
        "('games:5', 'games', '14', NULL, 'view', 0)");
  }
  auto store = open_store(path);
  EXPECT_EQ(store->schema_version(), latest_schema_version());
  std::set<std::string> own;
  for (const auto& x : store->interactions_of("196")) own.insert(x.domain + "/" + x.item_id);
  EXPECT_EQ(own, (std::set<std::string>{"games/12", "games/13", "movies/242"}));
  EXPECT_EQ(store->interactions_of("games:196").size(), 2u);
  EXPECT_EQ(store->interactions_of("games:5").size(), 1u);  // already namespaced: untouched
  EXPECT_TRUE(store->interactions_of("games:games:5").empty());
}

TEST(SqliteStore, FailureInsideTheTransactionRollsBackTheWholeTurn) {
  // A payload nested deeper than SQLite's JSON limit passes our JSON check but fails the column's
  // CHECK(json_valid()) at the second insert, after the state update and the first message.
  chatrec::testing::TempDir dir;
  auto store = open_store((dir.path() / "rollback.db").string());
  store->upsert_user({"u", {}});
  const auto conversation = store->create_conversation("u");
  std::string deep(5000, '[');
  deep.append(5000, ']');
  StoredMessage first{0, "user", "question", "", 0};
  StoredMessage second{0, "assistant", "answer", deep, 0};
  EXPECT_THROW(store->append_turn(conversation.id, {first, second}, R"({"v":2})"), StoreError);
  EXPECT_EQ(store->get_conversation(conversation.id)->state_json, "{}");
  EXPECT_TRUE(store->messages(conversation.id).empty());
  // The store is still usable afterwards.
  store->append_turn(conversation.id, {first}, R"({"v":3})");
  EXPECT_EQ(store->messages(conversation.id).size(), 1u);
}

TEST(SqliteStore, ASizeLimitRefusesGrowthAsUnavailableAndKeepsWhatIsStored) {
  chatrec::testing::TempDir dir;
  const std::string path = (dir.path() / "quota.db").string();
  EXPECT_NE(error_of("sqlite:" + path + "?max_size_mb=0").find("max_size_mb"), std::string::npos);
  EXPECT_NE(error_of("sqlite:" + path + "?max_size_mb=lots").find("max_size_mb"),
            std::string::npos);
  auto store = open_store("sqlite:" + path + "?max_size_mb=0.25");
  store->upsert_user({"u", {}});
  const auto conversation = store->create_conversation("u");
  const std::string text(4000, 'y');
  std::size_t stored = 0;
  std::optional<StoreError> full;
  for (int i = 0; i < 200 && !full; ++i) {
    try {
      store->append_turn(conversation.id, {{0, "user", text, "{}", 0}}, "{}");
      ++stored;
    } catch (const StoreError& e) {
      full = e;
    }
  }
  ASSERT_TRUE(full) << "the limit was never reached";
  EXPECT_TRUE(full->unavailable());
  EXPECT_NE(full->reason().find("full"), std::string::npos) << full->what();
  EXPECT_EQ(full->reason().find(path), std::string::npos);  // a cause for clients, no file name
  EXPECT_NE(std::string(full->what()).find(path), std::string::npos);  // the log has it
  EXPECT_GT(stored, 5u);
  EXPECT_EQ(store->messages(conversation.id).size(), stored);
  // Reads go on; without the limit the same file grows again.
  EXPECT_TRUE(store->get_user("u").has_value());
  store.reset();
  auto roomy = open_store("sqlite:" + path);
  roomy->append_turn(conversation.id, {{0, "user", text, "{}", 0}}, "{}");
  EXPECT_EQ(roomy->messages(conversation.id).size(), stored + 1);
}

TEST(SqliteStore, OtherFailuresAreNotUnavailable) {
  chatrec::testing::TempDir dir;
  auto store = open_store((dir.path() / "plain.db").string());
  try {
    store->create_conversation("nobody");
    FAIL() << "a conversation of an unknown user was created";
  } catch (const StoreError& e) {
    EXPECT_FALSE(e.unavailable()) << e.what();
  }
}

TEST(RandomId, Is128BitsOfLowercaseHexAndDoesNotRepeat) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = random_id();
    ASSERT_EQ(id.size(), 32u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace chatrec::store::testing
