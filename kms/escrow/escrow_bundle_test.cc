#include "kms/escrow/escrow_bundle.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;

std::string SampleBundle() {
  EscrowHeader header;
  header.key = KeyName{"acme", "byok"};
  header.create_time = absl::FromUnixSeconds(1800000000);
  header.key_versions = {{1, "0011223344556677"}, {2, "8899aabbccddeeff"}};
  EscrowSegment a{
      "acme/contacts", "ENABLED", {{1, 1, std::string(60, 'a')}, {2, 2, std::string(60, 'b')}}};
  EscrowSegment b{"acme/orders", "DISABLED", {{1, 2, std::string(60, 'c')}}};
  return EncodeEscrowHeader(header) + EncodeEscrowSegment(a) + EncodeEscrowSegment(b) +
         EncodeEscrowTrailer(2);
}

TEST(EscrowBundleTest, RoundTrips) {
  auto bundle = ParseEscrowBundle(SampleBundle());
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->header.key.ToString(), "tenants/acme/keys/byok");
  EXPECT_EQ(bundle->header.create_time, absl::FromUnixSeconds(1800000000));
  ASSERT_EQ(bundle->header.key_versions.size(), 2u);
  EXPECT_EQ(bundle->header.key_versions[1].key_check_value, "8899aabbccddeeff");
  ASSERT_EQ(bundle->segments.size(), 2u);
  EXPECT_EQ(bundle->segments[0].segment, "acme/contacts");
  EXPECT_EQ(bundle->segments[0].versions[1].key_version, 2u);
  EXPECT_EQ(bundle->segments[0].versions[1].wrapped_key, std::string(60, 'b'));
  EXPECT_EQ(bundle->segments[1].state, "DISABLED");
}

TEST(EscrowBundleTest, TheDocumentedShape) {
  const std::string text = SampleBundle();
  // Members in name order (nlohmann's default), as docs/FORMAT.md shows.
  EXPECT_THAT(text, HasSubstr("{\"createTime\":\"2027-01-15T08:00:00Z\",\"format\":"
                              "\"clavis-escrow-bundle\",\"key\":\"tenants/acme/keys/byok\""));
  EXPECT_THAT(text, HasSubstr("{\"keyVersion\":2,\"version\":2,\"wrappedKey\":\""));
  EXPECT_THAT(text, HasSubstr("\n{\"end\":{\"segments\":2}}\n"));
}

TEST(EscrowBundleTest, TruncationIsDetectedAnywhere) {
  const std::string text = SampleBundle();
  for (size_t cut = 0; cut < text.size(); ++cut) {
    auto parsed = ParseEscrowBundle(text.substr(0, cut));
    ASSERT_FALSE(parsed.ok()) << "cut at " << cut;
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status()));
  }
}

TEST(EscrowBundleTest, DroppedOrExtraLinesAreRefused) {
  std::string text = SampleBundle();
  const size_t second = text.find('\n') + 1;
  const size_t third = text.find('\n', second) + 1;
  auto dropped = ParseEscrowBundle(text.substr(0, second) + text.substr(third));
  ASSERT_FALSE(dropped.ok());
  EXPECT_THAT(dropped.status().message(), HasSubstr("must count the 1 segment lines"));
  auto extra = ParseEscrowBundle(text + EncodeEscrowTrailer(2));
  ASSERT_FALSE(extra.ok());
  EXPECT_THAT(extra.status().message(), HasSubstr("nothing may follow"));
}

TEST(EscrowBundleTest, WrongFormatOrVersionIsNamed) {
  std::string text = SampleBundle();
  std::string v2 = text;
  const size_t at = v2.find("],\"version\":1}");
  ASSERT_NE(at, std::string::npos);
  v2.replace(at, 14, "],\"version\":2}");
  auto wrong_version = ParseEscrowBundle(v2);
  ASSERT_FALSE(wrong_version.ok());
  EXPECT_THAT(wrong_version.status().message(), HasSubstr("unsupported escrow bundle version 2"));
  auto not_a_bundle = ParseEscrowBundle("{\"format\":\"something else\"}\n");
  ASSERT_FALSE(not_a_bundle.ok());
  EXPECT_THAT(not_a_bundle.status().message(), HasSubstr("not an escrow bundle"));
  auto garbage = ParseEscrowBundle("\x01\x02\n");
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.status().message(), HasSubstr("line 1: not a JSON object"));
}

TEST(EscrowBundleTest, FlippedBitsNeverCrashAndNeverPassSilentlyAsOtherKeys) {
  const std::string text = SampleBundle();
  for (size_t i = 0; i < text.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = text;
      flipped[i] ^= static_cast<char>(1 << bit);
      auto parsed = ParseEscrowBundle(flipped);
      // Some flips still parse (a different letter of base64 or of a
      // state name); the wrapped keys' AES-GCM tags catch those at use.
      if (parsed.ok()) {
        EXPECT_EQ(parsed->segments.size(), 2u);
      }
    }
  }
}

TEST(EscrowBundleTest, BadFieldsAreNamed) {
  const std::string header = SampleBundle().substr(0, SampleBundle().find('\n') + 1);
  auto short_key =
      ParseEscrowBundle(header +
                        "{\"segment\":\"s\",\"state\":\"ENABLED\",\"versions\":[{\"version\":1,"
                        "\"keyVersion\":1,\"wrappedKey\":\"AAAA\"}]}\n" +
                        EncodeEscrowTrailer(1));
  ASSERT_FALSE(short_key.ok());
  EXPECT_THAT(short_key.status().message(), HasSubstr("line 2: \"wrappedKey\""));
  auto zero_version = ParseEscrowBundle(
      header + "{\"segment\":\"s\",\"state\":\"ENABLED\",\"versions\":[{\"version\":0}]}\n" +
      EncodeEscrowTrailer(1));
  ASSERT_FALSE(zero_version.ok());
  EXPECT_THAT(zero_version.status().message(), HasSubstr("\"version\" must be a whole number"));
}

}  // namespace
}  // namespace clavis::kms
