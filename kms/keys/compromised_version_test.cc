// Compromised key versions (KeyLifecycle::MarkKeyVersionCompromised and its
// effect on the data plane and on RewrapSegments), the per-key retirement
// and segment-rotation settings, and RotateSegment's compare-and-set.
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/key_domain_testing.h"

namespace clavis::kms {
namespace {

using ::clavis::v1::KeyEvent;
using ::testing::HasSubstr;
using testing::KeyDomainTest;

class CompromisedVersionTest : public KeyDomainTest {
 protected:
  SegmentName Seg(const KeyName& key, const std::string& label) { return SegmentName{key, label}; }

  static std::vector<KeyEvent::Type> Drain(KeyEventSubscription& sub) {
    std::vector<KeyEvent::Type> types;
    KeyEvent event;
    while (sub.Next(absl::ZeroDuration(), &event) == KeyEventSubscription::WaitResult::kEvent) {
      types.push_back(event.type());
    }
    return types;
  }

  std::string Seal(const SegmentName& segment, const std::string& text) {
    auto sealed = envelope_->Encrypt(segment, crypto::SecretBytes::CopyOf(text), {});
    EXPECT_TRUE(sealed.ok()) << sealed.status();
    return sealed.ok() ? sealed->ciphertext_blob : "";
  }

  absl::StatusOr<std::string> Open(const std::string& blob) {
    auto opened = envelope_->Decrypt(blob, {}, std::nullopt);
    if (!opened.ok()) return opened.status();
    return std::string(opened->plaintext.view());
  }
};

TEST_F(CompromisedVersionTest, ACompromisedVersionDecryptsNothingUntilItsSegmentsAreRewrapped) {
  const KeyName key = MakeKey();
  const std::string blob_a = Seal(Seg(key, "a"), "alice");
  const std::string blob_b = Seal(Seg(key, "b"), "bob");
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());  // v2 primary; a and b still on v1

  clock_.Advance(absl::Seconds(1));
  auto marked = lifecycle_->MarkKeyVersionCompromised(KeyVersionName{key, 1});
  ASSERT_TRUE(marked.ok()) << marked.status();
  EXPECT_EQ(marked->primary_version(), 2u) << "a non-primary version: no rotation";
  EXPECT_TRUE(marked->versions(0).has_compromise_time());
  EXPECT_FALSE(marked->versions(1).has_compromise_time());

  auto refused = Open(blob_a);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("marked compromised"));
  EXPECT_THAT(refused.status().message(), HasSubstr("clavisctl key rewrap tenants/acme/keys/crm"));
  // New data for those segments is refused too (their primary segment key
  // is wrapped under the compromised version).
  EXPECT_EQ(envelope_->GenerateDataKey(Seg(key, "a"), {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // A segment made after the mark is on v2 and works.
  EXPECT_EQ(*Open(Seal(Seg(key, "c"), "carol")), "carol");

  clock_.Advance(absl::Seconds(1));
  auto progress = lifecycle_->RewrapSegments(key, "", 0);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rewrapped, 2u);
  ASSERT_EQ(progress->compromised_uses.size(), 2u) << "one audited use per segment-key version";
  EXPECT_EQ(progress->compromised_uses[0].segment, "a");
  EXPECT_EQ(progress->compromised_uses[0].key_version, 1u);
  EXPECT_EQ(progress->compromised_uses[0].segment_key_version, 1u);
  EXPECT_EQ(progress->segments_rotated, 2u);

  // Old data decrypts again (its segment key moved to v2), and new data gets
  // a segment key that was never wrapped under the compromised version.
  EXPECT_EQ(*Open(blob_a), "alice");
  EXPECT_EQ(*Open(blob_b), "bob");
  auto segment = lifecycle_->GetSegment(Seg(key, "a"));
  ASSERT_TRUE(segment.ok());
  EXPECT_EQ(segment->primary_version(), 2u);
  for (const auto& v : segment->versions()) EXPECT_EQ(v.wrapped_under_key_version(), 2u);
  auto fresh = envelope_->GenerateDataKey(Seg(key, "a"), {});
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->segment_key_version, 2u);

  uint64_t scanned = 0;
  auto usage = lifecycle_->KeyVersionUsage(key, &scanned);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->at(1).segment_key_versions, 0u) << "the compromised version protects nothing";

  // A second re-wrap has nothing left to do and uses the version no more.
  clock_.Advance(absl::Seconds(1));
  auto again = lifecycle_->RewrapSegments(key, "", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->compromised_uses.empty());
  EXPECT_EQ(again->rewrapped, 0u);
}

