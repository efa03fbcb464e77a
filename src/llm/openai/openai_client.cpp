#include "llm/openai/openai_client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>

#include "llm/openai/plain_prompt.h"
#include "llm/openai/responses.h"
#include "llm/openai/sse_parser.h"

namespace chatrec::llm::openai {
namespace {

using Kind = LlmError::Kind;
// The message overload below would hide the text one from responses.h.
using openai::approx_tokens;

// Error bodies are only quoted, never parsed at length.
constexpr std::size_t kMaxErrorBody = 64 * 1024;
constexpr std::size_t kEmbeddingBatch = 64;
constexpr double kMaxRetryAfterSeconds = 60;

std::string getenv_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

void global_curl_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct HttpResult {
  long status = 0;
  std::string body;
  std::optional<double> retry_after;
};

// One HTTP exchange with libcurl. `on_data`, when set, receives the body of a 2xx response as it
// arrives (for SSE); it may throw, and returning false ends the transfer early.
class Transport {
 public:
  explicit Transport(const OpenAIConfig& config) : config_(config) { global_curl_init(); }

  HttpResult perform(const char* method, const std::string& url, const std::string* body,
                     const std::function<bool(std::string_view)>& on_data,
                     bool* stopped_early) const {
    CURL* curl = curl_easy_init();
    if (!curl) throw LlmError(Kind::kTransport, "curl_easy_init failed");
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> guard(curl, &curl_easy_cleanup);

    State state;
    state.curl = curl;
    state.on_data = &on_data;
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers,
                                on_data ? "Accept: text/event-stream" : "Accept: application/json");
    headers = curl_slist_append(headers, "Expect:");
    if (!config_.api_key.empty()) {
      headers = curl_slist_append(headers, ("Authorization: Bearer " + config_.api_key).c_str());
    }
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers,
                                                                             &curl_slist_free_all);

    auto timeout_ms = static_cast<long>(std::max(1.0, config_.timeout_seconds * 1000.0));
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, std::min(timeout_ms, 10000L));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Transport::on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &Transport::on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
    if (body) {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    } else {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }

    CURLcode rc = curl_easy_perform(curl);
    if (state.error) std::rethrow_exception(state.error);
    if (stopped_early) *stopped_early = state.stopped_early;
    HttpResult result;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && state.stopped_early)) {
      std::string what = std::string(method) + " " + url + ": ";
      if (rc == CURLE_OPERATION_TIMEDOUT) {
        throw LlmError(Kind::kTimeout,
                       what + "timed out after " + std::to_string(config_.timeout_seconds) + " s");
      }
      throw LlmError(Kind::kTransport, what + curl_easy_strerror(rc));
    }
    result.body = std::move(state.body);
    result.retry_after = state.retry_after;
    return result;
  }

 private:
  struct State {
    CURL* curl = nullptr;
    const std::function<bool(std::string_view)>* on_data = nullptr;
    std::string body;
    std::optional<double> retry_after;
    bool stopped_early = false;
    std::exception_ptr error;
  };

  static size_t on_write(char* data, size_t size, size_t count, void* user) {
    auto* state = static_cast<State*>(user);
    size_t n = size * count;
    long status = 0;
    curl_easy_getinfo(state->curl, CURLINFO_RESPONSE_CODE, &status);
    if (*state->on_data && status >= 200 && status < 300) {
      try {
        if (!(*state->on_data)(std::string_view(data, n))) {
          state->stopped_early = true;
          return 0;
        }
      } catch (...) {
        // Exceptions must not unwind through libcurl's C frames.
        state->error = std::current_exception();
        return 0;
      }
      return n;
    }
    if (state->body.size() < kMaxErrorBody || (status >= 200 && status < 300))
      state->body.append(data, n);
    return n;
  }

  static size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto* state = static_cast<State*>(user);
    size_t n = size * count;
    std::string_view line(data, n);
    constexpr std::string_view kRetryAfter = "retry-after:";
    if (line.size() > kRetryAfter.size()) {
      bool match = true;
      for (size_t i = 0; i < kRetryAfter.size() && match; ++i) {
        match = std::tolower(static_cast<unsigned char>(line[i])) == kRetryAfter[i];
      }
      if (match) {
        // Only the delay-seconds form; an HTTP date falls back to the exponential backoff.
        std::string value(line.substr(kRetryAfter.size()));
        char* end = nullptr;
        double seconds = std::strtod(value.c_str(), &end);
        if (end != value.c_str() && std::isfinite(seconds) && seconds >= 0)
          state->retry_after = seconds;
      }
    }
    return n;
  }

  const OpenAIConfig& config_;
};

