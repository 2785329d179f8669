// Keys of origin EXTERNAL: creation in PENDING_IMPORT, first import, re-import
// of the same material, new versions, expiry of the material and what the
// data plane does about it.
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/key_domain_testing.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyState;
using ::testing::HasSubstr;

class ImportedKeyTest : public testing::KeyDomainTest {
 protected:
  KeyName MakeExternalKey(const std::string& id = "byok") {
    CreateKeyParams p;
    p.tenant = "acme";
    p.key_id = id;
    p.origin = clavis::v1::EXTERNAL;
    auto key = lifecycle_->CreateKey(p);
    EXPECT_TRUE(key.ok()) << key.status();
    return KeyName{"acme", id};
  }
  absl::StatusOr<EncryptResult> EncryptUnder(const KeyName& key, const std::string& segment) {
    return envelope_->Encrypt(SegmentName{key, segment}, crypto::SecretBytes::CopyOf("hello"), {});
  }
};

TEST_F(ImportedKeyTest, ExternalKeyWaitsForMaterial) {
  const KeyName name = MakeExternalKey();
  auto key = lifecycle_->GetKey(name);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->state(), KeyState::PENDING_IMPORT);
  EXPECT_EQ(key->origin(), clavis::v1::EXTERNAL);
  EXPECT_EQ(key->versions_size(), 0);
  auto refused = EncryptUnder(name, "s1");
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("never imported"));
  EXPECT_THAT(refused.status().message(), HasSubstr("clavisctl key import"));
}

TEST_F(ImportedKeyTest, ExternalKeysDoNotRotateOnScheduleOrByClavisd) {
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "sched";
  p.origin = clavis::v1::EXTERNAL;
  p.rotation_period = absl::Hours(24 * 90);
  EXPECT_TRUE(absl::IsInvalidArgument(lifecycle_->CreateKey(p).status()));
  const KeyName name = MakeExternalKey();
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), {}).ok());
  auto rotated = lifecycle_->RotateKey(name);
  ASSERT_TRUE(absl::IsFailedPrecondition(rotated.status()));
  EXPECT_THAT(rotated.status().message(), HasSubstr("--new-version"));
}

TEST_F(ImportedKeyTest, FirstImportEnablesTheKeyWithTheCustomersCheckValue) {
  const KeyName name = MakeExternalKey();
  crypto::SecretBytes material = crypto::RandomSecret(32);
  auto key = lifecycle_->ImportKeyMaterial(name, material, {});
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->state(), KeyState::ENABLED);
  ASSERT_EQ(key->versions_size(), 1);
  EXPECT_EQ(key->primary_version(), 1u);
  EXPECT_EQ(key->versions(0).key_check_value(), *KeyCheckValue(material));
  auto sealed = EncryptUnder(name, "s1");
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  // Survives a restart (cold caches): the material was stored root-wrapped.
  Rebuild();
  auto opened = envelope_->Decrypt(sealed->ciphertext_blob, {}, name);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext.view(), "hello");
}

TEST_F(ImportedKeyTest, GeneratedKeysRefuseImports) {
  const KeyName name = MakeKey();
  auto refused = lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), {});
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_THAT(refused.status().message(), HasSubstr("origin GENERATED"));
}

TEST_F(ImportedKeyTest, ReimportMustBeTheSameMaterial) {
  const KeyName name = MakeExternalKey();
  crypto::SecretBytes material = crypto::RandomSecret(32);
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, material, {}).ok());
  auto other = lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), {});
  ASSERT_TRUE(absl::IsFailedPrecondition(other.status()));
  EXPECT_THAT(other.status().message(), HasSubstr("not the material of key version"));
  auto same = lifecycle_->ImportKeyMaterial(name, material, {});
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->versions_size(), 1);
}

