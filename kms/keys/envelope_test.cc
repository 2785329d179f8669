#include "kms/keys/envelope.h"

#include "absl/strings/match.h"
#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/ciphertext_blob.h"
#include "kms/keys/key_domain_testing.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;
using testing::KeyDomainTest;

class EnvelopeTest : public KeyDomainTest {
 protected:
  SegmentName Seg(const std::string& segment, const KeyName& key = {"acme", "crm"}) {
    return SegmentName{key, segment};
  }
  const EncryptionContext ctx_{{"customer", "42"}, {"table", "orders"}};
};

TEST_F(EnvelopeTest, GeneratedDataKeyDecryptsWithTheSameContext) {
  MakeKey();
  auto dk = envelope_->GenerateDataKey(Seg("acme/orders/2026-11"), ctx_);
  ASSERT_TRUE(dk.ok()) << dk.status();
  EXPECT_EQ(dk->plaintext.size(), 32u);
  EXPECT_EQ(dk->segment_key_version, 1u);
  auto back = envelope_->Decrypt(dk->ciphertext_blob, ctx_, std::nullopt);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->plaintext == dk->plaintext);
  EXPECT_EQ(back->segment, "acme/orders/2026-11");
}

TEST_F(EnvelopeTest, DecryptWorksAfterRestartWithColdCaches) {
  MakeKey();
  auto dk = envelope_->GenerateDataKey(Seg("s1"), ctx_);
  ASSERT_TRUE(dk.ok());
  Rebuild();
  auto back = envelope_->Decrypt(dk->ciphertext_blob, ctx_, std::nullopt);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->plaintext == dk->plaintext);
}

TEST_F(EnvelopeTest, DecryptFailsWithAnotherContextWithoutSayingWhichPart) {
  MakeKey();
  auto dk = envelope_->GenerateDataKey(Seg("s1"), ctx_);
  ASSERT_TRUE(dk.ok());
  for (const EncryptionContext& other :
       {EncryptionContext{}, EncryptionContext{{"customer", "43"}, {"table", "orders"}},
        EncryptionContext{{"customer", "42"}}}) {
    auto back = envelope_->Decrypt(dk->ciphertext_blob, other, std::nullopt);
    EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(back.status().message(), HasSubstr("decryption failed"));
  }
}

TEST_F(EnvelopeTest, BlobMovedToAnotherSegmentOrTenantDoesNotDecrypt) {
  MakeKey();
  MakeKey("globex", "crm");
  auto dk = envelope_->GenerateDataKey(Seg("s1"), ctx_);
  ASSERT_TRUE(dk.ok());
  ASSERT_TRUE(envelope_->GenerateDataKey(Seg("s2"), ctx_).ok());
  ASSERT_TRUE(envelope_->GenerateDataKey(Seg("s1", {"globex", "crm"}), ctx_).ok());
  auto parsed = ParseCiphertextBlob(dk->ciphertext_blob);
  ASSERT_TRUE(parsed.ok());

  CiphertextBlobHeader moved = parsed->header;
  moved.segment = "s2";
  std::string blob = moved.Encode() + parsed->nonce + parsed->ciphertext_and_tag;
  EXPECT_THAT(envelope_->Decrypt(blob, ctx_, std::nullopt).status().message(),
              HasSubstr("decryption failed"));

  moved = parsed->header;
  moved.tenant = "globex";
  blob = moved.Encode() + parsed->nonce + parsed->ciphertext_and_tag;
  auto foreign = envelope_->Decrypt(blob, ctx_, std::nullopt);
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(foreign.status().message(), HasSubstr("decryption failed"));
}

TEST_F(EnvelopeTest, EveryFlippedBitOfTheBlobIsRejectedCleanly) {
  MakeKey();
  auto dk = envelope_->GenerateDataKey(Seg("s1"), ctx_);
  ASSERT_TRUE(dk.ok());
  const std::string& blob = dk->ciphertext_blob;
  for (size_t i = 0; i < blob.size() * 8; ++i) {
    std::string bad = blob;
    bad[i / 8] ^= static_cast<char>(1 << (i % 8));
    auto back = envelope_->Decrypt(bad, ctx_, std::nullopt);
    ASSERT_FALSE(back.ok()) << "bit " << i;
    // Either malformed / not authentic (InvalidArgument), or the header now
    // names a key that does not exist (NotFound).
    EXPECT_TRUE(absl::IsInvalidArgument(back.status()) || absl::IsNotFound(back.status()))
        << "bit " << i << ": " << back.status();
  }
}

