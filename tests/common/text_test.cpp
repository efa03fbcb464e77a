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

}  // namespace
}  // namespace chatrec::text