std::string normalize_for_match(std::string_view s) {
  std::string out;
  bool space = false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(static_cast<char>(std::tolower(c)));
  }
  auto strip = [](unsigned char c) { return std::ispunct(c) || std::isspace(c); };
  size_t b = 0, e = out.size();
  while (b < e && strip(static_cast<unsigned char>(out[b]))) ++b;
  while (e > b && strip(static_cast<unsigned char>(out[e - 1]))) --e;
  return out.substr(b, e - b);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

json messages_json(const std::vector<Message>& messages) {
  json out = json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

int approx_tokens(const std::vector<Message>& messages) {
  int n = 0;
  for (const auto& m : messages) n += approx_tokens(m.content) + 4;  // role markers
  return n;
}

class OpenAIModel final : public LanguageModel {
 public:
  explicit OpenAIModel(OpenAIConfig config)
      : config_(std::move(config)),
        base_(normalize_base_url(config_.base_url)),
        transport_(config_) {}

  std::string name() const override {
    std::string model = config_.model;
    if (model.empty()) {
      try {
        model = server_info().model;
      } catch (const LlmError&) {
        model = "auto";
      }
    }
    return "openai:" + base_ + ":" + model;
  }
  int context_size() const override { return config_.context_size; }
  int count_tokens(std::string_view text) override { return approx_tokens(text); }

  Completion chat(const std::vector<Message>& messages, const GenerationOptions& options) override {
    if (!options.choices.empty()) return choose(messages, options);
    json request = {{"model", model_id()},
                    {"messages", messages_json(messages)},
                    {"max_tokens", options.max_tokens},
                    {"temperature", options.temperature},
                    {"top_p", options.top_p},
                    {"seed", static_cast<std::int64_t>(options.seed & 0x7fffffffffffffffULL)}};
    if (!options.stop.empty()) request["stop"] = options.stop;
    if (options.top_k > 0)
      request["top_k"] = options.top_k;  // not OpenAI, but vLLM and llama.cpp take it
    if (options.json_object) request["response_format"] = {{"type", "json_object"}};
    if (options.logprobs >= 0) {
      request["logprobs"] = true;
      request["top_logprobs"] = std::min(options.logprobs, 20);
    }
    Completion out =
        options.on_text ? chat_streamed(request, messages, options) : chat_plain(request);
    if (!options.on_text && options.on_logprob) {
      for (const TokenLogprob& t : out.logprobs) options.on_logprob(t);
    }
    add_usage(out.usage);
    return out;
  }

  // POST /v1/completions with the prompt as it is (the legacy API every OpenAI-compatible server
  // keeps for base models). Not streamed: on_text gets the whole text once.
  Completion complete(std::string_view prompt, const GenerationOptions& options) override {
    if (!options.choices.empty())
      throw LlmError(Kind::kUnsupported, "constrained choices need a chat, not a text prompt");
    json request = {{"model", model_id()},
                    {"prompt", std::string(prompt)},
                    {"max_tokens", options.max_tokens},
                    {"temperature", options.temperature},
                    {"top_p", options.top_p},
                    {"seed", static_cast<std::int64_t>(options.seed & 0x7fffffffffffffffULL)}};
    if (!options.stop.empty()) request["stop"] = options.stop;
    if (options.top_k > 0) request["top_k"] = options.top_k;
    if (options.logprobs >= 0) request["logprobs"] = std::min(options.logprobs, 5);
    const std::string url = base_ + "/completions";
    const json response =
        parse_json_object(request_with_retries("POST", url, dump(request), {}).body, url);
    if (!response.contains("choices") || !response["choices"].is_array() ||
        response["choices"].empty() || !response["choices"][0].is_object()) {
      throw LlmError(Kind::kBadResponse, url + ": response has no choices");
    }
    const json& choice = response["choices"][0];
    if (!choice.contains("text") || !choice["text"].is_string())
      throw LlmError(Kind::kBadResponse, url + ": choice has no text");
    Completion out;
    out.text = choice["text"].get<std::string>();
    out.finish_reason = finish_reason(choice);
    append_legacy_logprobs(choice, out.logprobs);
    const json usage = response.value("usage", json());
    out.usage.prompt_tokens = usage_field(usage, "prompt_tokens");
    out.usage.completion_tokens = usage_field(usage, "completion_tokens");
    if (out.usage.prompt_tokens < 0) out.usage.prompt_tokens = approx_tokens(prompt);
    if (out.usage.completion_tokens < 0) out.usage.completion_tokens = approx_tokens(out.text);
    if (options.on_text && !out.text.empty()) options.on_text(out.text);
    if (options.on_logprob)
      for (const TokenLogprob& t : out.logprobs) options.on_logprob(t);
    add_usage(out.usage);
    return out;
  }

  std::vector<Likelihood> loglikelihood(const std::vector<Message>& messages,
                                        const std::vector<std::string>& continuations) override {
    if (continuations.empty()) return {};
    std::vector<Likelihood> out = server_info().chatrec
                                      ? loglikelihood_extension(messages, continuations)
                                      : loglikelihood_echo(messages, continuations);
    Usage usage;
    for (const auto& c : continuations)
      usage.prompt_tokens += approx_tokens(messages) + approx_tokens(c);
    add_usage(usage);
    return out;
  }

  // GET /v1/models once, without retries: a pool asks often and decides itself what to retry.
  void probe() override {
    const std::string url = base_ + "/models";
    HttpResult r = transport_.perform("GET", url, nullptr, {}, nullptr);
    if (r.status < 200 || r.status >= 300) {
      throw LlmError(
          Kind::kHttp,
          "GET " + url + ": HTTP " + std::to_string(r.status) + ": " + server_message(r.body),
          r.status);
    }
  }

  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) override {
    std::vector<std::vector<float>> out;
    out.reserve(texts.size());
    for (size_t begin = 0; begin < texts.size(); begin += kEmbeddingBatch) {
      size_t end = std::min(texts.size(), begin + kEmbeddingBatch);
      json input = json::array();
      // OpenAI rejects empty strings; a space embeds as "nothing" just as well.
      for (size_t i = begin; i < end; ++i)
        input.push_back(texts[i].empty() ? std::string(" ") : texts[i]);
      json request = {{"model", model_id()}, {"input", input}};
      const std::string url = base_ + "/embeddings";
      json response =
          parse_json_object(request_with_retries("POST", url, dump(request), {}).body, url);
      auto batch = parse_embeddings(response, end - begin, url);
      for (auto& v : batch) out.push_back(std::move(v));
      Usage usage;
      std::int64_t prompt = usage_field(response.value("usage", json()), "prompt_tokens");
      if (prompt < 0) {
        prompt = 0;
        for (size_t i = begin; i < end; ++i) prompt += approx_tokens(texts[i]);
      }
      usage.prompt_tokens = prompt;
      add_usage(usage);
    }
    if (!out.empty()) embedding_size_ = static_cast<int>(out.front().size());
    return out;
  }

  int embedding_size() const override {
    if (embedding_size_ == 0) {
      // The only way to learn the size is to ask; the probe result is not worth caching beyond the
      // size.
      const_cast<OpenAIModel*>(this)->embed({"probe"});
    }
    return embedding_size_;
  }

  Usage total_usage() const override {
    std::lock_guard lock(mutex_);
    return usage_;
  }

 private:
  struct ServerInfo {
    std::string model;
    bool chatrec = false;
  };

  // GET /v1/models once: the default model and whether the server speaks the chatrec scoring
  // extension. Transport failures are not cached (the next call asks again); HTTP errors mean "no
  // listing".
  const ServerInfo& server_info() const {
    std::lock_guard lock(info_mutex_);
    if (info_) return *info_;
    ServerInfo info;
    info.model = config_.model;
    const std::string url = base_ + "/models";
    try {
      HttpResult r = request_with_retries("GET", url, std::nullopt, {});
      json j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j.contains("data") && j["data"].is_array()) {
        for (const json& m : j["data"]) {
          if (!m.is_object()) continue;
          if (info.model.empty() && m.contains("id") && m["id"].is_string()) info.model = m["id"];
          if (m.contains("owned_by") && m["owned_by"] == "chatrec") info.chatrec = true;
        }
      }
    } catch (const LlmError& e) {
      if (e.kind() != Kind::kHttp) throw;
      spdlog::debug("{}: no model listing ({}); using defaults", url, e.what());
    }
    if (info.model.empty()) info.model = "default";
    info_ = info;
    return *info_;
  }

  std::string model_id() const {
    return config_.model.empty() ? server_info().model : config_.model;
  }

  void add_usage(const Usage& u) {
    std::lock_guard lock(mutex_);
    usage_.prompt_tokens += u.prompt_tokens;
    usage_.completion_tokens += u.completion_tokens;
    usage_.cached_prompt_tokens += u.cached_prompt_tokens;
  }

  double backoff_seconds(int attempt, std::optional<double> retry_after) const {
    if (retry_after) return std::min(*retry_after, kMaxRetryAfterSeconds);
    thread_local std::mt19937_64 rng{std::random_device{}()};
    double delay = config_.backoff_initial_seconds * std::pow(2.0, attempt);
    std::uniform_real_distribution<double> jitter(0.0, 0.25 * delay);
    return delay + jitter(rng);
  }

  // Sends the request, retrying 429, 5xx and transport failures (never once streamed text has been
  // delivered). Returns 2xx results, and 4xx results when `return_client_errors`; throws otherwise.
  HttpResult request_with_retries(const char* method, const std::string& url,
                                  std::optional<std::string> body,
                                  const std::function<bool(std::string_view)>& on_data,
                                  bool return_client_errors = false,
                                  bool* stopped_early = nullptr) const {
    for (int attempt = 0;; ++attempt) {
      bool delivered = false;
      std::function<bool(std::string_view)> tracked;
      if (on_data) {
        tracked = [&](std::string_view d) {
          delivered = true;
          return on_data(d);
        };
      }
      bool may_retry = attempt < config_.max_retries;
      HttpResult r;
      try {
        r = transport_.perform(method, url, body ? &*body : nullptr, tracked, stopped_early);
      } catch (const LlmError& e) {
        if (e.kind() == Kind::kTransport && may_retry && !delivered) {
          double wait = backoff_seconds(attempt, std::nullopt);
          spdlog::warn("{} (retrying in {:.2f} s)", e.what(), wait);
          std::this_thread::sleep_for(std::chrono::duration<double>(wait));
          continue;
        }
        throw;
      }
      if (r.status >= 200 && r.status < 300) return r;
      std::string what = std::string(method) + " " + url + ": HTTP " + std::to_string(r.status) +
                         ": " + server_message(r.body);
      if (r.status == 429 || r.status >= 500) {
        if (may_retry && !delivered) {
          double wait = backoff_seconds(attempt, r.retry_after);
          spdlog::warn("{} (retrying in {:.2f} s)", what, wait);
          std::this_thread::sleep_for(std::chrono::duration<double>(wait));
          continue;
        }
        throw LlmError(Kind::kHttp, what + " (after " + std::to_string(attempt + 1) + " attempts)",
                       r.status);
      }
      if (r.status >= 400 && return_client_errors) return r;
      if (r.status == 400 && is_context_overflow(r.body))
        throw LlmError(Kind::kContextOverflow, what, r.status);
      throw LlmError(Kind::kHttp, what, r.status);
    }
  }

  Completion chat_plain(const json& request) {
    const std::string url = base_ + "/chat/completions";
    return completion_from(
        parse_json_object(request_with_retries("POST", url, dump(request), {}).body, url), request,
        url);
  }

  // The completions API's logprobs ({"tokens", "token_logprobs", "top_logprobs": [{token:
  // logprob}]}); entries without a number are skipped.
  static void append_legacy_logprobs(const json& choice, std::vector<TokenLogprob>& out) {
    if (!choice.contains("logprobs") || !choice["logprobs"].is_object()) return;
    const json& lp = choice["logprobs"];
    const json tokens = lp.value("tokens", json());
    const json values = lp.value("token_logprobs", json());
    const json top = lp.value("top_logprobs", json());
    if (!tokens.is_array() || !values.is_array()) return;
    for (std::size_t i = 0; i < tokens.size() && i < values.size(); ++i) {
      if (!tokens[i].is_string() || !values[i].is_number()) continue;
      TokenLogprob t{tokens[i].get<std::string>(), values[i].get<double>(), {}};
      if (top.is_array() && i < top.size() && top[i].is_object()) {
        for (const auto& [token, value] : top[i].items())
          if (value.is_number()) t.top.emplace_back(token, value.get<double>());
        std::sort(t.top.begin(), t.top.end(),
                  [](const auto& a, const auto& b) { return a.second > b.second; });
      }
      out.push_back(std::move(t));
    }
  }

  Completion chat_streamed(json request, const std::vector<Message>& messages,
                           const GenerationOptions& options) {
    request["stream"] = true;
    const std::string url = base_ + "/chat/completions";
    Completion out;
    std::int64_t pieces = 0;
    json usage;
    bool caller_stopped = false;
    std::optional<std::string> finish;
    SseParser parser([&](const json& event) {
      if (event.contains("usage") && event["usage"].is_object()) usage = event["usage"];
      if (!event.contains("choices") || !event["choices"].is_array() || event["choices"].empty())
        return true;
      const json& choice = event["choices"][0];
      if (!choice.is_object()) throw LlmError(Kind::kBadResponse, url + ": malformed stream chunk");
      if (choice.contains("finish_reason") && choice["finish_reason"].is_string())
        finish = finish_reason(choice);
      append_logprobs(choice, out.logprobs, &options);
      if (!choice.contains("delta") || !choice["delta"].is_object()) return true;
      const json& content = choice["delta"].value("content", json());
      if (!content.is_string()) return true;
      const std::string& piece = content.get_ref<const std::string&>();
      if (piece.empty()) return true;
      out.text += piece;
      ++pieces;
      if (!options.on_text(piece)) {
        caller_stopped = true;
        return false;
      }
      return true;
    });
    bool stopped_early = false;
    request_with_retries(
        "POST", url, dump(request), [&](std::string_view d) { return parser.feed(d); }, false,
        &stopped_early);
    if (!parser.saw_events() && !parser.done()) {
      // A server that ignores "stream" answers with a plain completion.
      json plain = json::parse(parser.raw(), nullptr, false);
      if (plain.is_object() && plain.contains("choices")) {
        Completion c = completion_from(plain, request, url);
        if (!c.text.empty()) options.on_text(c.text);
        return c;
      }
      throw LlmError(Kind::kBadResponse,
                     url + ": event stream has no events: " + parser.raw().substr(0, 200));
    }
    if (!caller_stopped && !parser.done() && !finish) {
      throw LlmError(Kind::kBadResponse, url + ": event stream ended before [DONE]");
    }
    out.finish_reason = caller_stopped ? "stop" : finish.value_or("stop");
    out.usage.prompt_tokens = usage_field(usage, "prompt_tokens");
    out.usage.completion_tokens = usage_field(usage, "completion_tokens");
    if (out.usage.prompt_tokens < 0) out.usage.prompt_tokens = approx_tokens(messages);
    // Servers send about one token per chunk.
    if (out.usage.completion_tokens < 0) out.usage.completion_tokens = pieces;
    return out;
  }

  Completion choose(const std::vector<Message>& messages, const GenerationOptions& options) {
    Completion out;
    out.finish_reason = "choice";
    if (!scoring_unsupported_) {
      try {
        std::vector<Likelihood> scores = loglikelihood(messages, options.choices);
        size_t best = 0;
        for (size_t i = 1; i < scores.size(); ++i) {
          if (scores[i].logprob > scores[best].logprob) best = i;
        }
        out.text = options.choices[best];
        out.usage.prompt_tokens = approx_tokens(messages);
        if (options.on_text) options.on_text(out.text);
        return out;
      } catch (const LlmError& e) {
        if (e.kind() != Kind::kUnsupported) throw;
        scoring_unsupported_ = true;
        spdlog::info("{}; choosing by generating and matching instead", e.what());
      }
    }
    GenerationOptions free = options;
    free.choices.clear();
    free.on_text = nullptr;
    int longest = 0;
    for (const auto& c : options.choices) longest = std::max(longest, approx_tokens(c));
    free.max_tokens = std::min(options.max_tokens, longest + 32);
    Completion generated = chat(messages, free);
    out.text = closest_choice(generated.text, options.choices);
    if (options.on_text) options.on_text(out.text);
    return out;  // usage already counted by chat()
  }

  std::vector<Likelihood> loglikelihood_extension(const std::vector<Message>& messages,
                                                  const std::vector<std::string>& continuations) {
    const std::string url = base_ + "/completions";
    json request = {{"model", model_id()},
                    {"chatrec_messages", messages_json(messages)},
                    {"chatrec_continuations", continuations}};
    json response =
        parse_json_object(request_with_retries("POST", url, dump(request), {}).body, url);
    return parse_chatrec_likelihoods(response, continuations.size(), url);
  }

  std::vector<Likelihood> loglikelihood_echo(const std::vector<Message>& messages,
                                             const std::vector<std::string>& continuations) {
    const std::string url = base_ + "/completions";
    const std::string prefix = render_plain_prompt(messages);
    const size_t prefix_chars = utf8_length(prefix);
    std::vector<Likelihood> out;
    for (const auto& continuation : continuations) {
      if (continuation.empty()) {
        out.push_back({0.0, 0});
        continue;
      }
      json request = {{"model", model_id()}, {"prompt", prefix + " " + continuation},
                      {"max_tokens", 0},     {"echo", true},
                      {"logprobs", 1},       {"temperature", 0}};
      HttpResult r =
          request_with_retries("POST", url, dump(request), {}, /*return_client_errors=*/true);
      if (r.status >= 400) {
        if (r.status == 401 || r.status == 403) {
          throw LlmError(Kind::kHttp, "POST " + url + ": HTTP " + std::to_string(r.status) + ": " +
                                          server_message(r.body));
        }
        throw LlmError(Kind::kUnsupported,
                       "server at " + base_ +
                           " cannot score text (POST /v1/completions with echo and "
                           "logprobs failed: HTTP " +
                           std::to_string(r.status) + ": " + server_message(r.body) + ")");
      }
      out.push_back(sum_continuation(parse_json_object(r.body, url), prefix_chars, url, base_));
    }
    return out;
  }

  OpenAIConfig config_;
  std::string base_;
  Transport transport_;
  mutable std::mutex info_mutex_;
  mutable std::optional<ServerInfo> info_;
  mutable std::mutex mutex_;
  Usage usage_;
  std::atomic<int> embedding_size_{0};
  std::atomic<bool> scoring_unsupported_{false};
};

}  // namespace