TEST_F(EnvelopeTest, EveryTruncationOfTheBlobIsRejected) {
  MakeKey();
  auto dk = envelope_->GenerateDataKey(Seg("s1"), ctx_);
  ASSERT_TRUE(dk.ok());
  for (size_t n = 0; n < dk->ciphertext_blob.size(); ++n) {
    auto back = envelope_->Decrypt(dk->ciphertext_blob.substr(0, n), ctx_, std::nullopt);
    EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST_F(EnvelopeTest, ExpectedKeyMismatchIsRefused) {
  MakeKey();
  auto dk = envelope_->GenerateDataKey(Seg("s1"), ctx_);
  ASSERT_TRUE(dk.ok());
  auto back = envelope_->Decrypt(dk->ciphertext_blob, ctx_, KeyName{"acme", "other"});
  EXPECT_EQ(back.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(back.status().message(), HasSubstr("not made with key tenants/acme/keys/other"));
}

TEST_F(EnvelopeTest, DisablingTheMasterKeyStopsEverySegmentAndEnablingRestores) {
  const KeyName key = MakeKey();
  auto a = envelope_->GenerateDataKey(Seg("a"), ctx_);
  auto b = envelope_->GenerateDataKey(Seg("b"), ctx_);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(lifecycle_->DisableKey(key).ok());
  for (const auto* dk : {&*a, &*b}) {
    auto back = envelope_->Decrypt(dk->ciphertext_blob, ctx_, std::nullopt);
    EXPECT_EQ(back.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(back.status().message(), HasSubstr("tenants/acme/keys/crm is DISABLED since"));
  }
  EXPECT_EQ(envelope_->GenerateDataKey(Seg("a"), ctx_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(lifecycle_->EnableKey(key).ok());
  EXPECT_TRUE(envelope_->Decrypt(a->ciphertext_blob, ctx_, std::nullopt).ok());
}

TEST_F(EnvelopeTest, RevokingOneSegmentLeavesTheOthersWorking) {
  MakeKey();
  auto a = envelope_->GenerateDataKey(Seg("a"), ctx_);
  auto b = envelope_->GenerateDataKey(Seg("b"), ctx_);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(lifecycle_->RevokeSegment(Seg("a")).ok());
  auto denied = envelope_->Decrypt(a->ciphertext_blob, ctx_, std::nullopt);
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(denied.status().message(), HasSubstr("revoked"));
  EXPECT_TRUE(envelope_->Decrypt(b->ciphertext_blob, ctx_, std::nullopt).ok());
  ASSERT_TRUE(lifecycle_->EnableSegment(Seg("a")).ok());
  EXPECT_TRUE(envelope_->Decrypt(a->ciphertext_blob, ctx_, std::nullopt).ok());
}

TEST_F(EnvelopeTest, MasterRotationKeepsOldDataKeysAndRewrapMovesSegments) {
  const KeyName key = MakeKey();
  auto before = envelope_->GenerateDataKey(Seg("a"), ctx_);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->key_version, 1u);
  auto rotated = lifecycle_->RotateKey(key);
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->primary_version(), 2u);
  // New segments go under version 2; the old segment stays on 1 until re-wrap.
  auto fresh = envelope_->GenerateDataKey(Seg("b"), ctx_);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->key_version, 2u);
  auto progress = lifecycle_->RewrapSegments(key, "", 100);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rewrapped, 1u);
  EXPECT_EQ(progress->already_current, 1u);
  EXPECT_TRUE(progress->next_segment.empty());
  // Version 1 can now go away without losing the old data key.
  ASSERT_TRUE(lifecycle_->DisableKeyVersion(KeyVersionName{key, 1}).ok());
  Rebuild();
  auto back = envelope_->Decrypt(before->ciphertext_blob, ctx_, std::nullopt);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->plaintext == before->plaintext);
  auto again = envelope_->GenerateDataKey(Seg("a"), ctx_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->key_version, 2u);
}

TEST_F(EnvelopeTest, DisabledOldVersionRefusesSegmentsNotYetRewrapped) {
  const KeyName key = MakeKey();
  auto before = envelope_->GenerateDataKey(Seg("a"), ctx_);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  ASSERT_TRUE(lifecycle_->DisableKeyVersion(KeyVersionName{key, 1}).ok());
  auto back = envelope_->Decrypt(before->ciphertext_blob, ctx_, std::nullopt);
  EXPECT_EQ(back.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(back.status().message(), HasSubstr("versions/1 is DISABLED"));
}

TEST_F(EnvelopeTest, SegmentRotationKeepsOldDataKeysReadable) {
  MakeKey();
  auto v1 = envelope_->GenerateDataKey(Seg("a"), ctx_);
  ASSERT_TRUE(v1.ok());
  auto rotated = lifecycle_->RotateSegment(Seg("a"));
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->primary_version(), 2u);
  auto v2 = envelope_->GenerateDataKey(Seg("a"), ctx_);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->segment_key_version, 2u);
  EXPECT_TRUE(envelope_->Decrypt(v1->ciphertext_blob, ctx_, std::nullopt).ok());
}

