#include "llm/language_model.h"

namespace chatrec::llm {

const char* to_string(LlmError::Kind kind) {
  switch (kind) {
    case LlmError::Kind::kTimeout:
      return "timeout";
    case LlmError::Kind::kTransport:
      return "transport";
    case LlmError::Kind::kHttp:
      return "http";
    case LlmError::Kind::kBadResponse:
      return "bad_response";
    case LlmError::Kind::kUnsupported:
      return "unsupported";
    case LlmError::Kind::kContextOverflow:
      return "context_overflow";
    case LlmError::Kind::kModel:
      return "model";
  }
  return "unknown";
}

Completion LanguageModel::complete(std::string_view, const GenerationOptions&) {
  throw LlmError(LlmError::Kind::kUnsupported,
                 name() + " continues chats only, not plain text prompts");
}

}  // namespace chatrec::llm
