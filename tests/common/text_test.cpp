#include "common/text.h"

#include <gtest/gtest.h>

namespace chatrec::text {
namespace {

// RFC 4648 section 10 test vectors, both ways.
TEST(Base64, MatchesTheRfcVectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(base64_encode(plain), coded);
    EXPECT_EQ(base64_decode(coded), std::optional<std::string>(plain)) << coded;
  }
}

TEST(Base64, RoundTripsBinaryAndRejectsGarbage) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_EQ(base64_decode(base64_encode(bytes)), std::optional<std::string>(bytes));
  EXPECT_EQ(base64_decode("Zm9"), std::nullopt);       // not a multiple of four
  EXPECT_EQ(base64_decode("Zm9v!!!!"), std::nullopt);  // not the alphabet
}

TEST(HtmlEntities, NamedAndNumericReferencesBecomeUtf8) {
  EXPECT_EQ(decode_html_entities("Pok&eacute;mon Omega Ruby"), "Pok\u00e9mon Omega Ruby");
  EXPECT_EQ(decode_html_entities("Tom Clancy&rsquo;s Ghost"), "Tom Clancy\u2019s Ghost");
  EXPECT_EQ(decode_html_entities("Episode I &amp; II"), "Episode I & II");
  EXPECT_EQ(decode_html_entities("Rock&#39;n&#x27;Roll &#128512;"), "Rock'n'Roll \U0001F600");
  EXPECT_EQ(decode_html_entities("Halo&reg;&nbsp;3&trade;"), "Halo\u00ae 3\u2122");
  // One pass: a double-encoded reference decodes once.
  EXPECT_EQ(decode_html_entities("&amp;eacute;"), "&eacute;");
}

TEST(HtmlEntities, WhatIsNotAReferenceStaysAsWritten) {
  for (const char* s : {"Tom & Jerry", "R&D; lab", "&;", "&#;", "&#xZZ;", "&#0;", "&#xD800;",
                        "&#1114112;", "a&", "&bogus;", "&amp", "&eacuteeeeeeeeeeeeeeeeee;"}) {
    EXPECT_EQ(decode_html_entities(s), s) << s;
  }
  EXPECT_EQ(utf8_encode(U'\u00e9'), "\u00e9");
  EXPECT_EQ(utf8_encode(U'\U0001F600'), "\U0001F600");
}

}  // namespace
}  // namespace chatrec::text
