#pragma once
// Several servers of the same model behind one LanguageModel (`--llm openai:URL1,URL2,...`).
//
// - Routing: each request goes to the available backend with the fewest requests in flight (ties:
//   the one used least recently), so a slow server gets less work.
// - Failover: a request that fails for a reason another server may not share (transport, timeout,
//   HTTP 5xx/429, a malformed response) is retried on the next available backend, until every one
//   was tried. A stream fails over only before its first piece of text reached the caller. Errors
//   that every server would repeat (context overflow, unsupported, 4xx) go straight back.
// - Circuit breaker: after `failure_threshold` failures in a row a backend is out for
//   `open_seconds`; then one trial request (half-open) decides whether it is back. A background
//   health check probes out-of-service backends every `health_interval_seconds` and takes a
//   backend back as soon as its probe answers.
// - When every circuit is open, requests still go to the backend whose circuit opened first rather
//   than failing without trying: a pool never refuses while some server might answer.
// The backends must serve the same model: embeddings and likelihoods of different models do not
// mix.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "llm/language_model.h"

namespace chatrec::llm {

struct PoolOptions {
  int failure_threshold = 3;
  double open_seconds = 10.0;
  double health_interval_seconds = 2.0;  // 0: no background health check
};

struct BackendStats {
  std::string name;
  std::int64_t requests = 0;   // calls routed here
  std::int64_t failures = 0;   // calls that failed here
  std::int64_t failovers = 0;  // calls that failed here and went on to another backend
  int in_flight = 0;
  bool available = true;       // circuit closed (or half-open)
  double seconds_total = 0.0;  // time spent in calls here
};

class LanguageModelPool final : public LanguageModel {
 public:
  LanguageModelPool(std::vector<std::unique_ptr<LanguageModel>> backends, PoolOptions options = {});
  ~LanguageModelPool() override;
  LanguageModelPool(const LanguageModelPool&) = delete;
  LanguageModelPool& operator=(const LanguageModelPool&) = delete;

  std::string name() const override;
  int context_size() const override;
  int count_tokens(std::string_view text) override;
  Completion chat(const std::vector<Message>& messages, const GenerationOptions& options) override;
  Completion complete(std::string_view prompt, const GenerationOptions& options) override;
  std::vector<Likelihood> loglikelihood(const std::vector<Message>& messages,
                                        const std::vector<std::string>& continuations) override;
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) override;
  int embedding_size() const override;
  Usage total_usage() const override;
  // Throws only when no backend answers its probe.
  void probe() override;

  std::vector<BackendStats> stats() const;
  // Runs one round of the background health check now (tests; the thread calls it too).
  void check_health();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace chatrec::llm