OpenAIConfig OpenAIConfig::from_env(const std::string& base_url) {
  OpenAIConfig config;
  config.base_url = base_url;
  config.model = getenv_or("CHATREC_OPENAI_MODEL", "");
  config.api_key = getenv_or("CHATREC_OPENAI_API_KEY", getenv_or("OPENAI_API_KEY", ""));
  return config;
}

std::string normalize_base_url(const std::string& base_url) {
  std::string url(base_url);
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back()))) url.pop_back();
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.empty()) throw LlmError(Kind::kUnsupported, "OpenAI-compatible backend needs a base URL");
  if (url.find("://") == std::string::npos) url = "http://" + url;
  if (url.size() < 3 || url.compare(url.size() - 3, 3, "/v1") != 0) url += "/v1";
  return url;
}

std::unique_ptr<LanguageModel> open_openai_model(const OpenAIConfig& config) {
  return std::make_unique<OpenAIModel>(config);
}

std::string closest_choice(std::string_view answer, const std::vector<std::string>& choices) {
  if (choices.empty())
    throw LlmError(Kind::kUnsupported, "closest_choice needs at least one choice");
  const std::string said = normalize_for_match(answer);
  std::vector<std::string> normalized;
  for (const auto& c : choices) normalized.push_back(normalize_for_match(c));
  for (size_t i = 0; i < choices.size(); ++i) {
    if (normalized[i] == said) return choices[i];
  }
  // Mentioned in the answer: the earliest mention wins, and the longer choice on a tie ("New York
  // City" over "New York").
  size_t best = choices.size();
  size_t best_pos = std::string::npos;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (normalized[i].empty()) continue;
    size_t pos = said.find(normalized[i]);
    if (pos == std::string::npos) continue;
    if (best == choices.size() || pos < best_pos ||
        (pos == best_pos && normalized[i].size() > normalized[best].size())) {
      best = i;
      best_pos = pos;
    }
  }
  if (best != choices.size()) return choices[best];
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (size_t i = 0; i < choices.size(); ++i) {
    size_t d = edit_distance(said.substr(0, 4 * normalized[i].size() + 16), normalized[i]);
    if (d < best_distance) {
      best_distance = d;
      best = i;
    }
  }
  return choices[best];
}

}  // namespace chatrec::llm::openai
