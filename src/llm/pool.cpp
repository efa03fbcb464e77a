#include "llm/pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace chatrec::llm {
namespace {

using Clock = std::chrono::steady_clock;
using Kind = LlmError::Kind;

// Whether another server may succeed where this one failed.
bool worth_another_server(const LlmError& e) {
  switch (e.kind()) {
    case Kind::kTransport:
    case Kind::kTimeout:
    case Kind::kBadResponse:
    case Kind::kModel:
      return true;
    case Kind::kHttp:
      // 5xx and 429 are this server's trouble; other 4xx are the request's and repeat anywhere.
      return e.http_status() == 0 || e.http_status() == 429 || e.http_status() >= 500;
    case Kind::kUnsupported:
    case Kind::kContextOverflow:
      return false;
  }
  return false;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

struct LanguageModelPool::State {
  struct Backend {
    std::unique_ptr<LanguageModel> model;
    BackendStats stats;
    int consecutive_failures = 0;
    bool open = false;  // out of service
    Clock::time_point opened_at;
    bool trial_in_flight = false;
    std::uint64_t last_used = 0;
  };

  PoolOptions options;
  std::vector<Backend> backends;
  mutable std::mutex mutex;
  std::uint64_t clock = 0;

  std::mutex health_mutex;
  std::condition_variable health_cv;
  bool stopping = false;
  std::thread health;

  bool usable(const Backend& b, Clock::time_point now) const {
    if (!b.open) return true;
    const double out_for = std::chrono::duration<double>(now - b.opened_at).count();
    return out_for >= options.open_seconds && !b.trial_in_flight;
  }

  // The backend for the next attempt, or -1 when every one was tried. Takes its in-flight slot.
  int pick(const std::vector<bool>& tried) {
    std::lock_guard lock(mutex);
    const Clock::time_point now = Clock::now();
    int best = -1;
    for (std::size_t i = 0; i < backends.size(); ++i) {
      if (tried[i] || !usable(backends[i], now)) continue;
      const Backend& b = backends[i];
      if (best < 0) {
        best = static_cast<int>(i);
        continue;
      }
      const Backend& c = backends[static_cast<std::size_t>(best)];
      if (b.stats.in_flight < c.stats.in_flight ||
          (b.stats.in_flight == c.stats.in_flight && b.last_used < c.last_used)) {
        best = static_cast<int>(i);
      }
    }
    if (best < 0) {
      // Every untried backend is out of service: the one out the longest may be back.
      for (std::size_t i = 0; i < backends.size(); ++i) {
        if (tried[i]) continue;
        if (best < 0 || backends[i].opened_at < backends[static_cast<std::size_t>(best)].opened_at)
          best = static_cast<int>(i);
      }
    }
    if (best < 0) return -1;
    Backend& b = backends[static_cast<std::size_t>(best)];
    if (b.open) b.trial_in_flight = true;
    ++b.stats.in_flight;
    ++b.stats.requests;
    b.last_used = ++clock;
    return best;
  }

  void finish(int index, bool ok, Clock::time_point started) {
    std::lock_guard lock(mutex);
    Backend& b = backends[static_cast<std::size_t>(index)];
    --b.stats.in_flight;
    b.stats.seconds_total += seconds_since(started);
    const bool was_trial = b.trial_in_flight;
    b.trial_in_flight = false;
    if (ok) {
      if (b.open) spdlog::info("LLM server {} is back", b.model->name());
      b.consecutive_failures = 0;
      b.open = false;
      return;
    }
    ++b.stats.failures;
    ++b.consecutive_failures;
    if (was_trial || (!b.open && b.consecutive_failures >= options.failure_threshold)) {
      if (!b.open) {
        spdlog::warn("LLM server {} is out of service after {} failures in a row", b.model->name(),
                     b.consecutive_failures);
      }
      b.open = true;
      b.opened_at = Clock::now();
    }
  }

  void failed_over(int index) {
    std::lock_guard lock(mutex);
    ++backends[static_cast<std::size_t>(index)].stats.failovers;
  }

  // Runs `call` on backends in routing order until one answers. `delivered` (optional) says that
  // the caller has already seen part of the answer, which ends failover.
  template <typename F>
  auto run(F&& call, const bool* delivered = nullptr) {
    std::vector<bool> tried(backends.size(), false);
    std::optional<LlmError> last;
    int previous = -1;
    for (;;) {
      const int i = pick(tried);
      if (i < 0) break;
      if (previous >= 0) failed_over(previous);
      tried[static_cast<std::size_t>(i)] = true;
      const Clock::time_point started = Clock::now();
      try {
        auto result = call(*backends[static_cast<std::size_t>(i)].model);
        finish(i, true, started);
        return result;
      } catch (const LlmError& e) {
        finish(i, false, started);
        if (!worth_another_server(e) || (delivered && *delivered)) throw;
        spdlog::warn("LLM server {} failed ({}); trying another",
                     backends[static_cast<std::size_t>(i)].model->name(), e.what());
        last = e;
        previous = i;
      } catch (...) {
        finish(i, false, started);
        throw;
      }
    }
    throw LlmError(last->kind(),
                   "every LLM server of the pool failed; the last: " + std::string(last->what()),
                   last->http_status());
  }
};

LanguageModelPool::LanguageModelPool(std::vector<std::unique_ptr<LanguageModel>> backends,
                                     PoolOptions options)
    : state_(std::make_unique<State>()) {
  if (backends.empty()) throw std::invalid_argument("an LLM pool needs at least one backend");
  state_->options = options;
  for (auto& model : backends) {
    if (!model) throw std::invalid_argument("an LLM pool backend is null");
    State::Backend b;
    b.stats.name = model->name();
    b.model = std::move(model);
    state_->backends.push_back(std::move(b));
  }
  if (options.health_interval_seconds > 0) {
    state_->health = std::thread([this] {
      std::unique_lock lock(state_->health_mutex);
      const auto interval = std::chrono::duration<double>(state_->options.health_interval_seconds);
      while (!state_->health_cv.wait_for(lock, interval, [this] { return state_->stopping; })) {
        lock.unlock();
        check_health();
        lock.lock();
      }
    });
  }
}

LanguageModelPool::~LanguageModelPool() {
  {
    std::lock_guard lock(state_->health_mutex);
    state_->stopping = true;
  }
  state_->health_cv.notify_all();
  if (state_->health.joinable()) state_->health.join();
}

void LanguageModelPool::check_health() {
  std::vector<std::size_t> out;
  {
    std::lock_guard lock(state_->mutex);
    for (std::size_t i = 0; i < state_->backends.size(); ++i)
      if (state_->backends[i].open) out.push_back(i);
  }
  for (std::size_t i : out) {
    bool ok = true;
    try {
      state_->backends[i].model->probe();
    } catch (const std::exception&) {
      ok = false;
    }
    std::lock_guard lock(state_->mutex);
    State::Backend& b = state_->backends[i];
    if (!b.open) continue;
    if (ok) {
      spdlog::info("LLM server {} answers its health check again", b.model->name());
      b.open = false;
      b.consecutive_failures = 0;
    } else {
      b.opened_at = Clock::now();  // stays out for another open_seconds
    }
  }
}

std::string LanguageModelPool::name() const {
  std::string out = "pool[";
  for (std::size_t i = 0; i < state_->backends.size(); ++i)
    out += (i ? "," : "") + state_->backends[i].stats.name;
  return out + "]";
}

int LanguageModelPool::context_size() const {
  int n = std::numeric_limits<int>::max();
  for (const auto& b : state_->backends) n = std::min(n, b.model->context_size());
  return n;
}

int LanguageModelPool::count_tokens(std::string_view text) {
  return state_->backends.front().model->count_tokens(text);
}

Completion LanguageModelPool::chat(const std::vector<Message>& messages,
                                   const GenerationOptions& options) {
  bool delivered = false;
  GenerationOptions tracked = options;
  if (options.on_text) {
    tracked.on_text = [&](std::string_view piece) {
      delivered = true;
      return options.on_text(piece);
    };
  }
  if (options.on_logprob) {
    tracked.on_logprob = [&](const TokenLogprob& t) {
      delivered = true;
      options.on_logprob(t);
    };
  }
  return state_->run([&](LanguageModel& m) { return m.chat(messages, tracked); }, &delivered);
}

Completion LanguageModelPool::complete(std::string_view prompt, const GenerationOptions& options) {
  return state_->run([&](LanguageModel& m) { return m.complete(prompt, options); });
}

std::vector<Likelihood> LanguageModelPool::loglikelihood(
    const std::vector<Message>& messages, const std::vector<std::string>& continuations) {
  return state_->run([&](LanguageModel& m) { return m.loglikelihood(messages, continuations); });
}

std::vector<std::vector<float>> LanguageModelPool::embed(const std::vector<std::string>& texts) {
  return state_->run([&](LanguageModel& m) { return m.embed(texts); });
}

int LanguageModelPool::embedding_size() const {
  return state_->run([](LanguageModel& m) { return m.embedding_size(); });
}

Usage LanguageModelPool::total_usage() const {
  Usage u;
  for (const auto& b : state_->backends) {
    const Usage x = b.model->total_usage();
    u.prompt_tokens += x.prompt_tokens;
    u.completion_tokens += x.completion_tokens;
    u.cached_prompt_tokens += x.cached_prompt_tokens;
  }
  return u;
}

void LanguageModelPool::probe() {
  std::string failures;
  for (const auto& b : state_->backends) {
    try {
      b.model->probe();
      return;
    } catch (const std::exception& e) {
      failures += (failures.empty() ? "" : "; ") + std::string(e.what());
    }
  }
  throw LlmError(Kind::kTransport, "no LLM server of the pool answers: " + failures);
}

std::vector<BackendStats> LanguageModelPool::stats() const {
  std::lock_guard lock(state_->mutex);
  std::vector<BackendStats> out;
  const Clock::time_point now = Clock::now();
  for (const auto& b : state_->backends) {
    BackendStats s = b.stats;
    s.available = state_->usable(b, now);
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace chatrec::llm
