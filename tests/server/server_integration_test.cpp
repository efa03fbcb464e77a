// The real thing: `chatrec serve` as a child process (killed with SIGKILL between writes and
// reads), and a streamed chat turn with the built-in SmolLM2 model.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <set>

#include "data/loaders.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "recommend/registry.h"
#include "server_fixture.h"

namespace chatrec::server::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A `chatrec serve --port 0` child; its port is read from the "serving http://HOST:PORT/" line.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) {
    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv;
      static std::string binary = CHATREC_BINARY;
      argv.push_back(binary.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    stdout_ = out[0];
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_ >= 0) close(stdout_);
  }

  // Reads the child's stdout until the URL line; 0 when it exits or `timeout` passes first.
  int wait_for_port(std::chrono::seconds timeout) {
    std::string seen;
    auto deadline = Clock::now() + timeout;
    std::regex url(R"(serving http://[0-9.]+:([0-9]+)/)");
    while (Clock::now() < deadline) {
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, 200) > 0) {
        char buf[4096];
        ssize_t n = read(stdout_, buf, sizeof buf);
        if (n <= 0) return 0;
        seen.append(buf, static_cast<std::size_t>(n));
        std::smatch m;
        if (std::regex_search(seen, m, url)) return std::stoi(m[1]);
      }
    }
    return 0;
  }

  void kill_hard() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // SIGTERM, then the exit status (-1 when it had to be killed).
  int terminate() {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill_hard();
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
};

std::vector<std::string> serve_args(const std::string& db) {
  return {"serve",
          "--data-dir",
          chatrec::testing::data_dir().string(),
          "--store",
          "sqlite:" + db,
          "--llm",
          "mock",
          "--domains",
          "movies",
          "--movies-model",
          "popularity",
          "--port",
          "0"};
}

TEST(ServeProcessTest, AcknowledgedRatingsSurviveKill9) {
  if (!std::filesystem::exists(chatrec::testing::ml100k_dir() / "u.data"))
    GTEST_SKIP() << "no ml-100k";
  chatrec::testing::TempDir dir;
  std::string db = (dir.path() / "chatrec.db").string();

  std::size_t imported_user1 = 0;
  std::vector<json> written;
  {
    ServeProcess serve(serve_args(db));
    int port = serve.wait_for_port(std::chrono::seconds(180));
    ASSERT_GT(port, 0) << "chatrec serve did not start";
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30, 0);
    auto before = c.Get("/api/users/1/interactions");
    ASSERT_TRUE(before);
    ASSERT_EQ(before->status, 200);
    imported_user1 = body_json(before)["interactions"].size();
    EXPECT_GT(imported_user1, 200u);  // user 1's ml-100k ratings

    for (int i = 0; i < 25; ++i) {
      json rating{{"user_id", "1"},
                  {"domain", "movies"},
                  {"item_id", std::to_string(1000 + i)},
                  {"rating", 1 + i % 5},
                  {"timestamp", 2000000000 + i}};
      auto r = c.Post("/api/interactions", rating.dump(), "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 201) << r->body;  // acknowledged: durable from here on
      written.push_back(rating);
    }
    serve.kill_hard();
  }

  ServeProcess serve(serve_args(db));
  int port = serve.wait_for_port(std::chrono::seconds(180));
  ASSERT_GT(port, 0) << "chatrec serve did not restart";
  httplib::Client c("127.0.0.1", port);
  auto after = c.Get("/api/users/1/interactions");
  ASSERT_TRUE(after);
  ASSERT_EQ(after->status, 200);
  json list = body_json(after)["interactions"];
  // Every acknowledged rating is there, and the restart did not import ml-100k a second time.
  EXPECT_EQ(list.size(), imported_user1 + written.size());
  std::set<std::pair<std::string, std::int64_t>> present;
  for (const auto& x : list)
    present.insert({x["item_id"].get<std::string>(), x["timestamp"].get<std::int64_t>()});
  for (const auto& w : written) {
    EXPECT_TRUE(
        present.count({w["item_id"].get<std::string>(), w["timestamp"].get<std::int64_t>()}))
        << w.dump();
  }
  EXPECT_EQ(serve.terminate(), 0);
}

TEST(BuiltinModelServer, StreamedTurnReturnsCards) {
  auto model_path = chatrec::testing::real_model_path();
  if (!model_path) GTEST_SKIP() << "SmolLM2 model file absent (scripts/fetch-model.sh)";
  if (!std::filesystem::exists(chatrec::testing::ml100k_dir() / "u.data"))
    GTEST_SKIP() << "no ml-100k";

  chatrec::testing::TempDir dir;
  auto st =
      std::shared_ptr<store::Store>(store::open_store("sqlite:" + (dir.path() / "db").string()));
  data::Dataset ds = data::load_movielens_100k(chatrec::testing::ml100k_dir());
  import_dataset(*st, ds, "movies");
  auto catalog = std::make_shared<chat::Catalog>();
  recommend::FitOptions fit;
  fit.progress = false;
  catalog->add_domain("movies", std::move(ds), recommend::make_recommender("ease"), fit, true);
  std::shared_ptr<llm::LanguageModel> lm =
      llm::open_language_model("builtin:" + model_path->string());
  chat::EngineOptions options;
  options.max_reply_tokens = 48;
  auto engine = std::make_shared<chat::ChatEngine>(catalog, lm, st, options);
  ServerConfig config;
  config.port = 0;
  config.domains = {"movies"};
  Server server(config, engine, st);
  int port = server.start();

  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(300, 0);
  auto created = c.Post("/api/conversations", json{{"user_id", "1"}}.dump(), "application/json");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201);
  std::string id = body_json(created)["id"];

  httplib::Request req;
  req.method = "POST";
  req.path = "/api/conversations/" + id + "/messages";
  req.set_header("Accept", "text/event-stream");
  req.set_header("Content-Type", "application/json");
  req.body = json{{"text", "Recommend me a good comedy movie"}}.dump();
  std::string body;
  auto start = Clock::now();
  double first_token_s = -1;
  req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
    if (first_token_s < 0 &&
        std::string_view(data, n).find("event: token") != std::string_view::npos) {
      first_token_s = std::chrono::duration<double>(Clock::now() - start).count();
    }
    body.append(data, n);
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  ASSERT_TRUE(c.send(req, res, error)) << httplib::to_string(error);
  double total_s = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_EQ(res.status, 200);
  auto events = parse_sse(body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().first, "done") << body;
  json done = events.back().second;
  ASSERT_GE(done["recommendations"].size(), 1u) << body;
  for (const auto& rec : done["recommendations"]) {
    EXPECT_TRUE(rec["item_id"].is_string());
    EXPECT_FALSE(rec["title"].get<std::string>().empty());
    EXPECT_TRUE(rec["score"].is_number());
  }
  bool has_token = false;
  for (const auto& e : events) has_token = has_token || e.first == "token";
  EXPECT_TRUE(has_token);
  std::cout << "built-in model turn: first token " << first_token_s << " s, total " << total_s
            << " s, degraded " << done["degraded"] << "\n";
  server.stop();
}

}  // namespace
}  // namespace chatrec::server::testing
