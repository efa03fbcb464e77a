#include "llm/openai/responses.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "llm/openai/plain_prompt.h"

namespace chatrec::llm::openai {

using Kind = LlmError::Kind;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The server's own words for an error: OpenAI's {"error":{"message"}}, the common variants, or the
// raw body.
std::string server_message(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("error")) {
      const json& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"];
      if (e.is_string()) return e.get<std::string>();
    }
    for (const char* key : {"message", "detail"}) {
      if (j.contains(key) && j[key].is_string()) return j[key];
    }
  }
  std::string text = body.substr(0, 300);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text.empty() ? "(empty body)" : text;
}

bool is_context_overflow(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const json& e = j["error"];
    if (e.contains("code") && e["code"].is_string() && e["code"] == "context_length_exceeded")
      return true;
  }
  return false;
}

int approx_tokens(std::string_view text) {
  return static_cast<int>((text.size() + 3) / 4);
}

std::int64_t usage_field(const json& usage, const char* key) {
  if (usage.is_object() && usage.contains(key) && usage[key].is_number_integer()) {
    return usage[key].get<std::int64_t>();
  }
  return -1;
}

json parse_json_object(const std::string& body, const std::string& url) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw LlmError(Kind::kBadResponse,
                   url + ": response is not a JSON object: " + body.substr(0, 200));
  }
  return j;
}

std::string finish_reason(const json& choice) {
  if (choice.contains("finish_reason") && choice["finish_reason"] == "length") return "length";
  return "stop";
}

// A choice's chat logprobs ({"content": [{"token", "logprob", "bytes", "top_logprobs"}]}); the
// exact bytes come from "bytes" when the server sends them. Servers without logprobs add none.
void append_logprobs(const json& choice, std::vector<TokenLogprob>& out,
                     const GenerationOptions* options) {
  if (!choice.contains("logprobs") || !choice["logprobs"].is_object()) return;
  const json& content = choice["logprobs"].value("content", json());
  if (!content.is_array()) return;
  auto token_of = [](const json& entry) {
    if (entry.contains("bytes") && entry["bytes"].is_array()) {
      std::string bytes;
      for (const json& b : entry["bytes"])
        if (b.is_number_integer()) bytes.push_back(static_cast<char>(b.get<int>()));
      return bytes;
    }
    return entry.value("token", std::string());
  };
  for (const json& entry : content) {
    if (!entry.is_object() || !entry.contains("logprob") || !entry["logprob"].is_number()) continue;
    TokenLogprob t{token_of(entry), entry["logprob"].get<double>(), {}};
    if (entry.contains("top_logprobs") && entry["top_logprobs"].is_array()) {
      for (const json& alt : entry["top_logprobs"]) {
        if (alt.is_object() && alt.contains("logprob") && alt["logprob"].is_number())
          t.top.emplace_back(token_of(alt), alt["logprob"].get<double>());
      }
    }
    if (options && options->on_logprob) options->on_logprob(t);
    out.push_back(std::move(t));
  }
}

Completion completion_from(const json& response, const json& request, const std::string& url) {
  if (!response.contains("choices") || !response["choices"].is_array() ||
      response["choices"].empty() || !response["choices"][0].is_object()) {
    throw LlmError(Kind::kBadResponse, url + ": response has no choices");
  }
  const json& choice = response["choices"][0];
  if (!choice.contains("message") || !choice["message"].is_object()) {
    throw LlmError(Kind::kBadResponse, url + ": choice has no message");
  }
  Completion out;
  const json content = choice["message"].value("content", json());
  if (content.is_string()) {
    out.text = content.get<std::string>();
  } else if (!content.is_null()) {
    throw LlmError(Kind::kBadResponse, url + ": message content is not a string");
  }
  out.finish_reason = finish_reason(choice);
  append_logprobs(choice, out.logprobs, nullptr);
  const json usage = response.value("usage", json());
  out.usage.prompt_tokens = usage_field(usage, "prompt_tokens");
  out.usage.completion_tokens = usage_field(usage, "completion_tokens");
  if (usage.is_object() && usage.contains("prompt_tokens_details")) {
    out.usage.cached_prompt_tokens =
        std::max<std::int64_t>(0, usage_field(usage["prompt_tokens_details"], "cached_tokens"));
  }
  if (out.usage.prompt_tokens < 0)
    out.usage.prompt_tokens = approx_tokens(dump(request["messages"]));
  if (out.usage.completion_tokens < 0) out.usage.completion_tokens = approx_tokens(out.text);
  return out;
}

