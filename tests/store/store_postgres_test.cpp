// The store contract on PostgreSQL, when CHATREC_PG_URL names a server (see .ci/postgres.sh). Each
// test gets a private schema (via search_path), dropped afterwards, so tests don't see each other's
// rows.
#include <chrono>
#include <cstdlib>
#include <pqxx/pqxx>

#include "store_contract.h"

namespace chatrec::store::testing {

struct PostgresEngine {
  std::string admin_url;
  std::string schema;

  bool available(std::string* why) {
    const char* url = std::getenv("CHATREC_PG_URL");
    if (url == nullptr || *url == '\0') {
      *why = "CHATREC_PG_URL is not set (eval \"$(.ci/postgres.sh start)\")";
      return false;
    }
    admin_url = url;
    // Built with append: gcc 12 reports a false -Wrestrict on `"literal" + std::string` at -O3.
    schema.assign("t_").append(random_id());
    pqxx::connection c(admin_url);
    pqxx::work tx(c);
    tx.exec(std::string("CREATE SCHEMA ").append(schema));
    tx.commit();
    return true;
  }

  std::unique_ptr<Store> open() {
    const bool is_uri = admin_url.rfind("postgres", 0) == 0;
    if (is_uri) {
      const char separator = admin_url.find('?') == std::string::npos ? '?' : '&';
      return open_store(admin_url + separator + "options=-csearch_path%3D" + schema);
    }
    return open_store(admin_url + " options='-csearch_path=" + schema + "'");
  }

  ~PostgresEngine() {
    if (schema.empty()) return;
    try {
      pqxx::connection c(admin_url);
      pqxx::work tx(c);
      tx.exec(std::string("DROP SCHEMA ").append(schema).append(" CASCADE"));
      tx.commit();
    } catch (const std::exception&) {
      // A leftover schema is harmless; the cluster is private to the test run.
    }
  }
};

using Engines = ::testing::Types<PostgresEngine>;
INSTANTIATE_TYPED_TEST_SUITE_P(Postgres, StoreContract, Engines);

}  // namespace chatrec::store::testing

namespace chatrec::store::testing {
namespace {

// Nothing listens on port 1: the store keeps trying for CHATREC_STORE_CONNECT_SECONDS, then says
// how long it tried; a URL no server could accept fails at once.
TEST(PostgresStartup, AnUnreachableServerIsRetriedThenNamedInTheError) {
  ::setenv("CHATREC_STORE_CONNECT_SECONDS", "1.5", 1);
  const auto start = std::chrono::steady_clock::now();
  try {
    open_store("postgresql://chatrec:secret@127.0.0.1:1/none?connect_timeout=2");
    ADD_FAILURE() << "expected a StoreError";
  } catch (const StoreError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot connect to PostgreSQL"), std::string::npos) << what;
    EXPECT_NE(what.find("attempts in"), std::string::npos) << what;
    EXPECT_EQ(what.find("secret"), std::string::npos) << what;  // password masked
  }
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(waited, 0.7);
  EXPECT_LT(waited, 10.0);

  ::setenv("CHATREC_STORE_CONNECT_SECONDS", "0", 1);
  try {
    open_store("postgresql://127.0.0.1:1/none");
    ADD_FAILURE() << "expected a StoreError";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()).find("attempts in"), std::string::npos) << e.what();
  }
  ::setenv("CHATREC_STORE_CONNECT_SECONDS", "soon", 1);
  EXPECT_THROW(open_store("postgresql://127.0.0.1:1/none"), StoreError);
  ::unsetenv("CHATREC_STORE_CONNECT_SECONDS");
}

}  // namespace
}  // namespace chatrec::store::testing