TEST_F(CompromisedVersionTest, MarkingThePrimaryOfAGeneratedKeyRotatesInTheSameWrite) {
  const KeyName key = MakeKey();
  const std::string blob = Seal(Seg(key, "a"), "alice");
  auto sub = events_.Subscribe("acme");
  clock_.Advance(absl::Seconds(1));
  auto marked = lifecycle_->MarkKeyVersionCompromised(KeyVersionName{key, 1});
  ASSERT_TRUE(marked.ok()) << marked.status();
  EXPECT_EQ(marked->primary_version(), 2u);
  ASSERT_EQ(marked->versions_size(), 2);
  EXPECT_TRUE(marked->versions(0).has_compromise_time());
  EXPECT_EQ(marked->versions(1).state(), clavis::v1::ENABLED);

  EXPECT_THAT(Drain(*sub),
              ::testing::ElementsAre(KeyEvent::ROTATED, KeyEvent::VERSION_COMPROMISED));

  EXPECT_EQ(Open(blob).status().code(), absl::StatusCode::kFailedPrecondition);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(lifecycle_->RewrapSegments(key, "", 0).ok());
  EXPECT_EQ(*Open(blob), "alice");

  EXPECT_THAT(Drain(*sub), ::testing::ElementsAre(KeyEvent::SEGMENT_ROTATED))
      << "the segment got a fresh key for new data";
  // Marking again changes nothing and publishes nothing.
  clock_.Advance(absl::Seconds(1));
  auto twice = lifecycle_->MarkKeyVersionCompromised(KeyVersionName{key, 1});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->versions_size(), 2);
  EXPECT_TRUE(Drain(*sub).empty());
}

TEST_F(CompromisedVersionTest, RefusedWhereItCannotHelp) {
  const KeyName key = MakeKey();
  clock_.Advance(absl::Seconds(1));
  auto missing = lifecycle_->MarkKeyVersionCompromised(KeyVersionName{key, 9});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(lifecycle_->MarkKeyVersionCompromised(KeyVersionName{KeyName{"acme", "nope"}, 1})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  // The primary of a disabled key is replaced too: the key must not come
  // back with the leaked version primary.
  ASSERT_TRUE(lifecycle_->DisableKey(key).ok());
  auto disabled = lifecycle_->MarkKeyVersionCompromised(KeyVersionName{key, 1});
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  EXPECT_EQ(disabled->primary_version(), 2u);
  EXPECT_EQ(disabled->state(), clavis::v1::DISABLED);
  ASSERT_TRUE(lifecycle_->EnableKey(key).ok());

  // Imported keys: clavisd cannot make the replacement primary.
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "byok";
  p.origin = clavis::v1::EXTERNAL;
  ASSERT_TRUE(lifecycle_->CreateKey(p).ok());
  const KeyName byok{"acme", "byok"};
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(byok, crypto::RandomSecret(32), {}).ok());
  clock_.Advance(absl::Seconds(1));
  auto imported = lifecycle_->MarkKeyVersionCompromised(KeyVersionName{byok, 1});
  ASSERT_EQ(imported.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(imported.status().message(), HasSubstr("--new-version"));
  ImportTarget next;
  next.new_version = true;
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(byok, crypto::RandomSecret(32), next).ok());
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(lifecycle_->MarkKeyVersionCompromised(KeyVersionName{byok, 1}).ok());
}