std::vector<Likelihood> parse_chatrec_likelihoods(const json& response, size_t expected,
                                                  const std::string& url) {
  const json& list = response.value("chatrec_likelihoods", json());
  if (!list.is_array() || list.size() != expected) {
    throw LlmError(Kind::kBadResponse,
                   url + ": chatrec_likelihoods missing or of the wrong length");
  }
  std::vector<Likelihood> out;
  for (const json& item : list) {
    if (!item.is_object() || !item.contains("logprob") || !item["logprob"].is_number() ||
        !item.contains("tokens") || !item["tokens"].is_number_integer()) {
      throw LlmError(Kind::kBadResponse, url + ": malformed chatrec_likelihoods entry");
    }
    out.push_back({item["logprob"].get<double>(), item["tokens"].get<int>()});
  }
  return out;
}

Likelihood sum_continuation(const json& response, size_t prefix_chars, const std::string& url,
                            const std::string& base) {
  auto unsupported = [&](const std::string& why) {
    return LlmError(Kind::kUnsupported, "server at " + base + " cannot score text: " + why);
  };
  if (!response.contains("choices") || !response["choices"].is_array() ||
      response["choices"].empty() || !response["choices"][0].is_object()) {
    throw LlmError(Kind::kBadResponse, url + ": response has no choices");
  }
  const json& logprobs = response["choices"][0].value("logprobs", json());
  if (!logprobs.is_object()) throw unsupported("no logprobs in the completion");
  const json& tokens = logprobs.value("tokens", json());
  const json& token_logprobs = logprobs.value("token_logprobs", json());
  const json& offsets = logprobs.value("text_offset", json());
  if (!tokens.is_array() || !token_logprobs.is_array() || tokens.size() != token_logprobs.size()) {
    throw unsupported("logprobs without tokens/token_logprobs");
  }
  bool have_offsets = offsets.is_array() && offsets.size() == tokens.size();
  Likelihood out;
  size_t position = 0;  // characters, when the server gives no text_offset
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!tokens[i].is_string()) throw LlmError(Kind::kBadResponse, url + ": token is not a string");
    size_t length = utf8_length(tokens[i].get_ref<const std::string&>());
    size_t start = position;
    if (have_offsets) {
      if (!offsets[i].is_number_unsigned())
        throw LlmError(Kind::kBadResponse, url + ": bad text_offset");
      start = offsets[i].get<size_t>();
    }
    position = start + length;
    // A token straddling the boundary belongs to the continuation: it would not exist without it.
    if (start + length <= prefix_chars) continue;
    if (token_logprobs[i].is_null()) continue;  // the first token of the prompt has no probability
    if (!token_logprobs[i].is_number())
      throw LlmError(Kind::kBadResponse, url + ": bad token logprob");
    out.logprob += token_logprobs[i].get<double>();
    ++out.tokens;
  }
  if (out.tokens == 0) throw unsupported("the echoed prompt has no continuation tokens");
  return out;
}

std::vector<std::vector<float>> parse_embeddings(const json& response, size_t expected,
                                                 const std::string& url) {
  const json& data = response.value("data", json());
  if (!data.is_array() || data.size() != expected) {
    throw LlmError(Kind::kBadResponse,
                   url + ": expected " + std::to_string(expected) + " embeddings");
  }
  std::vector<std::vector<float>> out(expected);
  for (size_t i = 0; i < data.size(); ++i) {
    const json& item = data[i];
    if (!item.is_object() || !item.contains("embedding") || !item["embedding"].is_array()) {
      throw LlmError(Kind::kBadResponse, url + ": malformed embedding entry");
    }
    size_t index = i;
    if (item.contains("index")) {
      if (!item["index"].is_number_unsigned() || item["index"].get<size_t>() >= expected) {
        throw LlmError(Kind::kBadResponse, url + ": bad embedding index");
      }
      index = item["index"].get<size_t>();
    }
    std::vector<float> v;
    v.reserve(item["embedding"].size());
    double norm = 0;
    for (const json& x : item["embedding"]) {
      if (!x.is_number())
        throw LlmError(Kind::kBadResponse, url + ": embedding value is not a number");
      v.push_back(x.get<float>());
      norm += static_cast<double>(v.back()) * v.back();
    }
    if (v.empty()) throw LlmError(Kind::kBadResponse, url + ": empty embedding");
    if (norm > 0) {
      auto scale = static_cast<float>(1.0 / std::sqrt(norm));
      for (float& x : v) x *= scale;
    }
    out[index] = std::move(v);
  }
  for (const auto& v : out) {
    if (v.empty() || v.size() != out.front().size()) {
      throw LlmError(Kind::kBadResponse, url + ": embeddings missing or of different sizes");
    }
  }
  return out;
}

}  // namespace chatrec::llm::openai
