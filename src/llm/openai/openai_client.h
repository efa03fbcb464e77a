#pragma once
// A LanguageModel backed by any OpenAI-compatible HTTP endpoint (OpenAI, vLLM, llama.cpp's server,
// or chatrec's own `chatrec llm-serve`).
//
// - chat(): POST /v1/chat/completions, streamed over SSE when options.on_text is set. Constrained
// choices are
//   scored with loglikelihood(); when the server cannot score, the model generates and the answer
//   is matched to the closest choice.
// - loglikelihood(): the chatrec extension of /v1/completions when the server is a chatrec server
// (GET
//   /v1/models says owned_by "chatrec"), else echo + logprobs on the plain rendering
//   (plain_prompt.h). Servers that cannot do either raise LlmError kUnsupported.
// - embed(): POST /v1/embeddings, re-normalised to unit length.
// - 429, 5xx and transport errors are retried with exponential backoff and jitter, honouring
// Retry-After;
//   timeouts are not retried (the caller's time budget is timeout_seconds); other 4xx raise kHttp
//   with the server's message.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llm/language_model.h"

namespace chatrec::llm::openai {

struct OpenAIConfig {
  std::string base_url;  // "http://host:port" or "http://host:port/v1"
  std::string model;     // empty: the first model GET /v1/models lists, else "default"
  std::string api_key;   // sent as "Authorization: Bearer <key>" when non-empty
  double timeout_seconds = 60;
  int max_retries = 3;
  double backoff_initial_seconds = 0.5;
  int context_size = 8192;

  // Model from CHATREC_OPENAI_MODEL, key from CHATREC_OPENAI_API_KEY or OPENAI_API_KEY.
  static OpenAIConfig from_env(const std::string& base_url);
};

// "http://h:p", "http://h:p/", "http://h:p/v1" and "http://h:p/v1/" all become "http://h:p/v1".
std::string normalize_base_url(const std::string& base_url);

std::unique_ptr<LanguageModel> open_openai_model(const OpenAIConfig& config);

// The choice a free-form answer names: an exact match (ignoring case, spaces and surrounding
// punctuation), else the choice mentioned earliest in the answer, else the one at the smallest edit
// distance. Used when the server cannot score choices. `choices` must be non-empty.
std::string closest_choice(std::string_view answer, const std::vector<std::string>& choices);

}  // namespace chatrec::llm::openai