TEST_F(CompromisedVersionTest, TheMarkSurvivesARestartAndDisablingDoesNotLiftIt) {
  const KeyName key = MakeKey();
  const std::string blob = Seal(Seg(key, "a"), "alice");
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(lifecycle_->MarkKeyVersionCompromised(KeyVersionName{key, 1}).ok());
  Rebuild();  // cold caches, same store
  EXPECT_EQ(Open(blob).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(lifecycle_->DisableKeyVersion(KeyVersionName{key, 1}).ok());
  ASSERT_TRUE(lifecycle_->EnableKeyVersion(KeyVersionName{key, 1}).ok());
  auto still = Open(blob);
  ASSERT_EQ(still.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(still.status().message(), HasSubstr("compromised"));
  // Re-wrap works from a disabled compromised version as well.
  ASSERT_TRUE(lifecycle_->DisableKeyVersion(KeyVersionName{key, 1}).ok());
  clock_.Advance(absl::Seconds(1));
  auto progress = lifecycle_->RewrapSegments(key, "", 0);
  ASSERT_TRUE(progress.ok());
  EXPECT_EQ(progress->compromised_uses.size(), 1u);
  EXPECT_EQ(*Open(blob), "alice");
}

TEST_F(CompromisedVersionTest, ALeakFoundAfterTheRewrapStillGivesEverySegmentAFreshKey) {
  const KeyName key = MakeKey();
  const std::string blob = Seal(Seg(key, "old"), "alice");
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(lifecycle_->RewrapSegments(key, "", 0).ok());  // nothing left on v1
  ASSERT_TRUE(lifecycle_->RevokeSegment(Seg(key, "old")).ok());
  clock_.Advance(absl::Seconds(1));
  Seal(Seg(key, "new"), "bob");  // created under v2 only
  clock_.Advance(absl::Seconds(1));
  // Later, v1 turns out to have leaked, with an old copy of the store: the
  // key of segment "old" was wrapped under it then.
  ASSERT_TRUE(lifecycle_->MarkKeyVersionCompromised(KeyVersionName{key, 1}).ok());
  clock_.Advance(absl::Seconds(1));
  auto progress = lifecycle_->RewrapSegments(key, "", 0);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_TRUE(progress->compromised_uses.empty()) << "nothing was wrapped under v1 any more";
  EXPECT_EQ(progress->segments_rotated, 1u) << "only the segment whose key predates v2, "
                                               "revoked or not";
  EXPECT_EQ(lifecycle_->GetSegment(Seg(key, "old"))->primary_version(), 2u);
  EXPECT_EQ(lifecycle_->GetSegment(Seg(key, "new"))->primary_version(), 1u);
  ASSERT_TRUE(lifecycle_->EnableSegment(Seg(key, "old")).ok());
  EXPECT_EQ(*Open(blob), "alice") << "old data still decrypts";
  clock_.Advance(absl::Seconds(1));
  auto again = lifecycle_->RewrapSegments(key, "", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->segments_rotated, 0u) << "once is enough";
}

TEST_F(CompromisedVersionTest, RetirementAndSegmentRotationSettingsAreValidated) {
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "crm";
  p.segment_rotation_period = absl::Seconds(5);  // below the one-day minimum
  auto short_period = lifecycle_->CreateKey(p);
  ASSERT_EQ(short_period.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(short_period.status().message(), HasSubstr("segment rotation period"));
  p.segment_rotation_period = absl::Hours(24 * 30);
  p.version_retirement = static_cast<clavis::v1::VersionRetirement>(42);
  auto bad = lifecycle_->CreateKey(p);
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("DESTROY_UNUSED_VERSIONS"));
  p.version_retirement = clavis::v1::DESTROY_UNUSED_VERSIONS;
  auto created = lifecycle_->CreateKey(p);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->segment_rotation_period().seconds(), 30 * 24 * 3600);
  EXPECT_EQ(created->version_retirement(), clavis::v1::DESTROY_UNUSED_VERSIONS);

  KeySettingsUpdate u;
  u.segment_rotation_period = absl::ZeroDuration();
  u.version_retirement = clavis::v1::DISABLE_UNUSED_VERSIONS;
  auto updated = lifecycle_->UpdateKeySettings(KeyName{"acme", "crm"}, u);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_FALSE(updated->has_segment_rotation_period());
  EXPECT_EQ(updated->version_retirement(), clavis::v1::DISABLE_UNUSED_VERSIONS);
  KeySettingsUpdate negative;
  negative.segment_rotation_period = absl::Seconds(-1);
  EXPECT_EQ(lifecycle_->UpdateKeySettings(KeyName{"acme", "crm"}, negative).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CompromisedVersionTest, SegmentRotationWithCompareAndSetHappensOncePerDueTime) {
  const KeyName key = MakeKey();
  ASSERT_TRUE(lifecycle_->CreateSegment(Seg(key, "a")).ok());
  auto first = lifecycle_->RotateSegment(Seg(key, "a"), 1u);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->primary_version(), 2u);
  auto second = lifecycle_->RotateSegment(Seg(key, "a"), 1u);  // a racing scheduler
  ASSERT_EQ(second.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.status().message(), HasSubstr("rotated already"));
  EXPECT_TRUE(lifecycle_->RotateSegment(Seg(key, "a")).ok()) << "no condition: always rotates";
  EXPECT_EQ(lifecycle_->GetSegment(Seg(key, "a"))->primary_version(), 3u);
}

}  // namespace
}  // namespace clavis::kms
