// `--llm openai:URL1,URL2`: a pool of real HTTP servers on loopback. One dies: its requests fail
// over to the other, its circuit opens, the health check's GET /v1/models keeps it out until it is
// back.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <thread>

#include "llm/factory.h"
#include "llm/mock_model.h"
#include "llm/openai/openai_client.h"
#include "llm/openai/openai_server.h"
#include "llm/pool.h"

namespace chatrec::llm::openai {
namespace {

std::shared_ptr<MockModel> answering(const std::string& reply) {
  auto mock = std::make_shared<MockModel>();
  mock->set_responder(
      [reply](const std::vector<Message>&, const GenerationOptions&) { return reply; });
  return mock;
}

// An OpenAIServer on a loopback port that can be stopped and started again on the same port.
class Restartable {
 public:
  explicit Restartable(std::string reply, int port = 0) : reply_(std::move(reply)) { start(port); }
  ~Restartable() { stop(); }
  void start(int port) {
    server_ = std::make_unique<OpenAIServer>(answering(reply_), "m");
    if (port == 0) {
      port_ = server_->bind_to_any_port("127.0.0.1");
    } else {
      server_->bind_to_port("127.0.0.1", port);
      port_ = port;
    }
    thread_ = std::thread([this] { server_->listen_after_bind(); });
  }
  void stop() {
    if (!server_) return;
    server_->stop();
    thread_.join();
    server_.reset();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  std::string reply_;
  std::unique_ptr<OpenAIServer> server_;
  std::thread thread_;
  int port_ = 0;
};

const std::vector<Message> kAsk = {{"user", "hi"}};

TEST(OpenAIPool, TheSpecOpensAPoolThatSpreadsRequestsOverItsServers) {
  Restartable a("from a"), b("from b");
  auto model = open_language_model("openai:" + a.url() + "," + b.url());
  auto* pool = dynamic_cast<LanguageModelPool*>(model.get());
  ASSERT_NE(pool, nullptr) << model->name();
  std::set<std::string> answers;
  for (int i = 0; i < 4; ++i) answers.insert(model->chat(kAsk, {}).text);
  EXPECT_EQ(answers, (std::set<std::string>{"from a", "from b"}));
  EXPECT_EQ(pool->stats()[0].requests, 2);
  EXPECT_EQ(pool->stats()[1].requests, 2);
  EXPECT_THROW(open_language_model("openai:" + a.url() + ","), LlmError);
}

TEST(OpenAIPool, ADeadServerIsFailedOverHeldOutAndTakenBackWhenItAnswers) {
  Restartable a("from a"), b("from b");
  std::vector<std::unique_ptr<LanguageModel>> backends;
  for (const std::string& url : {a.url(), b.url()}) {
    OpenAIConfig config;
    config.base_url = url;
    config.max_retries = 0;
    config.timeout_seconds = 10;
    backends.push_back(open_openai_model(config));
  }
  LanguageModelPool pool(
      std::move(backends),
      PoolOptions{.failure_threshold = 1, .open_seconds = 60, .health_interval_seconds = 0});
  const int port = a.port();
  a.stop();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(pool.chat(kAsk, {}).text, "from b");
  std::vector<BackendStats> stats = pool.stats();
  EXPECT_EQ(stats[0].failures, 1);  // refused once, then held out
  EXPECT_EQ(stats[0].failovers, 1);
  EXPECT_FALSE(stats[0].available);
  EXPECT_EQ(stats[1].requests, 4);

  pool.check_health();  // connection refused: still out
  EXPECT_FALSE(pool.stats()[0].available);
  a.start(port);
  pool.check_health();  // GET /v1/models answers
  EXPECT_TRUE(pool.stats()[0].available);
  std::set<std::string> answers;
  for (int i = 0; i < 2; ++i) answers.insert(pool.chat(kAsk, {}).text);
  EXPECT_EQ(answers, (std::set<std::string>{"from a", "from b"}));
}

}  // namespace
}  // namespace chatrec::llm::openai
