#include "crypto/encryption_context.h"

#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

TEST(EncryptionContextTest, CanonicalEncodingIsSortedAndLengthPrefixed) {
  const EncryptionContext ctx{{"b", "2"}, {"a", "1"}};
  const std::string expected(
      "\x00\x00\x00\x02"
      "\x00\x00\x00\x01"
      "a"
      "\x00\x00\x00\x01"
      "1"
      "\x00\x00\x00\x01"
      "b"
      "\x00\x00\x00\x01"
      "2",
      4 + 2 * (4 + 1 + 4 + 1));
  EXPECT_EQ(CanonicalEncryptionContext(ctx), expected);
  EXPECT_EQ(CanonicalEncryptionContext({}), std::string(4, '\0'));
}

TEST(EncryptionContextTest, BoundariesCannotBeShiftedBetweenKeyAndValue) {
  EXPECT_NE(CanonicalEncryptionContext({{"ab", "c"}}), CanonicalEncryptionContext({{"a", "bc"}}));
}

TEST(EncryptionContextTest, LimitsAreEnforced) {
  EXPECT_TRUE(ValidateEncryptionContext({{"k", ""}}).ok());
  EXPECT_FALSE(ValidateEncryptionContext({{"", "v"}}).ok());
  EXPECT_FALSE(ValidateEncryptionContext({{std::string(257, 'k'), "v"}}).ok());
  EXPECT_FALSE(ValidateEncryptionContext({{"k", std::string(1025, 'v')}}).ok());
  EncryptionContext many;
  for (int i = 0; i < 65; ++i) many[std::to_string(i)] = "v";
  EXPECT_FALSE(ValidateEncryptionContext(many).ok());
  EncryptionContext large;
  for (int i = 0; i < 10; ++i) large[std::to_string(i)] = std::string(1000, 'v');
  EXPECT_FALSE(ValidateEncryptionContext(large).ok());
}

TEST(EncryptionContextTest, ErrorsDoNotEchoValues) {
  const std::string secretish(1100, 'Z');
  auto s = ValidateEncryptionContext({{"email", secretish}});
  EXPECT_EQ(s.message().find("ZZZZ"), std::string::npos);
}

}  // namespace
}  // namespace clavis::crypto
