// LanguageModelPool: routing by requests in flight, failover by error kind, the circuit breaker,
// the health check, and failover of streams only before their first text.
#include "llm/pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "llm/mock_model.h"

namespace chatrec::llm {
namespace {

using Kind = LlmError::Kind;

// A backend whose next calls fail as told, that can hold a call until released, and whose probe
// answers as told.
class FakeBackend : public MockModel {
 public:
  explicit FakeBackend(std::string name) : name_(std::move(name)) {
    set_responder([this](const std::vector<Message>&, const GenerationOptions&) { return name_; });
  }
  std::string name() const override { return name_; }
  Completion chat(const std::vector<Message>& messages, const GenerationOptions& options) override {
    ++calls;
    {
      std::unique_lock lock(mutex_);
      if (hold_) {
        ++held_;
        cv_.notify_all();
        cv_.wait(lock, [&] { return !hold_; });
      }
    }
    if (stream_before_failing && options.on_text) options.on_text("partial ");
    if (failures_left > 0) {
      --failures_left;
      throw LlmError(fail_kind, name_ + " failed", fail_status);
    }
    return MockModel::chat(messages, options);
  }
  void probe() override {
    ++probes;
    if (!probe_ok) throw LlmError(Kind::kTransport, name_ + " is down");
  }
  void hold() {
    std::lock_guard lock(mutex_);
    hold_ = true;
  }
  void wait_until_held() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return held_ > 0; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    hold_ = false;
    cv_.notify_all();
  }

  std::atomic<int> calls{0};
  std::atomic<int> probes{0};
  std::atomic<int> failures_left{0};
  Kind fail_kind = Kind::kTransport;
  int fail_status = 0;
  bool stream_before_failing = false;
  std::atomic<bool> probe_ok{true};

 private:
  std::string name_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool hold_ = false;
  int held_ = 0;
};

const std::vector<Message> kAsk = {{"user", "hi"}};

struct Pool {
  explicit Pool(PoolOptions options = {.health_interval_seconds = 0}) {
    auto first = std::make_unique<FakeBackend>("a");
    auto second = std::make_unique<FakeBackend>("b");
    a = first.get();
    b = second.get();
    std::vector<std::unique_ptr<LanguageModel>> backends;
    backends.push_back(std::move(first));
    backends.push_back(std::move(second));
    pool = std::make_unique<LanguageModelPool>(std::move(backends), options);
  }
  std::string ask() { return pool->chat(kAsk, GenerationOptions{}).text; }
  FakeBackend* a = nullptr;
  FakeBackend* b = nullptr;
  std::unique_ptr<LanguageModelPool> pool;
};

TEST(LanguageModelPool, SpreadsRequestsAndPrefersTheLeastBusyBackend) {
  Pool p;
  EXPECT_EQ(p.pool->name(), "pool[a,b]");
  // Idle backends take turns.
  EXPECT_EQ(p.ask(), "a");
  EXPECT_EQ(p.ask(), "b");
  EXPECT_EQ(p.ask(), "a");
  // While a request is in flight on b, new ones go to a, even when it is b's turn.
  p.b->hold();
  auto slow = std::async(std::launch::async, [&] { return p.ask(); });
  p.b->wait_until_held();
  EXPECT_EQ(p.pool->stats()[1].in_flight, 1);
  EXPECT_EQ(p.ask(), "a");
  EXPECT_EQ(p.ask(), "a");
  p.b->release();
  EXPECT_EQ(slow.get(), "b");
  const std::vector<BackendStats> stats = p.pool->stats();
  EXPECT_EQ(stats[0].requests, 4);
  EXPECT_EQ(stats[1].requests, 2);
  EXPECT_EQ(stats[0].in_flight + stats[1].in_flight, 0);
  EXPECT_EQ(stats[0].failures + stats[1].failures, 0);
}

TEST(LanguageModelPool, FailsOverOnServerTroubleButNotOnErrorsEveryServerWouldRepeat) {
  Pool p;
  p.a->failures_left = 1;  // transport failure on a: b answers the same request
  EXPECT_EQ(p.ask(), "b");
  EXPECT_EQ(p.pool->stats()[0].failures, 1);
  EXPECT_EQ(p.pool->stats()[0].failovers, 1);

  for (auto [kind, status] : {std::pair{Kind::kHttp, 503}, std::pair{Kind::kHttp, 429},
                              std::pair{Kind::kTimeout, 0}, std::pair{Kind::kBadResponse, 0}}) {
    Pool q;
    q.a->fail_kind = kind;
    q.a->fail_status = status;
    q.a->failures_left = 1;
    EXPECT_EQ(q.ask(), "b") << static_cast<int>(kind) << " " << status;
  }
  for (auto [kind, status] : {std::pair{Kind::kHttp, 400}, std::pair{Kind::kContextOverflow, 400},
                              std::pair{Kind::kUnsupported, 0}}) {
    Pool q;
    q.a->fail_kind = kind;
    q.a->fail_status = status;
    q.a->failures_left = 1;
    try {
      q.ask();
      ADD_FAILURE() << "expected the error to reach the caller";
    } catch (const LlmError& e) {
      EXPECT_EQ(e.kind(), kind);
      EXPECT_EQ(e.http_status(), status);
    }
    EXPECT_EQ(q.b->calls, 0);
  }

  // Both fail: the caller gets the last error, saying so.
  Pool both;
  both.a->failures_left = 1;
  both.b->failures_left = 1;
  try {
    both.ask();
    ADD_FAILURE() << "expected an error";
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), Kind::kTransport);
    EXPECT_NE(std::string(e.what()).find("every LLM server"), std::string::npos) << e.what();
  }
  EXPECT_EQ(both.ask(), "a");  // and the next request is served again
}

