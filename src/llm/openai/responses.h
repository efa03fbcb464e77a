#pragma once
// What the OpenAI client reads out of a server's JSON answers, apart from the transport: error
// messages, chat completions (text, finish reason, logprobs, usage), chatrec's likelihood
// extension, echoed-prompt logprobs and embeddings. A body that does not have the expected shape
// raises LlmError (kBadResponse, or kUnsupported where the server simply cannot do it), never
// another exception.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "llm/language_model.h"

namespace chatrec::llm::openai {

using json = nlohmann::json;

// Serialises a request; invalid UTF-8 in prompts is replaced rather than thrown on.
std::string dump(const json& j);

// The server's own words for an error: OpenAI's {"error":{"message"}}, the common variants, or the
// start of the raw body.
std::string server_message(const std::string& body);
// OpenAI's "context_length_exceeded" error code.
bool is_context_overflow(const std::string& body);

// About four bytes per token: for usage a server leaves out.
int approx_tokens(std::string_view text);
// usage[key] when it is an integer, else -1.
std::int64_t usage_field(const json& usage, const char* key);

// The body as a JSON object; kBadResponse naming `url` otherwise.
json parse_json_object(const std::string& body, const std::string& url);
// "length" when the choice says so, else "stop".
std::string finish_reason(const json& choice);
// Appends a choice's chat logprobs ({"content": [{"token", "logprob", "bytes", "top_logprobs"}]}),
// calling options->on_logprob for each when set.
void append_logprobs(const json& choice, std::vector<TokenLogprob>& out,
                     const GenerationOptions* options);
// A /v1/chat/completions answer; `request` supplies the usage estimate when the server sends none.
Completion completion_from(const json& response, const json& request, const std::string& url);
// chatrec's /v1/completions extension: one {"logprob", "tokens"} per continuation.
std::vector<Likelihood> parse_chatrec_likelihoods(const json& response, std::size_t expected,
                                                  const std::string& url);
// An echoed /v1/completions answer: the logprob of the tokens after the first `prefix_chars`
// characters. kUnsupported (naming `base`) when the server gave no usable logprobs.
Likelihood sum_continuation(const json& response, std::size_t prefix_chars, const std::string& url,
                            const std::string& base);
// A /v1/embeddings answer of `expected` vectors, each normalised to unit length.
std::vector<std::vector<float>> parse_embeddings(const json& response, std::size_t expected,
                                                 const std::string& url);

}  // namespace chatrec::llm::openai
