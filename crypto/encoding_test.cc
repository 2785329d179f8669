#include "crypto/encoding.h"

#include <string>

#include "absl/status/status.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

std::string AllByteValues() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

void ExpectInvalidArgument(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

// --- hex --------------------------------------------------------------------

TEST(HexTest, EncodesLowerCase) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x01\xab\xff", 4)), "0001abff");
}

TEST(HexTest, DecodesBothCases) {
  absl::StatusOr<std::string> lower = HexDecode("0001abff");
  absl::StatusOr<std::string> upper = HexDecode("0001ABFF");
  ASSERT_TRUE(lower.ok() && upper.ok());
  EXPECT_EQ(*lower, std::string("\x00\x01\xab\xff", 4));
  EXPECT_EQ(*upper, *lower);
}

TEST(HexTest, RoundTripsAllByteValuesAndRandomData) {
  for (const std::string& bytes : {std::string(), AllByteValues(), RandomBytes(1000)}) {
    absl::StatusOr<std::string> decoded = HexDecode(HexEncode(bytes));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, bytes);
  }
}

TEST(HexTest, DecodeRejectsOddLength) {
  for (const char* hex : {"0", "abc", "00112"}) {
    SCOPED_TRACE(hex);
    absl::StatusOr<std::string> decoded = HexDecode(hex);
    ExpectInvalidArgument(decoded.status());
    EXPECT_NE(decoded.status().message().find("odd length"), absl::string_view::npos);
  }
}

TEST(HexTest, DecodeRejectsInvalidCharacterAndNamesItsPosition) {
  struct Case {
    const char* hex;
    const char* position;
  };
  for (const Case& c :
       {Case{"zz", "position 0"}, Case{"0g", "position 1"}, Case{"00ffgg", "position 4"},
        Case{"00f-", "position 3"}, Case{"0x00", "position 1"}}) {
    SCOPED_TRACE(c.hex);
    absl::StatusOr<std::string> decoded = HexDecode(c.hex);
    ExpectInvalidArgument(decoded.status());
    EXPECT_NE(decoded.status().message().find(c.position), absl::string_view::npos)
        << decoded.status();
  }
}

TEST(HexTest, DecodeRejectsWhitespace) {
  for (const char* hex : {"00 11", " 0011", "0011 ", "00\n1", "00\t1", "0011\n\n"}) {
    SCOPED_TRACE(hex);
    ExpectInvalidArgument(HexDecode(hex).status());
  }
}

TEST(HexTest, DecodeRejectsTrailingGarbage) {
  ExpectInvalidArgument(HexDecode("0011zz").status());
  ExpectInvalidArgument(HexDecode(std::string("0011\0\0", 6)).status());
}

TEST(HexTest, ErrorDoesNotEchoInput) {
  absl::StatusOr<std::string> decoded = HexDecode("deadbeefcafeXY");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().message().find("deadbeef"), absl::string_view::npos);
}

// --- base64 -----------------------------------------------------------------

// RFC 4648 section 10.
TEST(Base64Test, MatchesRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    SCOPED_TRACE(plain);
    EXPECT_EQ(Base64Encode(plain), encoded);
    absl::StatusOr<std::string> decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, plain);
  }
}

TEST(Base64Test, UrlSafeVariantUsesDashUnderscoreAndNoPadding) {
  const std::string bytes("\xfb\xff\xbf", 3);
  EXPECT_EQ(Base64Encode(bytes), "+/+/");
  EXPECT_EQ(Base64Encode(bytes, Base64Variant::kUrlSafeNoPadding), "-_-_");
  EXPECT_EQ(Base64Encode("f", Base64Variant::kUrlSafeNoPadding), "Zg");
  absl::StatusOr<std::string> decoded = Base64Decode("-_-_", Base64Variant::kUrlSafeNoPadding);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, bytes);
}

TEST(Base64Test, RoundTripsAllLengthsInBothVariants) {
  const std::string data = AllByteValues() + RandomBytes(100);
  for (Base64Variant variant : {Base64Variant::kStandard, Base64Variant::kUrlSafeNoPadding}) {
    for (size_t size = 0; size <= data.size(); ++size) {
      SCOPED_TRACE(size);
      const std::string bytes = data.substr(0, size);
      absl::StatusOr<std::string> decoded = Base64Decode(Base64Encode(bytes, variant), variant);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, bytes);
    }
  }
}

TEST(Base64Test, DecodeRejectsCharactersOutsideTheAlphabet) {
  for (const char* text : {"Zm9v!", "Zm9v*A==", "Zm9v-_==", "Zm\x80=", "Zm9vYmE\xff",
                           "Zm9v\xc3\xa9"
                           "A="}) {
    SCOPED_TRACE(text);
    ExpectInvalidArgument(Base64Decode(text).status());
  }
  ExpectInvalidArgument(Base64Decode(std::string("Zm\0v", 4)).status());
  for (const char* text : {"Zm9v+/", "Zm9vYg==", "Zm9v!"}) {
    SCOPED_TRACE(text);
    ExpectInvalidArgument(Base64Decode(text, Base64Variant::kUrlSafeNoPadding).status());
  }
}