TEST(LanguageModelPool, ACircuitOpensAfterFailuresInARowAndATrialRequestClosesIt) {
  Pool p(PoolOptions{.failure_threshold = 2, .open_seconds = 1.0, .health_interval_seconds = 0});
  p.a->failures_left = 100;
  EXPECT_EQ(p.ask(), "b");  // a fails once: still in service
  EXPECT_TRUE(p.pool->stats()[0].available);
  EXPECT_EQ(p.ask(), "b");  // a, used least recently, fails again: out of service
  EXPECT_FALSE(p.pool->stats()[0].available);
  const int a_calls = p.a->calls;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(p.ask(), "b");
  EXPECT_EQ(p.a->calls, a_calls);  // not asked while out

  std::this_thread::sleep_for(std::chrono::milliseconds(1050));
  EXPECT_TRUE(p.pool->stats()[0].available);  // half-open: one trial
  EXPECT_EQ(p.ask(), "b");                    // the trial fails: out again at once
  EXPECT_EQ(p.a->calls, a_calls + 1);
  EXPECT_FALSE(p.pool->stats()[0].available);

  p.a->failures_left = 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(1050));
  std::string first = p.ask(), second = p.ask();
  EXPECT_TRUE(first == "a" || second == "a");  // the trial succeeds: back in service
  EXPECT_TRUE(p.pool->stats()[0].available);
  EXPECT_EQ(p.pool->stats()[0].failures, 3);
  EXPECT_EQ(p.a->calls, a_calls + 2);
}

TEST(LanguageModelPool, TheHealthCheckTakesABackendBackWhenItsProbeAnswers) {
  Pool p(PoolOptions{.failure_threshold = 1, .open_seconds = 60, .health_interval_seconds = 0});
  p.a->failures_left = 1;
  p.a->probe_ok = false;
  EXPECT_EQ(p.ask(), "b");
  EXPECT_FALSE(p.pool->stats()[0].available);
  p.pool->check_health();
  EXPECT_EQ(p.a->probes, 1);
  EXPECT_FALSE(p.pool->stats()[0].available);
  EXPECT_EQ(p.b->probes, 0);  // only out-of-service backends are probed
  p.a->probe_ok = true;
  p.pool->check_health();
  EXPECT_TRUE(p.pool->stats()[0].available);
  EXPECT_NO_THROW(p.pool->probe());

  // The background thread does the same on its own.
  Pool q(PoolOptions{.failure_threshold = 1, .open_seconds = 60, .health_interval_seconds = 0.05});
  q.a->failures_left = 1;
  EXPECT_EQ(q.ask(), "b");
  for (int i = 0; i < 200 && !q.pool->stats()[0].available; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(q.pool->stats()[0].available);
  EXPECT_GE(q.a->probes, 1);
}

TEST(LanguageModelPool, EveryCircuitOpenStillTriesTheBackendOutTheLongest) {
  Pool p(PoolOptions{.failure_threshold = 1, .open_seconds = 60, .health_interval_seconds = 0});
  p.a->failures_left = 1;
  p.b->failures_left = 1;
  EXPECT_THROW(p.ask(), LlmError);
  EXPECT_FALSE(p.pool->stats()[0].available);
  EXPECT_FALSE(p.pool->stats()[1].available);
  EXPECT_EQ(p.ask(), "a");  // a opened first
}

TEST(LanguageModelPool, AStreamFailsOverOnlyBeforeItsFirstText) {
  Pool p;
  p.a->failures_left = 1;
  std::string streamed;
  GenerationOptions o;
  o.on_text = [&](std::string_view s) {
    streamed += s;
    return true;
  };
  EXPECT_EQ(p.pool->chat(kAsk, o).text, "b");
  EXPECT_EQ(streamed, "b");

  Pool q;
  q.a->failures_left = 1;
  q.a->stream_before_failing = true;
  streamed.clear();
  EXPECT_THROW(q.pool->chat(kAsk, o), LlmError);
  EXPECT_EQ(streamed, "partial ");  // the caller saw text: no second answer appended to it
  EXPECT_EQ(q.b->calls, 0);
}

TEST(LanguageModelPool, ScoresAndEmbedsThroughTheSameRouting) {
  Pool p;
  const std::vector<Likelihood> scores = p.pool->loglikelihood(kAsk, {"yes", "no thanks"});
  ASSERT_EQ(scores.size(), 2u);
  EXPECT_GT(scores[0].logprob, scores[1].logprob);
  EXPECT_EQ(p.pool->embed({"x", "y"}).size(), 2u);
  EXPECT_EQ(p.pool->embedding_size(), 64);
  EXPECT_EQ(p.pool->context_size(), 8192);
  EXPECT_THROW(LanguageModelPool({}), std::invalid_argument);
}

}  // namespace
}  // namespace chatrec::llm
