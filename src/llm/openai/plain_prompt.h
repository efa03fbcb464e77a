#pragma once
// The plain-text chat rendering both ends of the OpenAI path agree on when a chat has to travel
// through the raw-text /v1/completions endpoint (log-likelihood scoring with echo + logprobs):
//
//   System: <content>\n\nUser: <content>\n\nAssistant:
//
// The continuation is appended after a single space, so that BPE vocabularies see " Yes" rather
// than a dangling space followed by "Yes".
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llm/language_model.h"

namespace chatrec::llm::openai {

// The messages and an open assistant turn; ends with "Assistant:" (no trailing space).
std::string render_plain_prompt(const std::vector<Message>& messages);

struct PlainPrompt {
  std::vector<Message> messages;
  std::string continuation;      // what follows "Assistant:", without the separating space
  std::size_t prefix_bytes = 0;  // where the continuation (including its separating space) starts
};
// Inverse of render_plain_prompt(...) + " " + continuation; std::nullopt when the text has no final
// "Assistant:" header or does not start with a role header.
std::optional<PlainPrompt> parse_plain_prompt(std::string_view text);

// Number of Unicode code points in the bytes (text_offset in OpenAI responses counts characters).
std::size_t utf8_length(std::string_view text);
// Length of the longest prefix that does not end inside a multi-byte sequence, so streamed pieces
// can be forwarded as valid UTF-8.
std::size_t utf8_complete_prefix(std::string_view text);

}  // namespace chatrec::llm::openai
