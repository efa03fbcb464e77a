// The OpenAI client's parsers of what a server sends back (llm/openai/sse_parser.h,
// llm/openai/responses.h) on arbitrary bodies. An input is a mode line and a body:
//   sse              a text/event-stream body of a streamed chat completion
//   chat             a /v1/chat/completions JSON answer
//   embeddings N     a /v1/embeddings answer expected to hold N vectors
//   likelihoods N    chatrec's /v1/completions extension for N continuations
//   echo P           an echoed /v1/completions answer whose prompt has P characters
//   error            an error body
//
// Properties: a malformed answer is an LlmError (kBadResponse, or kModel for an error event in a
// stream, kUnsupported for a server that cannot score), never another exception; an event stream
// yields the same events and the same outcome whether its bytes arrive at once or one by one;
// completions report "stop" or "length" and non-negative usage; N embeddings of one size, each of
// unit length, finite; N likelihoods; a scored continuation has at least one token.
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "llm/language_model.h"
#include "llm/openai/responses.h"
#include "llm/openai/sse_parser.h"

namespace {

using namespace chatrec::llm;
using namespace chatrec::llm::openai;

struct StreamOutcome {
  std::vector<std::string> events;
  bool stopped = false;
  bool done = false;
  bool saw_events = false;
  std::optional<LlmError::Kind> error;
  std::string message;
  std::string raw;
};

// A stream's consumer stops at an event with "stop" in it, as a caller that has enough text does.
StreamOutcome stream(std::string_view body, std::size_t chunk) {
  StreamOutcome out;
  SseParser parser([&](const json& event) {
    out.events.push_back(event.dump(-1, ' ', false, json::error_handler_t::replace));
    return !(event.is_object() && event.contains("stop"));
  });
  try {
    for (std::size_t pos = 0; pos < body.size() && !out.stopped; pos += chunk)
      out.stopped = !parser.feed(body.substr(pos, chunk));
  } catch (const LlmError& e) {
    out.error = e.kind();
    out.message = e.what();
  }
  out.done = parser.done();
  out.saw_events = parser.saw_events();
  out.raw = parser.raw();
  return out;
}

std::size_t number_after(std::string_view mode, std::size_t max) {
  const std::size_t space = mode.find(' ');
  std::size_t v = 1;
  if (space != std::string_view::npos)
    std::from_chars(mode.data() + space + 1, mode.data() + mode.size(), v);
  return std::min(v, max);
}

void check_kind(const LlmError& e, std::initializer_list<LlmError::Kind> allowed) {
  bool ok = false;
  for (auto k : allowed) ok = ok || e.kind() == k;
  FUZZ_CHECK(ok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode, rest] = chatrec::fuzz::first_line(chatrec::fuzz::text_of(data, size));
  const std::string body(rest);
  const std::string url = "http://fuzz/v1";
  using Kind = LlmError::Kind;

  if (mode == "sse") {
    const StreamOutcome whole = stream(body, body.size() + 1);
    const StreamOutcome bytewise = stream(body, 1);
    FUZZ_CHECK(whole.events == bytewise.events);
    FUZZ_CHECK(whole.stopped == bytewise.stopped && whole.done == bytewise.done);
    FUZZ_CHECK(whole.saw_events == bytewise.saw_events &&
               whole.saw_events == !whole.events.empty());
    FUZZ_CHECK(whole.error == bytewise.error && whole.message == bytewise.message);
    if (whole.error) FUZZ_CHECK(*whole.error == Kind::kBadResponse || *whole.error == Kind::kModel);
    // What the client falls back to for a server that ignored "stream" (nothing was cut early).
    if (!whole.stopped && !whole.error)
      FUZZ_CHECK(whole.raw == body.substr(0, SseParser::kMaxRawBytes) && whole.raw == bytewise.raw);
    return 0;
  }
  if (mode == "error") {
    FUZZ_CHECK(!server_message(body).empty());
    is_context_overflow(body);
    return 0;
  }
  try {
    const json response = parse_json_object(body, url);
    FUZZ_CHECK(response.is_object());
    if (mode == "chat") {
      const json request{{"messages", {{{"role", "user"}, {"content", "hi"}}}}};
      const Completion c = completion_from(response, request, url);
      FUZZ_CHECK(c.finish_reason == "stop" || c.finish_reason == "length");
      FUZZ_CHECK(c.usage.prompt_tokens >= 0 && c.usage.completion_tokens >= 0 &&
                 c.usage.cached_prompt_tokens >= 0);
    } else if (mode.starts_with("embeddings")) {
      const std::size_t n = number_after(mode, 64);
      const auto vectors = parse_embeddings(response, n, url);
      FUZZ_CHECK(vectors.size() == n);
      for (const auto& v : vectors) {
        FUZZ_CHECK(!v.empty() && v.size() == vectors.front().size());
        double norm = 0;
        for (float x : v) {
          FUZZ_CHECK(std::isfinite(x));
          norm += static_cast<double>(x) * x;
        }
        FUZZ_CHECK(norm == 0.0 || std::abs(norm - 1.0) < 1e-3);
      }
    } else if (mode.starts_with("likelihoods")) {
      const std::size_t n = number_after(mode, 64);
      FUZZ_CHECK(parse_chatrec_likelihoods(response, n, url).size() == n);
    } else if (mode.starts_with("echo")) {
      const Likelihood l = sum_continuation(response, number_after(mode, 1 << 20), url, url);
      FUZZ_CHECK(l.tokens >= 1);
    }
  } catch (const LlmError& e) {
    check_kind(e, {Kind::kBadResponse, Kind::kUnsupported});
  }
  return 0;
}
