#include "llm/openai/openai_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/text.h"
#include "llm/openai/plain_prompt.h"

namespace chatrec::llm::openai {
namespace {

using json = nlohmann::json;
using Kind = LlmError::Kind;

constexpr int kDefaultMaxTokens = 512;
constexpr int kDefaultCompletionTokens = 16;  // OpenAI's default for /v1/completions
constexpr std::int64_t kMaxChoices = 16;      // `n` per request
// Echo scoring splits the continuation into at most this many word pieces (one model call each).
constexpr std::size_t kMaxScoredPieces = 64;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A request the client got wrong: becomes a 400 (or the given status) with an OpenAI error body.
struct RequestError : std::runtime_error {
  RequestError(int status, const std::string& message, std::string param = "",
               std::string code = "")
      : std::runtime_error(message),
        status(status),
        param(std::move(param)),
        code(std::move(code)) {}
  int status;
  std::string param;
  std::string code;
};

const char* error_type(int status) {
  if (status == 401 || status == 403) return "authentication_error";
  if (status == 404) return "not_found_error";
  if (status == 413 || (status >= 400 && status < 500)) return "invalid_request_error";
  return "server_error";
}

json error_body(int status, const std::string& message, const std::string& param = "",
                const std::string& code = "") {
  json e = {
      {"message", message}, {"type", error_type(status)}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return {{"error", e}};
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param = "", const std::string& code = "") {
  send_json(res, status, error_body(status, message, param, code));
}

int status_for(Kind kind) {
  switch (kind) {
    case Kind::kContextOverflow:
      return 400;
    case Kind::kUnsupported:
      return 501;
    case Kind::kTimeout:
      return 504;
    default:
      return 500;
  }
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kTimeout:
      return "timeout";
    case Kind::kTransport:
      return "transport";
    case Kind::kHttp:
      return "http";
    case Kind::kBadResponse:
      return "bad_response";
    case Kind::kUnsupported:
      return "unsupported";
    case Kind::kContextOverflow:
      return "context_length_exceeded";
    case Kind::kModel:
      return "model";
  }
  return "unknown";
}

json parse_body(const httplib::Request& req) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) throw RequestError(400, "request body is not valid JSON");
  if (!body.is_object()) throw RequestError(400, "request body must be a JSON object");
  return body;
}

// The field when present and not null.
const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<std::int64_t> int_field(const json& body, const char* key, std::int64_t min,
                                      std::int64_t max) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer())
    throw RequestError(400, std::string("'") + key + "' must be an integer", key);
  if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    throw RequestError(400, std::string("'") + key + "' is too large", key);
  }
  std::int64_t x = v->get<std::int64_t>();
  if (x < min || x > max) {
    throw RequestError(400,
                       std::string("'") + key + "' must be between " + std::to_string(min) +
                           " and " + std::to_string(max),
                       key);
  }
  return x;
}

std::optional<double> number_field(const json& body, const char* key, double min, double max) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw RequestError(400, std::string("'") + key + "' must be a number", key);
  double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    throw RequestError(400, std::string("'") + key + "' is out of range", key);
  }
  return x;
}

bool bool_field(const json& body, const char* key, bool fallback) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_boolean())
    throw RequestError(400, std::string("'") + key + "' must be a boolean", key);
  return v->get<bool>();
}