TEST_F(ImportedKeyTest, NewVersionIsANewImportOfNewMaterial) {
  const KeyName name = MakeExternalKey();
  crypto::SecretBytes v1 = crypto::RandomSecret(32);
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, v1, {}).ok());
  auto old_blob = EncryptUnder(name, "s1");
  ASSERT_TRUE(old_blob.ok());
  ImportTarget target;
  target.new_version = true;
  auto again = lifecycle_->ImportKeyMaterial(name, v1, target);
  ASSERT_TRUE(absl::IsFailedPrecondition(again.status()));
  EXPECT_THAT(again.status().message(), HasSubstr("already version 1"));
  auto rotated = lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), target);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->primary_version(), 2u);
  // Old data still decrypts; segments re-wrap onto the new version.
  EXPECT_TRUE(envelope_->Decrypt(old_blob->ciphertext_blob, {}, name).ok());
  auto progress = lifecycle_->RewrapSegments(name, "", 100);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rewrapped, 1u);
}

TEST_F(ImportedKeyTest, ExpiredMaterialMakesTheKeyUnusableUntilReimported) {
  const KeyName name = MakeExternalKey();
  crypto::SecretBytes material = crypto::RandomSecret(32);
  ImportTarget target;
  target.valid_to = clock_.Now() + absl::Hours(1);
  auto key = lifecycle_->ImportKeyMaterial(name, material, target);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_TRUE(key->versions(0).has_material_expire_time());
  auto blob = EncryptUnder(name, "s1");
  ASSERT_TRUE(blob.ok());

  clock_.Advance(absl::Hours(1));
  auto refused = envelope_->Decrypt(blob->ciphertext_blob, {}, name);
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(refused.status().message(), HasSubstr("expired"));
  // The expiry was written down: material purged, states PENDING_IMPORT.
  auto after = lifecycle_->GetKey(name);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state(), KeyState::PENDING_IMPORT);
  EXPECT_EQ(after->versions(0).state(), KeyState::PENDING_IMPORT);
  Rebuild();
  EXPECT_TRUE(absl::IsFailedPrecondition(EncryptUnder(name, "s2").status()));
  EXPECT_TRUE(
      absl::IsFailedPrecondition(envelope_->Decrypt(blob->ciphertext_blob, {}, name).status()));

  // Other material is refused; the same material brings everything back.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), {}).status()));
  auto restored = lifecycle_->ImportKeyMaterial(name, material, {});
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->state(), KeyState::ENABLED);
  EXPECT_EQ(restored->versions(0).state(), KeyState::ENABLED);
  EXPECT_FALSE(restored->versions(0).has_material_expire_time());
  auto opened = envelope_->Decrypt(blob->ciphertext_blob, {}, name);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->plaintext.view(), "hello");
}

TEST_F(ImportedKeyTest, GetKeyAloneNoticesAnExpiry) {
  const KeyName name = MakeExternalKey();
  ImportTarget target;
  target.valid_to = clock_.Now() + absl::Minutes(5);
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), target).ok());
  auto watch = events_.Subscribe("acme");
  clock_.Advance(absl::Minutes(6));
  auto key = lifecycle_->GetKey(name);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->state(), KeyState::PENDING_IMPORT);
  clavis::v1::KeyEvent event;
  ASSERT_EQ(watch->Next(absl::Seconds(1), &event), KeyEventSubscription::WaitResult::kEvent);
  EXPECT_EQ(event.type(), clavis::v1::KeyEvent::MATERIAL_EXPIRED);
  EXPECT_EQ(event.version(), 1u);
}

TEST_F(ImportedKeyTest, ValidToMustLieInTheFuture) {
  const KeyName name = MakeExternalKey();
  ImportTarget target;
  target.valid_to = clock_.Now() - absl::Seconds(1);
  auto refused = lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), target);
  ASSERT_TRUE(absl::IsInvalidArgument(refused.status()));
  EXPECT_THAT(refused.status().message(), HasSubstr("future"));
}

TEST_F(ImportedKeyTest, DestroyedVersionsTakeNoMaterial) {
  limits_.min_destruction_window = absl::Seconds(1);
  Rebuild();
  const KeyName name = MakeExternalKey();
  crypto::SecretBytes v1 = crypto::RandomSecret(32);
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, v1, {}).ok());
  ImportTarget fresh;
  fresh.new_version = true;
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), fresh).ok());
  const KeyVersionName version{name, 1};
  ASSERT_TRUE(lifecycle_->ScheduleKeyVersionDestruction(version, absl::Seconds(1)).ok());
  ImportTarget into_v1;
  into_v1.version = 1;
  auto refused = lifecycle_->ImportKeyMaterial(name, v1, into_v1);
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_THAT(refused.status().message(), HasSubstr("PENDING_DESTRUCTION"));
}

