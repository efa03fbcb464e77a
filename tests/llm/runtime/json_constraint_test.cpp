#include "llm/runtime/json_constraint.h"

#include <gtest/gtest.h>

#include <string>

namespace chatrec::llm::runtime {
namespace {

// Feeds `text` one byte at a time, as generation does across tokens.
bool accepts_bytewise(const std::string& text, bool* complete = nullptr) {
  JsonObjectPrefix p;
  for (char c : text) {
    if (!p.feed(std::string_view(&c, 1))) return false;
  }
  if (complete) *complete = p.complete();
  return true;
}

TEST(JsonObjectPrefix, AcceptsWholeObjectsAndTheirPrefixes) {
  const std::string objects[] = {
      R"j({})j",
      R"j({"a": 1})j",
      R"j({"title": "Toy Story (1995)", "score": -0.5e+3, "ok": true, "no": false, "x": null})j",
      "{\n  \"list\": [1, 2.25, [], {}, [\"a\", {\"b\": [0]}]],\n  \"esc\": "
      "\"q\\\"\\\\\\/\\n\\u00e9\"\n}",
      R"j({"utf8": "ÿ Zoë 映画"})j",
  };
  for (const std::string& text : objects) {
    bool complete = false;
    EXPECT_TRUE(accepts_bytewise(text, &complete)) << text;
    EXPECT_TRUE(complete) << text;
    for (std::size_t n = 0; n < text.size(); ++n) {
      bool prefix_complete = true;
      EXPECT_TRUE(accepts_bytewise(text.substr(0, n), &prefix_complete)) << text.substr(0, n);
      EXPECT_FALSE(prefix_complete) << text.substr(0, n);
    }
    JsonObjectPrefix whole;
    EXPECT_TRUE(whole.feed(text));  // many bytes at once, as a multi-byte token
    EXPECT_TRUE(whole.complete());
  }
}

TEST(JsonObjectPrefix, RefusesWhatCannotBecomeOneObject) {
  const std::string refused[] = {
      R"j( {})j",  // text or whitespace before the object
      R"j(```json)j",
      R"j([1])j",  // an array is not an object
      R"j("a")j",
      R"j({} )j",  // nothing after the object
      R"j({}{})j",
      R"j({a: 1})j",       // unquoted key
      R"j({"a" 1})j",      // missing colon
      R"j({"a": 01})j",    // leading zero
      R"j({"a": 1.})j",    // a dot needs digits
      R"j({"a": 1.5e})j",  // so does an exponent
      R"j({"a": -})j",
      R"j({"a": tru })j",
      R"j({"a": nul})j",
      R"j({"a": 1,})j",  // trailing comma
      R"j({"a": [1,]})j",
      R"j({"a": [1}})j",   // mismatched brackets
      R"j({"a": "\x"})j",  // bad escape
      R"j({"a": "\u12G4"})j",
      "{\"a\": \"line\nbreak\"}",  // raw control character inside a string
  };
  for (const std::string& text : refused) EXPECT_FALSE(accepts_bytewise(text)) << text;
}

TEST(JsonObjectPrefix, BoundsWhitespaceRunsAndDepth) {
  const std::string ws(JsonObjectPrefix::kMaxWhitespaceRun, ' ');
  EXPECT_TRUE(accepts_bytewise("{" + ws + "\"a\":" + ws + "1" + ws + "}"));
  EXPECT_FALSE(accepts_bytewise("{" + ws + " "));
  std::string deep = "{\"a\":";
  for (std::size_t i = 1; i < JsonObjectPrefix::kMaxDepth; ++i) deep += "[";
  EXPECT_TRUE(accepts_bytewise(deep));
  EXPECT_FALSE(accepts_bytewise(deep + "["));
}

}  // namespace
}  // namespace chatrec::llm::runtime