std::vector<std::string> string_list(const json& value, const char* key, std::size_t max_items,
                                     bool allow_single) {
  std::vector<std::string> out;
  if (allow_single && value.is_string()) {
    out.push_back(value.get<std::string>());
    return out;
  }
  if (!value.is_array())
    throw RequestError(400, std::string("'") + key + "' must be an array of strings", key);
  if (value.size() > max_items) {
    throw RequestError(
        400, std::string("'") + key + "' has more than " + std::to_string(max_items) + " items",
        key);
  }
  for (const json& item : value) {
    if (!item.is_string())
      throw RequestError(400, std::string("'") + key + "' must contain only strings", key);
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::vector<Message> parse_messages(const json& value, const char* key) {
  if (!value.is_array() || value.empty()) {
    throw RequestError(400, std::string("'") + key + "' must be a non-empty array of messages",
                       key);
  }
  std::vector<Message> out;
  for (const json& m : value) {
    if (!m.is_object()) throw RequestError(400, "each message must be an object", key);
    const json* role = field(m, "role");
    if (!role || !role->is_string())
      throw RequestError(400, "each message needs a string 'role'", key);
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";
    if (r != "system" && r != "user" && r != "assistant") {
      throw RequestError(
          400, "unsupported message role '" + r + "' (use system, user or assistant)", key);
    }
    std::string content;
    if (const json* c = field(m, "content")) {
      if (c->is_string()) {
        content = c->get<std::string>();
      } else if (c->is_array()) {
        for (const json& part : *c) {
          if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
              !part["text"].is_string()) {
            throw RequestError(400, "only text content parts are supported", key);
          }
          content += part["text"].get<std::string>();
        }
      } else {
        throw RequestError(400, "message 'content' must be a string or an array of text parts",
                           key);
      }
    }
    out.push_back({std::move(r), std::move(content)});
  }
  return out;
}

std::vector<std::string> parse_stop(const json& body) {
  const json* stop = field(body, "stop");
  if (!stop) return {};
  std::vector<std::string> out = string_list(*stop, "stop", 16, true);
  for (const auto& s : out) {
    if (s.empty()) throw RequestError(400, "'stop' strings must not be empty", "stop");
  }
  return out;
}

std::string openai_finish_reason(const std::string& reason) {
  return reason == "length" ? "length" : "stop";
}

}  // namespace

struct OpenAIServer::Impl {
  Impl(std::vector<ServedModel> models, OpenAIServerOptions o)
      : served(std::move(models)), options(o) {
    if (served.empty()) throw std::invalid_argument("OpenAIServer needs a model");
    for (const ServedModel& m : served)
      if (!m.model) throw std::invalid_argument("OpenAIServer needs a model for " + m.name);
    setup();
  }

  std::vector<ServedModel> served;
  OpenAIServerOptions options;

  // The model a request names; without a name, the first one. An unknown name is 404
  // model_not_found listing the served names, as the OpenAI API answers.
  const ServedModel& resolve(const json& body) const {
    const json* m = field(body, "model");
    if (!m || (m->is_string() && m->get<std::string>().empty())) return served.front();
    if (!m->is_string()) throw RequestError(400, "'model' must be a string", "model");
    std::string names;
    for (const ServedModel& s : served) {
      if (s.name == m->get<std::string>()) return s;
      names += (names.empty() ? "" : ", ") + s.name;
    }
    throw RequestError(
        404, "model '" + m->get<std::string>() + "' is not served here (served: " + names + ")",
        "model", "model_not_found");
  }
  httplib::Server server;
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> listening{false};

