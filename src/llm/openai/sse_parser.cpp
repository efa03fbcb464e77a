#include "llm/openai/sse_parser.h"

#include <utility>

#include "llm/language_model.h"
#include "llm/openai/responses.h"

namespace chatrec::llm::openai {

using json = nlohmann::json;
using Kind = LlmError::Kind;

SseParser::SseParser(std::function<bool(const json&)> on_event) : on_event_(std::move(on_event)) {}

bool SseParser::feed(std::string_view data) {
  if (raw_.size() < kMaxRawBytes) raw_.append(data.substr(0, kMaxRawBytes - raw_.size()));
  buffer_.append(data);
  size_t start = 0;
  for (size_t nl = buffer_.find('\n', start); nl != std::string::npos;
       nl = buffer_.find('\n', start)) {
    std::string_view line(buffer_.data() + start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!handle_line(line)) {
      buffer_.erase(0, start);
      return false;
    }
  }
  buffer_.erase(0, start);
  return true;
}

bool SseParser::handle_line(std::string_view line) {
  if (done_ || line.rfind("data:", 0) != 0) return true;  // comments, event:, id:, blank separators
  std::string_view payload = line.substr(5);
  while (!payload.empty() && payload.front() == ' ') payload.remove_prefix(1);
  if (payload == "[DONE]") {
    done_ = true;
    return true;
  }
  json event = json::parse(payload, nullptr, false);
  if (event.is_discarded()) {
    throw LlmError(Kind::kBadResponse,
                   "malformed JSON in event stream: " + std::string(payload.substr(0, 200)));
  }
  if (event.is_object() && event.contains("error")) {
    throw LlmError(Kind::kModel,
                   "server error in event stream: " + server_message(std::string(payload)));
  }
  ++events_;
  return on_event_(event);
}

}  // namespace chatrec::llm::openai
