// The sealed record format layer (client/src/sealed_record.h) against its
// spec (docs/FORMAT.md "Sealed record (v2)"), with no DataKeySource.
#include "client/src/sealed_record.h"

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/tests/sealed_record_spec.h"
#include "crypto/encryption_context.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::client_internal {
namespace {

using ::clavis::crypto::CanonicalEncryptionContext;
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
  EXPECT_EQ(sealed->substr(0, 6), std::string("CLSR\x02\x01", 6));
  // Overhead: 106 fixed bytes + key name + segment + blob.
  EXPECT_EQ(sealed->size(),
            106 + fields.key.size() + fields.segment.size() + fields.data_key_blob.size() + 7);
  absl::StatusOr<std::string> plain = SpecOpen(dk, *sealed, kContext);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "offline");
}

// Records written by earlier SDKs (format v1: a salt per record, no
// associated data) still open.
TEST(SealedRecordTest, Version1RecordsStillOpen) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  SpecRecord v1;
  v1.version = 1;
  const std::string sealed = SpecSeal(dk, v1, "written in 2026", kContext);
  absl::StatusOr<ParsedSealedRecord> parsed = ParseSealedRecord(sealed);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->version, 1);
  absl::StatusOr<std::string> plain = OpenRecord(*parsed, dk, CanonicalEncryptionContext(kContext));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(*plain, "written in 2026");
  // Associated data did not exist in v1; presenting some fails.
  EXPECT_EQ(OpenRecord(*parsed, dk, CanonicalEncryptionContext(kContext), "ad").status().message(),
            "decryption failed");
}

// v2: one salt (so one derived key and commitment) per data key, a fresh
// nonce per record, and associated data bound after the context.
TEST(SealedRecordTest, OneMaterialSealsManyRecordsWithFreshNonces) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  SealedRecordFields fields{"tenants/acme/keys/crm", "acme/orders/2026-11", "blob"};
  const std::string canonical = CanonicalEncryptionContext(kContext);
  auto material = *RecordKeyMaterial::New(dk, fields, canonical);
  const std::string a = *material->Seal("a", "record 1");
  const std::string b = *material->Seal("b", "record 2");
  auto pa = *ParseSealedRecord(a);
  auto pb = *ParseSealedRecord(b);
  EXPECT_EQ(pa.header, pb.header);
  EXPECT_EQ(pa.header, material->header());
  EXPECT_NE(pa.nonce, pb.nonce);
  // Counter nonces: same 4-byte prefix, counter 0 then 1.
  EXPECT_EQ(pa.nonce.substr(0, 4), pb.nonce.substr(0, 4));
  EXPECT_EQ(pa.nonce.substr(4), std::string(8, '\0'));
  EXPECT_EQ(pb.nonce.substr(4), std::string("\0\0\0\0\0\0\0\x01", 8));
  EXPECT_TRUE(material->Matches(pa));
  EXPECT_EQ(*material->Open(pa, "record 1"), "a");
  EXPECT_EQ(material->Open(pa, "record 2").status().message(), "decryption failed");
  // The spec's recipe agrees, associated data included.
  EXPECT_EQ(*SpecOpen(dk, b, kContext, "record 2"), "b");
  EXPECT_FALSE(SpecOpen(dk, b, kContext).ok());
  // Another context is another material.
  auto other_context =
      *RecordKeyMaterial::New(dk, fields, CanonicalEncryptionContext({{"customer", "43"}}),
                              std::string(ParseSealedRecord(a)->salt));
  EXPECT_EQ(other_context->Open(pa, "record 1").status().message(), "decryption failed");
  // A record of another salt is not this material's.
  const std::string other = *SealRecord(dk, fields, "c", canonical);
  EXPECT_FALSE(material->Matches(*ParseSealedRecord(other)));
  EXPECT_EQ(*OpenRecord(*ParseSealedRecord(other), dk, canonical), "c");
}

// A child process must not continue a material's nonce counter: it would
// repeat the parent's nonces under the same key.
TEST(SealedRecordTest, MaterialRefusesToSealInAForkedChild) {
  crypto::SecretBytes dk = crypto::RandomSecret(32);
  SealedRecordFields fields{"tenants/acme/keys/crm", "acme/orders/2026-11", "blob"};
  auto material = *RecordKeyMaterial::New(dk, fields, CanonicalEncryptionContext({}));
  ASSERT_TRUE(material->Seal("before fork", "").ok());
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    absl::StatusOr<std::string> sealed = material->Seal("in child", "");
    const bool refused = sealed.status().code() == absl::StatusCode::kFailedPrecondition &&
                         absl::StrContains(sealed.status().message(), "fork");
    _exit(refused && !material->SealableHere() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(material->Seal("parent goes on", "").ok());
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

  SpecRecord v3;
  v3.version = 3;
  EXPECT_TRUE(
      FailsWith(SpecSeal(dk, v3, "x", kContext),
                "unsupported sealed record format version 3 (this SDK reads versions 1 and 2)"));
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