  std::string new_id(const char* prefix) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s-%012llx", prefix,
                  static_cast<unsigned long long>(next_id++));
    return buf;
  }

  static std::int64_t now() { return static_cast<std::int64_t>(std::time(nullptr)); }

  // Runs a handler body, turning every failure into an OpenAI error response.
  template <typename F>
  void guarded(httplib::Response& res, F&& body) {
    try {
      body();
    } catch (const RequestError& e) {
      send_error(res, e.status, e.what(), e.param, e.code);
    } catch (const LlmError& e) {
      send_error(res, status_for(e.kind()), e.what(), "", kind_name(e.kind()));
    } catch (const std::exception& e) {
      send_error(res, 500, std::string("internal error: ") + e.what());
    } catch (...) {
      send_error(res, 500, "internal error");
    }
  }

  void setup() {
    if (options.threads > 0) {
      int n = options.threads;
      server.new_task_queue = [n] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
    }
    server.set_payload_max_length(options.max_body_bytes);
    server.set_read_timeout(30, 0);
    server.set_write_timeout(30, 0);
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler already wrote an OpenAI error
      if (res.status == 404) {
        send_error(res, 404, "no such endpoint: " + req.method + " " + req.path);
      } else if (res.status == 413) {
        send_error(res, 413, "request body too large");
      } else {
        send_error(res, res.status, "request failed with HTTP " + std::to_string(res.status));
      }
    });
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "internal error";
          try {
            if (ep) std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what += std::string(": ") + e.what();
          } catch (...) {
          }
          send_error(res, 500, what);
        });

    server.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] { send_json(res, 200, models()); });
    });
    server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, {{"status", "ok"}});
    });
    server.Post("/v1/chat/completions",
                [this](const httplib::Request& req, httplib::Response& res) {
                  guarded(res, [&] { chat_completions(req, res); });
                });
    server.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { completions(req, res); });
    });
    server.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { embeddings(req, res); });
    });
  }

  json models() const {
    json data = json::array();
    for (const ServedModel& s : served) {
      json entry = {{"id", s.name},
                    {"object", "model"},
                    {"created", 0},
                    {"owned_by", options.advertise_chatrec ? "chatrec" : "system"}};
      entry["meta"] = {{"n_ctx", s.model->context_size()}};
      data.push_back(std::move(entry));
    }
    return {{"object", "list"}, {"data", data}};
  }

  json usage_json(std::int64_t prompt, std::int64_t completion, std::int64_t cached = 0) const {
    json u = {{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}};
    if (cached > 0) u["prompt_tokens_details"] = {{"cached_tokens", cached}};
    return u;
  }

  static std::int64_t prompt_tokens(const ServedModel& sm, const std::vector<Message>& messages) {
    std::int64_t n = 0;
    for (const auto& m : messages) n += sm.model->count_tokens(m.content);
    return n;
  }

  GenerationOptions generation_options(const json& body, int default_max_tokens) const {
    GenerationOptions o;
    std::optional<std::int64_t> max_tokens = int_field(body, "max_completion_tokens", 0, INT32_MAX);
    if (!max_tokens) max_tokens = int_field(body, "max_tokens", 0, INT32_MAX);
    o.max_tokens = static_cast<int>(
        std::min<std::int64_t>(max_tokens.value_or(default_max_tokens), options.max_tokens_limit));
    o.temperature = static_cast<float>(number_field(body, "temperature", 0.0, 2.0).value_or(0.0));
    o.top_p = static_cast<float>(number_field(body, "top_p", 0.0, 1.0).value_or(1.0));
    if (o.top_p == 0.0f) o.temperature = 0.0f;  // only the most likely token survives
    o.top_k = static_cast<int>(int_field(body, "top_k", 0, 1 << 20).value_or(0));
    if (const json* seed = field(body, "seed")) {
      if (!seed->is_number_integer()) throw RequestError(400, "'seed' must be an integer", "seed");
      o.seed = seed->is_number_unsigned() ? seed->get<std::uint64_t>()
                                          : static_cast<std::uint64_t>(seed->get<std::int64_t>());
    }
    o.stop = parse_stop(body);
    if (const json* format = field(body, "response_format")) {
      const json* type = format->is_object() ? field(*format, "type") : nullptr;
      if (!type || !type->is_string())
        throw RequestError(400, "'response_format' must be an object with a 'type'",
                           "response_format");
      if (*type == "json_object") {
        o.json_object = true;
      } else if (*type != "text") {
        throw RequestError(400,
                           "response_format type '" + type->get<std::string>() +
                               "' is not supported (use 'text' or 'json_object')",
                           "response_format");
      }
    }
    return o;
  }

  // OpenAI's `n`: how many independent replies; each after the first samples with the next seed.
  int choice_count(const json& body) const {
    return static_cast<int>(int_field(body, "n", 1, kMaxChoices).value_or(1));
  }

  // Chat logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
  static json token_entry(const std::string& token, double logprob) {
    json bytes = json::array();
    for (char c : token) bytes.push_back(static_cast<unsigned char>(c));
    return {{"token", token}, {"logprob", logprob}, {"bytes", bytes}};
  }
  static json chat_logprobs(const std::vector<TokenLogprob>& tokens) {
    json content = json::array();
    for (const TokenLogprob& t : tokens) {
      json entry = token_entry(t.token, t.logprob);
      json top = json::array();
      for (const auto& [token, lp] : t.top) top.push_back(token_entry(token, lp));
      entry["top_logprobs"] = std::move(top);
      content.push_back(std::move(entry));
    }
    return {{"content", content}, {"refusal", nullptr}};
  }

  // The chat request's logprobs / top_logprobs as GenerationOptions::logprobs.
  static int chat_logprob_request(const json& body) {
    const bool wanted = bool_field(body, "logprobs", false);
    std::optional<std::int64_t> top = int_field(body, "top_logprobs", 0, 20);
    if (top && !wanted)
      throw RequestError(400, "'top_logprobs' requires 'logprobs' to be true", "top_logprobs");
    return wanted ? static_cast<int>(top.value_or(0)) : -1;
  }

  void chat_completions(const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req);
    const ServedModel& sm = resolve(body);
    const json* messages_value = field(body, "messages");
    if (!messages_value) throw RequestError(400, "missing required field 'messages'", "messages");
    std::vector<Message> messages = parse_messages(*messages_value, "messages");
    GenerationOptions gen = generation_options(body, kDefaultMaxTokens);
    if (const json* choices = field(body, "chatrec_choices")) {
      gen.choices = string_list(*choices, "chatrec_choices", options.max_batch, false);
    }
    gen.logprobs = chat_logprob_request(body);
    const int n = choice_count(body);
    bool stream = bool_field(body, "stream", false);
    bool include_usage = false;
    if (const json* so = field(body, "stream_options")) {
      if (!so->is_object())
        throw RequestError(400, "'stream_options' must be an object", "stream_options");
      include_usage = bool_field(*so, "include_usage", false);
    }
    const std::string id = new_id("chatcmpl");
    const std::int64_t created = now();
    if (!stream) {
      json choices = json::array();
      std::int64_t prompt = 0, completion = 0, cached = 0;
      for (int i = 0; i < n; ++i) {
        GenerationOptions g = gen;
        g.seed = gen.seed + static_cast<std::uint64_t>(i);
        Completion c = sm.model->chat(messages, g);
        if (i == 0) {
          prompt = c.usage.prompt_tokens > 0 ? c.usage.prompt_tokens : prompt_tokens(sm, messages);
          cached = c.usage.cached_prompt_tokens;
        }
        completion += c.usage.completion_tokens > 0 ? c.usage.completion_tokens
                                                    : sm.model->count_tokens(c.text);
        choices.push_back(
            {{"index", i},
             {"message", {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}}},
             {"logprobs", gen.logprobs >= 0 ? chat_logprobs(c.logprobs) : json(nullptr)},
             {"finish_reason", openai_finish_reason(c.finish_reason)}});
      }
      send_json(res, 200,
                {{"id", id},
                 {"object", "chat.completion"},
                 {"created", created},
                 {"model", sm.name},
                 {"choices", choices},
                 {"usage", usage_json(prompt, completion, cached)}});
      return;
    }
    // Everything is validated; from here on errors travel inside the event stream.
    auto model_ref = sm.model;
    std::string name = sm.name;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [model_ref, name, id, created, include_usage, n, messages = std::move(messages),
         gen = std::move(gen)](std::size_t, httplib::DataSink& sink) mutable {
          const bool with_logprobs = gen.logprobs >= 0;
          auto chunk = [&](int index, json delta, json finish, json logprobs = nullptr) {
            json c = {{"id", id},
                      {"object", "chat.completion.chunk"},
                      {"created", created},
                      {"model", name},
                      {"choices", json::array({{{"index", index},
                                                {"delta", std::move(delta)},
                                                {"logprobs", std::move(logprobs)},
                                                {"finish_reason", std::move(finish)}}})}};
            if (include_usage) c["usage"] = nullptr;  // as the API does: only the last has usage
            return c;
          };
          bool connected = true;
          auto send = [&](const json& event) {
            if (!connected) return false;
            std::string line = "data: " + dump(event) + "\n\n";
            connected = sink.write(line.data(), line.size());
            return connected;
          };
          try {
            std::int64_t prompt = 0, completion = 0;
            for (int index = 0; index < n && connected; ++index) {
              GenerationOptions g = gen;
              g.seed = gen.seed + static_cast<std::uint64_t>(index);
              send(chunk(index, {{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}},
                         nullptr));
              std::string pending;  // an incomplete UTF-8 sequence waits for the rest of its bytes
              std::vector<TokenLogprob> pending_logprobs;  // sampled, their text not sent yet
              std::int64_t pieces = 0;
              auto logprobs_json = [&]() -> json {
                if (!with_logprobs) return nullptr;
                json out = chat_logprobs(pending_logprobs);
                pending_logprobs.clear();
                return out;
              };
              if (with_logprobs) {
                g.on_logprob = [&](const TokenLogprob& t) { pending_logprobs.push_back(t); };
              }
              g.on_text = [&](std::string_view piece) {
                pending.append(piece);
                std::size_t ready = utf8_complete_prefix(pending);
                if (ready == 0) return connected;
                ++pieces;
                bool ok = send(chunk(index, {{"content", pending.substr(0, ready)}}, nullptr,
                                     logprobs_json()));
                pending.erase(0, ready);
                return ok;
              };
              Completion c = model_ref->chat(messages, g);
              if (!pending.empty() || !pending_logprobs.empty())
                send(chunk(index, {{"content", pending}}, nullptr, logprobs_json()));
              send(chunk(index, json::object(), openai_finish_reason(c.finish_reason)));
              if (index == 0) {
                prompt = c.usage.prompt_tokens;
                if (prompt <= 0) {
                  prompt = 0;
                  for (const auto& m : messages) prompt += model_ref->count_tokens(m.content);
                }
              }
              completion += c.usage.completion_tokens > 0 ? c.usage.completion_tokens : pieces;
            }
            if (include_usage) {
              send({{"id", id},
                    {"object", "chat.completion.chunk"},
                    {"created", created},
                    {"model", name},
                    {"choices", json::array()},
                    {"usage",
                     {{"prompt_tokens", prompt},
                      {"completion_tokens", completion},
                      {"total_tokens", prompt + completion}}}});
            }
          } catch (const LlmError& e) {
            send(error_body(status_for(e.kind()), e.what(), "", kind_name(e.kind())));
          } catch (const std::exception& e) {
            send(error_body(500, std::string("internal error: ") + e.what()));
          } catch (...) {
            send(error_body(500, "internal error"));
          }
          static constexpr std::string_view kDone = "data: [DONE]\n\n";
          if (connected) sink.write(kDone.data(), kDone.size());
          sink.done();
          return true;
        });
  }

  void completions(const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req);
    const ServedModel& sm = resolve(body);
    if (field(body, "chatrec_messages") || field(body, "chatrec_continuations")) {
      score_extension(sm, body, res);
      return;
    }
    const json* prompt_value = field(body, "prompt");
    if (!prompt_value) throw RequestError(400, "missing required field 'prompt'", "prompt");
    std::vector<std::string> prompts = string_list(*prompt_value, "prompt", 1, true);
    if (prompts.size() != 1) throw RequestError(400, "'prompt' must be one string", "prompt");
    const std::string& prompt = prompts.front();
    if (bool_field(body, "stream", false)) {
      throw RequestError(400, "streaming is only supported on /v1/chat/completions", "stream");
    }
    bool echo = bool_field(body, "echo", false);
    std::optional<std::int64_t> logprobs = int_field(body, "logprobs", 0, 20);
    GenerationOptions gen = generation_options(body, kDefaultCompletionTokens);
    if (echo && gen.max_tokens > 0) {
      throw RequestError(400, "echo is only supported with max_tokens 0 (scoring the prompt)",
                         "echo");
    }
    const int n = choice_count(body);
    if (echo && n != 1) throw RequestError(400, "echo scoring takes n = 1", "n");
    json choices = json::array();
    json usage;
    if (echo) {
      json choice = {
          {"index", 0}, {"text", prompt}, {"logprobs", nullptr}, {"finish_reason", "length"}};
      if (logprobs) choice["logprobs"] = score_prompt(sm, prompt, static_cast<int>(*logprobs));
      choices.push_back(std::move(choice));
      std::int64_t tokens = sm.model->count_tokens(prompt);
      usage = usage_json(tokens, 0);
    } else {
      // A chat in the plain rendering (chatrec's own client) is answered as that chat; any other
      // prompt is continued as text, as the completions API means and base models need.
      std::optional<PlainPrompt> parsed = parse_plain_prompt(prompt);
      std::vector<Message> messages;
      if (parsed && parsed->continuation.empty() && !parsed->messages.empty())
        messages = parsed->messages;
      gen.logprobs = logprobs ? static_cast<int>(*logprobs) : -1;
      std::int64_t p = 0, q = 0;
      for (int i = 0; i < n; ++i) {
        GenerationOptions g = gen;
        g.seed = gen.seed + static_cast<std::uint64_t>(i);
        Completion c = g.max_tokens <= 0  ? Completion{"", "length", {}, {}}
                       : messages.empty() ? sm.model->complete(prompt, g)
                                          : sm.model->chat(messages, g);
        json choice = {{"index", i},
                       {"text", c.text},
                       {"logprobs", nullptr},
                       {"finish_reason", openai_finish_reason(c.finish_reason)}};
        if (logprobs) choice["logprobs"] = completion_logprobs(c.logprobs, utf8_length(prompt));
        choices.push_back(std::move(choice));
        if (i == 0)
          p = c.usage.prompt_tokens > 0 ? c.usage.prompt_tokens
              : messages.empty()        ? sm.model->count_tokens(prompt)
                                        : prompt_tokens(sm, messages);
        q += c.usage.completion_tokens > 0 ? c.usage.completion_tokens
                                           : sm.model->count_tokens(c.text);
      }
      usage = usage_json(p, q);
    }
    send_json(res, 200,
              {{"id", new_id("cmpl")},
               {"object", "text_completion"},
               {"created", now()},
               {"model", sm.name},
               {"choices", choices},
               {"usage", usage}});
  }

  // The completions API's logprobs object for generated tokens; text_offset counts characters
  // from the start of the prompt, as OpenAI's does.
  static json completion_logprobs(const std::vector<TokenLogprob>& generated, std::size_t offset) {
    json tokens = json::array(), token_logprobs = json::array(), top = json::array(),
         text_offset = json::array();
    std::string text;
    for (const TokenLogprob& t : generated) {
      tokens.push_back(t.token);
      token_logprobs.push_back(t.logprob);
      json alternatives = json::object();
      for (const auto& [token, lp] : t.top) {
        if (!alternatives.contains(token)) alternatives[token] = lp;
      }
      top.push_back(std::move(alternatives));
      text_offset.push_back(offset + utf8_length(text));
      text += t.token;
    }
    return {{"tokens", tokens},
            {"token_logprobs", token_logprobs},
            {"top_logprobs", top},
            {"text_offset", text_offset}};
  }

  // Per-piece log-probabilities of the continuation in a plain-rendered prompt. The model only
  // scores whole continuations, so the pieces are words and each one's log-probability is the
  // difference of the cumulative scores (the chain rule); the prefix is one piece without a
  // probability, like the first token of an OpenAI echo.
  json score_prompt(const ServedModel& sm, const std::string& prompt, int top_logprobs) {
    std::optional<PlainPrompt> parsed = parse_plain_prompt(prompt);
    if (!parsed) {
      throw RequestError(
          400,
          "cannot score this prompt: chatrec scores chats rendered as 'System: ...\\n\\nUser: "
          "...\\n\\nAssistant: <continuation>' (see docs/openai.md)",
          "prompt");
    }
    // Piece boundaries (byte offsets into the prompt): each piece is leading whitespace plus a
    // word.
    std::vector<std::size_t> ends;
    std::size_t pos = parsed->prefix_bytes;
    while (pos < prompt.size()) {
      std::size_t p = pos;
      while (p < prompt.size() && std::isspace(static_cast<unsigned char>(prompt[p]))) ++p;
      while (p < prompt.size() && !std::isspace(static_cast<unsigned char>(prompt[p]))) ++p;
      ends.push_back(p);
      pos = p;
    }
    if (ends.size() > kMaxScoredPieces) {
      ends.erase(ends.begin() + static_cast<std::ptrdiff_t>(kMaxScoredPieces - 1), ends.end() - 1);
    }
    // The continuation as the model sees it starts after the separating space.
    const std::size_t continuation_start = prompt.size() - parsed->continuation.size();
    std::vector<std::string> cumulative;
    for (std::size_t end : ends) {
      cumulative.push_back(end > continuation_start
                               ? prompt.substr(continuation_start, end - continuation_start)
                               : std::string());
    }
    std::vector<Likelihood> scores;
    if (!cumulative.empty()) scores = sm.model->loglikelihood(parsed->messages, cumulative);
    if (scores.size() != cumulative.size())
      throw LlmError(Kind::kModel, "model returned the wrong number of scores");

    json tokens = json::array({prompt.substr(0, parsed->prefix_bytes)});
    json token_logprobs = json::array({nullptr});
    json text_offset = json::array({0});
    json top = json::array({nullptr});
    std::size_t start = parsed->prefix_bytes;
    double previous = 0;
    for (std::size_t i = 0; i < ends.size(); ++i) {
      std::string piece = prompt.substr(start, ends[i] - start);
      double lp = scores[i].logprob - previous;
      previous = scores[i].logprob;
      text_offset.push_back(utf8_length(std::string_view(prompt).substr(0, start)));
      tokens.push_back(piece);
      token_logprobs.push_back(lp);
      top.push_back(top_logprobs > 0 ? json{{piece, lp}} : json(nullptr));
      start = ends[i];
    }
    json out = {{"tokens", tokens},
                {"token_logprobs", token_logprobs},
                {"text_offset", text_offset},
                {"top_logprobs", top}};
    out["chatrec_continuation_tokens"] = scores.empty() ? 0 : scores.back().tokens;
    return out;
  }

  void score_extension(const ServedModel& sm, const json& body, httplib::Response& res) {
    const json* messages_value = field(body, "chatrec_messages");
    const json* continuations_value = field(body, "chatrec_continuations");
    if (!messages_value)
      throw RequestError(400, "missing required field 'chatrec_messages'", "chatrec_messages");
    if (!continuations_value) {
      throw RequestError(400, "missing required field 'chatrec_continuations'",
                         "chatrec_continuations");
    }
    std::vector<Message> messages = parse_messages(*messages_value, "chatrec_messages");
    std::vector<std::string> continuations =
        string_list(*continuations_value, "chatrec_continuations", options.max_batch, false);
    std::vector<Likelihood> scores;
    if (!continuations.empty()) scores = sm.model->loglikelihood(messages, continuations);
    if (scores.size() != continuations.size())
      throw LlmError(Kind::kModel, "model returned the wrong number of scores");
    json list = json::array();
    for (const auto& s : scores) list.push_back({{"logprob", s.logprob}, {"tokens", s.tokens}});
    std::int64_t prompt = prompt_tokens(sm, messages) *
                          static_cast<std::int64_t>(std::max<std::size_t>(1, scores.size()));
    send_json(res, 200,
              {{"id", new_id("cmpl")},
               {"object", "chatrec.loglikelihood"},
               {"created", now()},
               {"model", sm.name},
               {"chatrec_likelihoods", list},
               {"usage", usage_json(prompt, 0)}});
  }

  void embeddings(const httplib::Request& req, httplib::Response& res) {
    json body = parse_body(req);
    const ServedModel& sm = resolve(body);
    const json* input = field(body, "input");
    if (!input) throw RequestError(400, "missing required field 'input'", "input");
    if (input->is_array() && !input->empty() && (*input)[0].is_number()) {
      throw RequestError(400, "token-array inputs are not supported; send text", "input");
    }
    std::vector<std::string> texts = string_list(*input, "input", options.max_batch, true);
    if (texts.empty()) throw RequestError(400, "'input' must not be empty", "input");
    bool base64 = false;  // the official clients ask for base64 by default
    if (const json* format = field(body, "encoding_format")) {
      if (*format != "float" && *format != "base64")
        throw RequestError(400, "encoding_format must be 'float' or 'base64'", "encoding_format");
      base64 = *format == "base64";
    }
    std::vector<std::vector<float>> vectors = sm.model->embed(texts);
    if (vectors.size() != texts.size())
      throw LlmError(Kind::kModel, "model returned the wrong number of embeddings");
    json data = json::array();
    std::int64_t tokens = 0;
    for (std::size_t i = 0; i < vectors.size(); ++i) {
      json embedding = vectors[i];
      if (base64) {
        // Little-endian float32, as the API defines (and this runtime's hosts are).
        static_assert(std::endian::native == std::endian::little);
        embedding = text::base64_encode(std::string_view(
            reinterpret_cast<const char*>(vectors[i].data()), vectors[i].size() * sizeof(float)));
      }
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
      tokens += sm.model->count_tokens(texts[i]);
    }
    send_json(res, 200,
              {{"object", "list"},
               {"data", data},
               {"model", sm.name},
               {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  }
};

OpenAIServer::OpenAIServer(std::shared_ptr<LanguageModel> model, std::string model_name,
                           OpenAIServerOptions options)
    : OpenAIServer(std::vector<ServedModel>{{std::move(model_name), std::move(model)}}, options) {}

OpenAIServer::OpenAIServer(std::vector<ServedModel> models, OpenAIServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(models), options)) {}

OpenAIServer::~OpenAIServer() {
  stop();
}

void OpenAIServer::listen(const std::string& host, int port) {
  bind_to_port(host, port);
  listen_after_bind();
}

void OpenAIServer::bind_to_port(const std::string& host, int port) {
  if (!impl_->server.bind_to_port(host, port)) {
    throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
  }
}

int OpenAIServer::bind_to_any_port(const std::string& host) {
  int port = impl_->server.bind_to_any_port(host);
  if (port <= 0) throw std::runtime_error("cannot bind a port on " + host);
  return port;
}

void OpenAIServer::listen_after_bind() {
  impl_->listening = true;
  if (!impl_->stop_requested) impl_->server.listen_after_bind();
  impl_->listening = false;
}

void OpenAIServer::stop() {
  impl_->stop_requested = true;
  // httplib ignores stop() until its accept loop runs; wait for it when a listen is under way.
  while (impl_->listening && !impl_->server.is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->server.stop();
}

bool OpenAIServer::is_running() const {
  return impl_->server.is_running();
}

}  // namespace chatrec::llm::openai
