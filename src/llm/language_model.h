#pragma once
// The one interface every LLM backend implements: chatrec's built-in GGUF runtime, any
// OpenAI-compatible endpoint, and the scripted mock used by parsing/prompting unit tests.
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace chatrec::llm {

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// One generated token and how likely the model found it and its best alternatives. Bytes, not
// characters: a token can hold part of a UTF-8 sequence.
struct TokenLogprob {
  std::string token;
  double logprob = 0.0;
  std::vector<std::pair<std::string, double>> top;  // most likely first
};

struct GenerationOptions {
  int max_tokens = 256;
  float temperature = 0.0f;  // 0 = greedy
  float top_p = 1.0f;
  int top_k = 0;  // 0 = no top-k cut
  std::uint64_t seed = 2023;
  std::vector<std::string> stop;
  // Streaming: called with each new piece of text; return false to stop early.
  std::function<bool(std::string_view)> on_text;
  // Constrained decoding: when non-empty the output is exactly one of these strings. The built-in
  // runtime enforces it with a token trie; remote backends pick the most likely choice by
  // log-likelihood.
  std::vector<std::string> choices;
  // Constrained decoding: when true the output is one JSON object (OpenAI's response_format
  // json_object); a reply cut short by max_tokens is the only way it can be incomplete.
  bool json_object = false;
  // -1: no log-probabilities. k >= 0: each generated token's log-probability under the model and
  // its k most likely alternatives (OpenAI's logprobs / top_logprobs; at most 20).
  int logprobs = -1;
  // Called with each generated token's log-probabilities as soon as it is sampled, before its text
  // reaches on_text (streaming servers attach them to the next chunk).
  std::function<void(const TokenLogprob&)> on_logprob;
};

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  // Prompt tokens whose keys/values were already cached (OpenAI's
  // prompt_tokens_details.cached_tokens); included in prompt_tokens.
  std::int64_t cached_prompt_tokens = 0;
};

struct Completion {
  std::string text;
  std::string finish_reason;  // "stop", "length", "choice"
  Usage usage;
  // Filled when GenerationOptions::logprobs >= 0, one entry per token of `text` (a stop sequence
  // cuts the tokens that start after it).
  std::vector<TokenLogprob> logprobs;
};

// Log-probability of one continuation after a prompt: the sum over its tokens, and how many tokens
// it has (so callers can length-normalise).
struct Likelihood {
  double logprob = 0.0;
  int tokens = 0;
};

// Why a backend call failed. Callers degrade to the classic ranking and record the kind.
class LlmError : public std::runtime_error {
 public:
  enum class Kind {
    kTimeout,
    kTransport,
    kHttp,
    kBadResponse,
    kUnsupported,
    kContextOverflow,
    kModel
  };
  LlmError(Kind kind, const std::string& message, int http_status = 0)
      : std::runtime_error(message), kind_(kind), http_status_(http_status) {}
  Kind kind() const { return kind_; }
  // The server's HTTP status for kHttp (and kContextOverflow) errors from HTTP backends; else 0.
  int http_status() const { return http_status_; }

 private:
  Kind kind_;
  int http_status_ = 0;
};
const char* to_string(LlmError::Kind kind);

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;

  virtual std::string name() const = 0;
  virtual int context_size() const = 0;
  virtual int count_tokens(std::string_view text) = 0;

  // Chat completion with the model's own chat template.
  virtual Completion chat(const std::vector<Message>& messages,
                          const GenerationOptions& options) = 0;

  // Continues `prompt` as plain text, without the chat template: what a base model is trained
  // for, and what the completions API means. Backends that cannot throw LlmError kUnsupported.
  virtual Completion complete(std::string_view prompt, const GenerationOptions& options);

  // log p(continuation | prompt) for each continuation, where the prompt is `messages` rendered
  // with the chat template and an open assistant turn, and the continuation is the start of the
  // assistant's reply.
  virtual std::vector<Likelihood> loglikelihood(const std::vector<Message>& messages,
                                                const std::vector<std::string>& continuations) = 0;

  // One L2-normalised vector per text.
  virtual std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) = 0;
  virtual int embedding_size() const = 0;

  // Tokens used since construction (both directions), for reports and metrics.
  virtual Usage total_usage() const = 0;

  // A cheap request that throws LlmError when the backend cannot answer now (a pool's health
  // check). In-process backends have nothing to check.
  virtual void probe() {}
};

}  // namespace chatrec::llm