TEST_F(ImportedKeyTest, NothingIsWrappedUnderExpiredMaterial) {
  const KeyName name = MakeExternalKey();
  ImportTarget target;
  target.valid_to = clock_.Now() + absl::Minutes(5);
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, crypto::RandomSecret(32), target).ok());
  ASSERT_TRUE(EncryptUnder(name, "old").ok());
  clock_.Advance(absl::Minutes(6));
  // No segment is created, rotated or re-wrapped under it (each call sees
  // the expiry first), and no segment record was written.
  EXPECT_TRUE(absl::IsFailedPrecondition(EncryptUnder(name, "new").status()));
  EXPECT_TRUE(
      absl::IsFailedPrecondition(lifecycle_->CreateSegment(SegmentName{name, "created"}).status()));
  EXPECT_TRUE(
      absl::IsFailedPrecondition(lifecycle_->RotateSegment(SegmentName{name, "old"}).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(lifecycle_->RewrapSegments(name, "", 10).status()));
  EXPECT_TRUE(absl::IsNotFound(repository_->GetSegment(SegmentName{name, "new"}).status()));
}

TEST_F(ImportedKeyTest, ExpiryWhileDisabledNeverYieldsAnEnabledKeyWithoutMaterial) {
  const KeyName name = MakeExternalKey();
  crypto::SecretBytes material = crypto::RandomSecret(32);
  ImportTarget target;
  target.valid_to = clock_.Now() + absl::Minutes(5);
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, material, target).ok());
  ASSERT_TRUE(lifecycle_->DisableKey(name).ok());
  clock_.Advance(absl::Minutes(6));
  auto disabled = lifecycle_->GetKey(name);
  ASSERT_TRUE(disabled.ok());
  EXPECT_EQ(disabled->state(), KeyState::DISABLED);  // the admin's decision stands
  auto enabled = lifecycle_->EnableKey(name);
  ASSERT_TRUE(enabled.ok()) << enabled.status();
  EXPECT_EQ(enabled->state(), KeyState::PENDING_IMPORT);
  EXPECT_TRUE(absl::IsFailedPrecondition(EncryptUnder(name, "s").status()));
  ASSERT_TRUE(lifecycle_->ImportKeyMaterial(name, material, {}).ok());
  EXPECT_EQ(lifecycle_->GetKey(name)->state(), KeyState::ENABLED);
  EXPECT_TRUE(EncryptUnder(name, "s").ok());
}

TEST_F(ImportedKeyTest, KeysWaitingForMaterialCanBeDisabledAndDestroyed) {
  limits_.min_destruction_window = absl::Seconds(1);
  Rebuild();
  const KeyName name = MakeExternalKey();
  auto disabled = lifecycle_->DisableKey(name);
  ASSERT_TRUE(disabled.ok()) << disabled.status();
  EXPECT_EQ(disabled->state(), KeyState::DISABLED);
  EXPECT_EQ(lifecycle_->EnableKey(name)->state(), KeyState::PENDING_IMPORT);
  auto scheduled = lifecycle_->ScheduleKeyDestruction(name, absl::Seconds(1));
  ASSERT_TRUE(scheduled.ok()) << scheduled.status();
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(lifecycle_->DestroyKey(name)->state(), KeyState::DESTROYED);
}

TEST_F(ImportedKeyTest, ImportedKeysTakeNoRotationSchedule) {
  const KeyName name = MakeExternalKey();
  KeySettingsUpdate update;
  update.rotation_period = absl::Hours(24 * 90);
  auto refused = lifecycle_->UpdateKeySettings(name, update);
  ASSERT_TRUE(absl::IsFailedPrecondition(refused.status()));
  EXPECT_THAT(refused.status().message(), HasSubstr("cannot rotate on a schedule"));
}

}  // namespace
}  // namespace clavis::kms
