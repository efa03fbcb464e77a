#include "llm/openai/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "llm/language_model.h"

namespace chatrec::llm::openai {
namespace {

using nlohmann::json;

std::vector<std::string> contents(const std::string& body, std::size_t chunk) {
  std::vector<std::string> out;
  SseParser parser([&](const json& event) {
    out.push_back(event["choices"][0]["delta"]["content"].get<std::string>());
    return true;
  });
  for (std::size_t pos = 0; pos < body.size(); pos += chunk) parser.feed(body.substr(pos, chunk));
  EXPECT_TRUE(parser.done());
  EXPECT_TRUE(parser.saw_events());
  return out;
}

TEST(SseParser, EventsAreTheSameHoweverTheBytesAreSplit) {
  const std::string body =
      ": comment\n\nevent: delta\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n"
      "data:{\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\ndata: ignored\n";
  const std::vector<std::string> expected = {"Hel", "lo"};
  for (std::size_t chunk : {body.size(), std::size_t{1}, std::size_t{7}})
    EXPECT_EQ(contents(body, chunk), expected) << chunk;
}

TEST(SseParser, StopsWhenTheConsumerSaysSo) {
  int events = 0;
  SseParser parser([&](const json&) { return ++events < 2; });
  EXPECT_FALSE(parser.feed("data: {}\ndata: {}\ndata: {}\n"));
  EXPECT_EQ(events, 2);
  EXPECT_FALSE(parser.done());
}

TEST(SseParser, MalformedJsonAndErrorEventsAreLlmErrors) {
  SseParser parser([](const json&) { return true; });
  try {
    parser.feed("data: {broken\n");
    FAIL();
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmError::Kind::kBadResponse);
  }
  SseParser errors([](const json&) { return true; });
  try {
    errors.feed("data: {\"error\":{\"message\":\"overloaded\"}}\n");
    FAIL();
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmError::Kind::kModel);
    EXPECT_NE(std::string(e.what()).find("overloaded"), std::string::npos);
  }
}

TEST(SseParser, KeepsTheRawBodyForServersThatIgnoreStream) {
  SseParser parser([](const json&) { return true; });
  const std::string plain = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}";
  EXPECT_TRUE(parser.feed(plain));
  EXPECT_FALSE(parser.saw_events());
  EXPECT_EQ(parser.raw(), plain);
}

}  // namespace
}  // namespace chatrec::llm::openai
