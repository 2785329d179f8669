// The sealed record format layer (client/src/sealed_record.h) against its
// spec (docs/FORMAT.md "Sealed record (v1)"), with no DataKeySource.
#include "client/src/sealed_record.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/src/canonical_context.h"
#include "client/tests/sealed_record_spec.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::client_internal {
namespace {

using ::clavis::testing::BigEndian;
using ::clavis::testing::SpecOpen;
using ::clavis::testing::SpecRecord;
using ::clavis::testing::SpecSeal;
using ::testing::HasSubstr;

const std::map<std::string, std::string> kContext = {{"customer", "42"}, {"table", "orders"}};

::testing::AssertionResult FailsWith(absl::string_view sealed, absl::string_view substring) {
  absl::StatusOr<ParsedSealedRecord> parsed = ParseSealedRecord(sealed);
  if (parsed.ok()) return ::testing::AssertionFailure() << "parsed";
  if (parsed.status().code() != absl::StatusCode::kInvalidArgument ||
      !absl::StrContains(parsed.status().message(), substring)) {
    return ::testing::AssertionFailure() << parsed.status();
  }
  return ::testing::AssertionSuccess();
}

TEST(SealedRecordTest, OpensARecordBuiltFromTheSpec) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecRecord spec;
  const std::string sealed = SpecSeal(dk, spec, "hello", kContext);
  absl::StatusOr<ParsedSealedRecord> parsed = ParseSealedRecord(sealed);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->fields.key, spec.key);
  EXPECT_EQ(parsed->fields.segment, spec.segment);
  EXPECT_EQ(parsed->fields.data_key_blob, spec.data_key_blob);
  absl::StatusOr<std::string> plain = OpenRecord(*parsed, dk, CanonicalEncryptionContext(kContext));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "hello");
}

TEST(SealedRecordTest, OfflineRecipeOpensWhatTheSdkSeals) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  SealedRecordFields fields{"tenants/acme/keys/crm", "acme/orders/2026-11", "some blob"};
  absl::StatusOr<std::string> sealed =
      SealRecord(dk, fields, "offline", CanonicalEncryptionContext(kContext));
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->substr(0, 6), std::string("CLSR\x01\x01", 6));
  // Overhead: 106 fixed bytes + key name + segment + blob.
  EXPECT_EQ(sealed->size(),
            106 + fields.key.size() + fields.segment.size() + fields.data_key_blob.size() + 7);
  absl::StatusOr<std::string> plain = SpecOpen(dk, *sealed, kContext);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "offline");
}

TEST(SealedRecordTest, CanonicalContextMatchesTheSpec) {
  EXPECT_EQ(CanonicalEncryptionContext({}), std::string(4, '\0'));
  EXPECT_EQ(CanonicalEncryptionContext(kContext),
            ::clavis::testing::SpecCanonicalContext(kContext));
}

TEST(SealedRecordTest, CommitmentMismatchIsRefusedBeforeDecryption) {
  // A record whose GCM tag is valid under its derived key but whose stored
  // commitment is not the one its data key gives: only the commitment check
  // can refuse it.
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecRecord spec;
  spec.commitment_override = crypto::RandomBytes(32);
  const std::string sealed = SpecSeal(dk, spec, "two faces", kContext);
  absl::StatusOr<ParsedSealedRecord> parsed = ParseSealedRecord(sealed);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  absl::StatusOr<std::string> plain = OpenRecord(*parsed, dk, CanonicalEncryptionContext(kContext));
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(plain.status().message(), "sealed record does not match its data key");
}

TEST(SealedRecordTest, AnotherDataKeyFailsTheCommitment) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  const std::string sealed = SpecSeal(dk, SpecRecord{}, "x", kContext);
  absl::StatusOr<ParsedSealedRecord> parsed = ParseSealedRecord(sealed);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(OpenRecord(*parsed, crypto::RandomSecret(32), CanonicalEncryptionContext(kContext))
                .status()
                .message(),
            "sealed record does not match its data key");
}

TEST(SealedRecordTest, WrongContextFailsAuthentication) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  const std::string sealed = SpecSeal(dk, SpecRecord{}, "x", kContext);
  absl::StatusOr<ParsedSealedRecord> parsed = ParseSealedRecord(sealed);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(
      OpenRecord(*parsed, dk, CanonicalEncryptionContext({{"customer", "43"}})).status().message(),
      "decryption failed");
}

TEST(SealedRecordTest, ParserNamesWhatIsWrong) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  EXPECT_TRUE(FailsWith("", "truncated"));
  EXPECT_TRUE(FailsWith("CL", "truncated"));
  EXPECT_TRUE(FailsWith("XLSR\x01\x01", "wrong magic"));
  EXPECT_TRUE(FailsWith("{\"json\": 1}", "wrong magic"));

  SpecRecord v2;
  v2.version = 2;
  EXPECT_TRUE(FailsWith(SpecSeal(dk, v2, "x", kContext),
                        "unsupported sealed record format version 2 (this SDK reads version 1)"));
  SpecRecord alg;
  alg.algorithm = 0x7f;
  EXPECT_TRUE(
      FailsWith(SpecSeal(dk, alg, "x", kContext), "unsupported sealed record algorithm 127"));

  SpecRecord long_key;
  long_key.key = std::string(257, 'k');
  EXPECT_TRUE(
      FailsWith(SpecSeal(dk, long_key, "x", kContext), "key name of 257 bytes is outside 1..256"));
  SpecRecord no_segment;
  no_segment.segment = "";
  EXPECT_TRUE(
      FailsWith(SpecSeal(dk, no_segment, "x", kContext), "segment of 0 bytes is outside 1..256"));

  // A huge claimed blob length is oversized, not merely truncated.
  const std::string huge_blob = absl::StrCat("CLSR\x01\x01", BigEndian(1, 2), "k", BigEndian(1, 2),
                                             "s", BigEndian(0xffffffff, 4));
  EXPECT_TRUE(FailsWith(huge_blob, "data key blob of 4294967295 bytes is outside 1..8192"));
}

TEST(SealedRecordTest, EveryTruncationFailsCleanly) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  const std::string sealed = SpecSeal(dk, SpecRecord{}, "some plaintext", kContext);
  const std::string canonical = CanonicalEncryptionContext(kContext);
  for (size_t n = 0; n < sealed.size(); ++n) {
    absl::string_view prefix = absl::string_view(sealed).substr(0, n);
    absl::StatusOr<ParsedSealedRecord> parsed = ParseSealedRecord(prefix);
    if (!parsed.ok()) {
      EXPECT_EQ(parsed.status().message(), "sealed record is truncated") << n;
      continue;
    }
    // Cut inside the ciphertext: the framing is intact, the tag is not.
    EXPECT_EQ(OpenRecord(*parsed, dk, canonical).status().message(), "decryption failed") << n;
  }
}

TEST(SealedRecordTest, SealRefusesBadFields) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  EXPECT_THAT(SealRecord(dk, {"", "s", "b"}, "x", "").status().message(),
              HasSubstr("key name of 0 bytes"));
  EXPECT_THAT(SealRecord(dk, {"k", "s", std::string(8193, 'b')}, "x", "").status().message(),
              HasSubstr("data key blob of 8193 bytes is outside 1..8192"));
}

}  // namespace
}  // namespace clavis::client_internal
