#include "kms/keys/ciphertext_blob.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;

std::string ValidBlob() {
  CiphertextBlobHeader h;
  h.tenant = "acme";
  h.key_id = "crm";
  h.segment = "acme/orders/2026-11";
  h.segment_key_version = 3;
  return h.Encode() + std::string(kBlobNonceSize, 'n') + std::string(32 + kBlobTagSize, 'c');
}

TEST(CiphertextBlobTest, HeaderLayoutMatchesTheSpec) {
  CiphertextBlobHeader h;
  h.tenant = "t";
  h.key_id = "k";
  h.segment = "s";
  h.segment_key_version = 0x01020304;
  EXPECT_EQ(h.Encode(), std::string("\x01\x01\x01t\x01k\x00\x01s\x01\x02\x03\x04", 13));
}

TEST(CiphertextBlobTest, ParsesWhatItEncodes) {
  auto parsed = ParseCiphertextBlob(ValidBlob());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->header.tenant, "acme");
  EXPECT_EQ(parsed->header.key_id, "crm");
  EXPECT_EQ(parsed->header.segment, "acme/orders/2026-11");
  EXPECT_EQ(parsed->header.segment_key_version, 3u);
  EXPECT_EQ(parsed->nonce, std::string(12, 'n'));
  EXPECT_EQ(parsed->ciphertext_and_tag.size(), 48u);
  EXPECT_EQ(parsed->header_bytes, parsed->header.Encode());
}

TEST(CiphertextBlobTest, EveryTruncationIsRejectedAsTruncatedOrMalformed) {
  const std::string blob = ValidBlob();
  for (size_t n = 0; n < blob.size() - 32; ++n) {  // keep at least a tag's worth
    auto parsed = ParseCiphertextBlob(blob.substr(0, n));
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST(CiphertextBlobTest, WrongVersionIsNamed) {
  std::string blob = ValidBlob();
  blob[0] = 7;
  auto parsed = ParseCiphertextBlob(blob);
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("unsupported ciphertext blob format version 7"));
}

TEST(CiphertextBlobTest, UnknownAlgorithmIsRejected) {
  std::string blob = ValidBlob();
  blob[1] = 9;
  EXPECT_THAT(ParseCiphertextBlob(blob).status().message(), HasSubstr("unknown algorithm 9"));
}

TEST(CiphertextBlobTest, OversizedBlobIsRejectedBeforeParsing) {
  auto parsed = ParseCiphertextBlob(std::string(kMaxCiphertextBlobSize + 1, '\x01'));
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("at most"));
}

TEST(CiphertextBlobTest, InvalidNamesInTheHeaderAreRejected) {
  CiphertextBlobHeader h;
  h.tenant = "ACME";  // upper case is not a valid tenant id
  h.key_id = "crm";
  h.segment = "s";
  h.segment_key_version = 1;
  const std::string blob = h.Encode() + std::string(28, 'x');
  EXPECT_THAT(ParseCiphertextBlob(blob).status().message(), HasSubstr("malformed"));
  h.tenant = "acme";
  h.segment_key_version = 0;
  EXPECT_FALSE(ParseCiphertextBlob(h.Encode() + std::string(28, 'x')).ok());
}

TEST(CiphertextBlobTest, ErrorsNeverEchoTheInput) {
  std::string blob = ValidBlob();
  blob[0] = 2;
  EXPECT_EQ(ParseCiphertextBlob(blob).status().message().find("acme"), std::string::npos);
}

}  // namespace
}  // namespace clavis::kms
