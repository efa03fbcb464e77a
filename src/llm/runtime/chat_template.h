#pragma once
// Chat formats of the supported model families, chosen from the GGUF's tokenizer.chat_template (or
// the architecture and vocabulary when it has none). Rendering produces token ids directly: the
// format's markers are tokenized as special tokens, message contents as plain text, so that a
// message cannot inject markers.
#include <string>
#include <vector>

#include "llm/language_model.h"

namespace chatrec::llm::runtime {

class GgufFile;
class Tokenizer;

enum class ChatFormat { kChatMl, kLlama3, kGemma };
const char* to_string(ChatFormat format);

struct ChatTemplate {
  ChatFormat format = ChatFormat::kChatMl;
  // System message the template inserts when the conversation has none (SmolLM2 and Qwen do).
  std::string default_system;

  static ChatTemplate detect(const GgufFile& file, const Tokenizer& tokenizer);

  // With add_generation_prompt the result ends with an open assistant turn; when the last message
  // is the assistant's, that message is the start of the reply (a prefill) and stays open.
  std::vector<int> render(const Tokenizer& tokenizer, const std::vector<Message>& messages,
                          bool add_generation_prompt) const;
  // The same prompt as text (for logs and tests).
  std::string render_text(const std::vector<Message>& messages, bool add_generation_prompt) const;
};

}  // namespace chatrec::llm::runtime