// libsodium 1.0.18 alone would accept any byte >= 0x80 as a digit.
TEST(Base64Test, DecodeRejectsEveryNonAsciiByte) {
  for (int byte = 0x80; byte <= 0xff; ++byte) {
    SCOPED_TRACE(byte);
    const std::string text = std::string("Zm9vYmE") + static_cast<char>(byte);
    for (Base64Variant variant : {Base64Variant::kStandard, Base64Variant::kUrlSafeNoPadding}) {
      absl::StatusOr<std::string> decoded = Base64Decode(text, variant);
      ExpectInvalidArgument(decoded.status());
      EXPECT_NE(decoded.status().message().find("position 7"), absl::string_view::npos);
      ExpectInvalidArgument(Base64DecodeSecret(text, variant).status());
    }
  }
}

TEST(Base64Test, DecodeRejectsEveryCharacterOutsideTheAlphabet) {
  const std::string standard = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string url_safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int byte = 0; byte <= 0xff; ++byte) {
    const char c = static_cast<char>(byte);
    // "Zm9v" + c + "A==" is valid standard base64 exactly when c is a digit.
    const std::string padded = std::string("Zm9v") + c + "A==";
    EXPECT_EQ(Base64Decode(padded).ok(), standard.find(c) != std::string::npos) << byte;
    const std::string unpadded = std::string("Zm9v") + c + "A";
    EXPECT_EQ(Base64Decode(unpadded, Base64Variant::kUrlSafeNoPadding).ok(),
              url_safe.find(c) != std::string::npos)
        << byte;
  }
}

TEST(Base64Test, StandardDecodeRejectsMissingOrBadPadding) {
  for (const char* text : {"Zg", "Zg=", "Zg===", "Zm8", "Zm8==", "Z", "Zm9vY", "="}) {
    SCOPED_TRACE(text);
    ExpectInvalidArgument(Base64Decode(text).status());
  }
}

TEST(Base64Test, DecodeRejectsNonCanonicalTrailingBits) {
  // "Zh==" decodes to 'f' with non-zero unused bits.
  ExpectInvalidArgument(Base64Decode("Zh==").status());
  ExpectInvalidArgument(Base64Decode("Zh", Base64Variant::kUrlSafeNoPadding).status());
}

TEST(Base64Test, DecodeRejectsTrailingGarbage) {
  for (const char* text : {"Zm9vYg==A", "Zm9vYg==Zm9v", "Zm9v=", "Zm9vYg==="}) {
    SCOPED_TRACE(text);
    ExpectInvalidArgument(Base64Decode(text).status());
  }
  ExpectInvalidArgument(Base64Decode("Zm9v=", Base64Variant::kUrlSafeNoPadding).status());
  ExpectInvalidArgument(
      Base64Decode(std::string("Zm9v\0", 5), Base64Variant::kUrlSafeNoPadding).status());
}

TEST(Base64Test, DecodeRejectsWhitespace) {
  for (const char* text : {"Zm9v Yg==", " Zm9v", "Zm9v\n", "Zm9v\r\nYg==", "Zm9v\tYmFy"}) {
    SCOPED_TRACE(text);
    ExpectInvalidArgument(Base64Decode(text).status());
    ExpectInvalidArgument(Base64DecodeSecret(text).status());
  }
}

TEST(Base64Test, DecodeErrorNamesPositionButNotInput) {
  absl::StatusOr<std::string> decoded = Base64Decode("c2VjcmV0a2V5!!!!");
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("position 12"), absl::string_view::npos)
      << decoded.status();
  EXPECT_EQ(decoded.status().message().find("c2VjcmV0"), absl::string_view::npos);
}

TEST(Base64Test, DecodeSecretMatchesDecode) {
  const SecretBytes key = RandomSecret(32);
  for (Base64Variant variant : {Base64Variant::kStandard, Base64Variant::kUrlSafeNoPadding}) {
    const std::string text = Base64Encode(key.view(), variant);
    absl::StatusOr<SecretBytes> decoded = Base64DecodeSecret(text, variant);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_TRUE(decoded->Equals(key));
    EXPECT_EQ(decoded->size(), 32u);
  }
  absl::StatusOr<SecretBytes> empty = Base64DecodeSecret("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(Base64Test, DecodeSecretRejectsWhatDecodeRejects) {
  for (const char* text : {"Zg", "Zh==", "Zm9v!", "Zm9vYg==A", "Zm9v Yg=="}) {
    SCOPED_TRACE(text);
    ExpectInvalidArgument(Base64DecodeSecret(text).status());
  }
}

}  // namespace
}  // namespace clavis::crypto