TEST_F(EnvelopeTest, ReEncryptMovesToTheCurrentSegmentVersionWithoutChangingTheKey) {
  MakeKey();
  auto v1 = envelope_->GenerateDataKey(Seg("a"), ctx_);
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(lifecycle_->RotateSegment(Seg("a")).ok());
  const EncryptionContext new_ctx{{"customer", "42"}};
  auto re = envelope_->ReEncrypt(v1->ciphertext_blob, ctx_, new_ctx);
  ASSERT_TRUE(re.ok()) << re.status();
  EXPECT_EQ(re->segment_key_version, 2u);
  auto back = envelope_->Decrypt(re->ciphertext_blob, new_ctx, std::nullopt);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->plaintext == v1->plaintext);
  EXPECT_FALSE(envelope_->Decrypt(re->ciphertext_blob, ctx_, std::nullopt).ok());
}

TEST_F(EnvelopeTest, EncryptTakesAtMostFourKibibytes) {
  MakeKey();
  auto small = envelope_->Encrypt(Seg("a"), crypto::SecretBytes::CopyOf("api-token"), ctx_);
  ASSERT_TRUE(small.ok());
  auto back = envelope_->Decrypt(small->ciphertext_blob, ctx_, std::nullopt);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->plaintext.view(), "api-token");
  auto max = envelope_->Encrypt(Seg("a"), crypto::SecretBytes(4096), ctx_);
  EXPECT_TRUE(max.ok()) << max.status();
  auto big = envelope_->Encrypt(Seg("a"), crypto::SecretBytes(4097), ctx_);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("at most 4096"));
}

TEST_F(EnvelopeTest, ExplicitSegmentsMustBeCreatedFirst) {
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "strict";
  p.require_explicit_segments = true;
  ASSERT_TRUE(lifecycle_->CreateKey(p).ok());
  const KeyName key{"acme", "strict"};
  auto refused = envelope_->GenerateDataKey(Seg("a", key), ctx_);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("clavisctl segment create"));
  ASSERT_TRUE(lifecycle_->CreateSegment(Seg("a", key)).ok());
  EXPECT_TRUE(envelope_->GenerateDataKey(Seg("a", key), ctx_).ok());
}

TEST_F(EnvelopeTest, UnknownKeyIsNotFound) {
  auto dk = envelope_->GenerateDataKey(Seg("a", {"acme", "nope"}), ctx_);
  EXPECT_EQ(dk.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(dk.status().message(), HasSubstr("tenants/acme/keys/nope not found"));
}

TEST_F(EnvelopeTest, OversizedContextIsRefused) {
  MakeKey();
  EncryptionContext big;
  for (int i = 0; i < 65; ++i) big[absl::StrCat("k", i)] = "v";
  EXPECT_EQ(envelope_->GenerateDataKey(Seg("a"), big).status().code(),
            absl::StatusCode::kInvalidArgument);
  EncryptionContext empty_key{{"", "v"}};
  EXPECT_EQ(envelope_->GenerateDataKey(Seg("a"), empty_key).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EnvelopeTest, DestroyedSegmentIsShreddedAndOthersSurvive) {
  MakeKey();
  auto a = envelope_->GenerateDataKey(Seg("a"), ctx_);
  auto b = envelope_->GenerateDataKey(Seg("b"), ctx_);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(lifecycle_->ScheduleSegmentDestruction(Seg("a"), absl::Hours(24 * 7)).ok());
  EXPECT_EQ(lifecycle_->DestroySegment(Seg("a")).status().code(),
            absl::StatusCode::kFailedPrecondition);  // window not over
  clock_.Advance(absl::Hours(24 * 7) + absl::Seconds(1));
  auto destroyed = lifecycle_->DestroySegment(Seg("a"));
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(destroyed->state(), clavis::v1::DESTROYED);
  Rebuild();
  auto gone = envelope_->Decrypt(a->ciphertext_blob, ctx_, std::nullopt);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gone.status().message(), HasSubstr("DESTROYED"));
  EXPECT_TRUE(envelope_->Decrypt(b->ciphertext_blob, ctx_, std::nullopt).ok());
  // The label cannot silently come back with a new key.
  EXPECT_EQ(envelope_->GenerateDataKey(Seg("a"), ctx_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(EnvelopeTest, ErrorsNeverContainKeyBytes) {
  MakeKey();
  auto dk = envelope_->GenerateDataKey(Seg("a"), ctx_);
  ASSERT_TRUE(dk.ok());
  const std::string hex = crypto::HexEncode(dk->plaintext.view());
  const std::string b64 = crypto::Base64Encode(dk->plaintext.view());
  std::string bad = dk->ciphertext_blob;
  bad.back() ^= 1;
  for (const absl::Status& s :
       {envelope_->Decrypt(bad, ctx_, std::nullopt).status(),
        envelope_->Decrypt(dk->ciphertext_blob, {}, std::nullopt).status()}) {
    EXPECT_FALSE(s.ok());
    EXPECT_FALSE(absl::StrContains(s.message(), hex));
    EXPECT_FALSE(absl::StrContains(s.message(), b64));
    EXPECT_FALSE(absl::StrContains(s.message(), dk->plaintext.view()));
  }
}

}  // namespace
}  // namespace clavis::kms
