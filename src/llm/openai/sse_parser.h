#pragma once
// Incremental parser of a text/event-stream body as OpenAI-compatible servers stream chat
// completions: "data: JSON" lines, "data: [DONE]" at the end; comments, "event:", "id:" and blank
// separators are skipped. Bytes may arrive split anywhere, also inside a line.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace chatrec::llm::openai {

class SseParser {
 public:
  // `on_event` receives each data payload; returning false stops the stream.
  explicit SseParser(std::function<bool(const nlohmann::json&)> on_event);

  // Consumes the next bytes. Returns false once on_event asked to stop (the rest of this chunk is
  // not parsed). A malformed JSON payload throws LlmError kBadResponse, an {"error": ...} payload
  // LlmError kModel with the server's message.
  bool feed(std::string_view data);

  bool done() const { return done_; }  // "[DONE]" seen; later lines are ignored
  bool saw_events() const { return events_ > 0; }
  // The first kMaxRawBytes of the body as received, for a server that ignored "stream" and answered
  // with a plain completion, and for error messages.
  const std::string& raw() const { return raw_; }
  static constexpr std::size_t kMaxRawBytes = 64 * 1024;

 private:
  bool handle_line(std::string_view line);

  std::function<bool(const nlohmann::json&)> on_event_;
  std::string buffer_;
  std::string raw_;
  bool done_ = false;
  int events_ = 0;
};

}  // namespace chatrec::llm::openai
