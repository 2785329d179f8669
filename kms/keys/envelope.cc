#include "kms/keys/envelope.h"

#include "absl/strings/str_cat.h"
#include "crypto/random.h"
#include "kms/keys/blind_index.h"
#include "kms/keys/ciphertext_blob.h"
#include "kms/keys/resource_views.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyState;

}  // namespace

// The master-key version a segment key is wrapped under must be enabled,
// and its imported material (if any) not expired. An expiry seen here for
// the first time is also written down (ExpireImportedMaterial).
absl::Status Envelope::CheckKeyVersionUsable(const KeyEntry& key, uint32_t version) {
  const internal::KeyVersionRecord* v = key.FindVersion(version);
  const std::string name = KeyVersionName{key.name(), version}.ToString();
  if (v == nullptr) return absl::NotFoundError(absl::StrCat("key version ", name, " not found"));
  if (auto s = VersionCompromised(KeyVersionName{key.name(), version}, *v); !s.ok()) return s;
  if (ImportedMaterialExpired(*v, lifecycle_->clock()->Now())) {
    (void)lifecycle_->ExpireImportedMaterial(key.name());  // best effort; refused either way
    return absl::FailedPreconditionError(absl::StrCat(
        "the imported material of key version ", name, " expired at ",
        FormatTimestamp(FromMicros(v->material_expire_time_us())),
        "; import the same material again (clavisctl key import ", key.name().ToString(), ")"));
  }
  if (v->state() == KeyState::PENDING_IMPORT ||
      (v->root_wrapped_material().empty() && !v->material_fingerprint().empty() &&
       v->state() != KeyState::DESTROYED)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key version ", name, " is PENDING_IMPORT since ",
        FormatTimestamp(FromMicros(v->state_change_time_us())),
        ": its imported material expired; import the same material again (clavisctl key import ",
        key.name().ToString(), ")"));
  }
  if (v->state() == KeyState::ENABLED) return absl::OkStatus();
  if (v->state() == KeyState::PENDING_DESTRUCTION) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key version ", name, " is PENDING_DESTRUCTION until ",
        FormatTimestamp(FromMicros(v->destroy_time_us())),
        "; cancel the destruction (clavisctl key cancel-destroy) or re-wrap its segments"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("key version ", name, " is ", StateName(v->state()), " since ",
                   FormatTimestamp(FromMicros(v->state_change_time_us()))));
}

absl::Status Envelope::KnowVersion(std::shared_ptr<const KeyEntry>* key, uint32_t version) {
  if ((*key)->FindVersion(version) != nullptr) return absl::OkStatus();
  const KeyName name = (*key)->name();
  auto fresh = lifecycle_->CurrentKey(name);
  if (!fresh.ok()) return fresh.status();
  if (auto s = KeyNotUsable(name, (*fresh)->record()); !s.ok()) return s;
  *key = *std::move(fresh);
  return absl::OkStatus();
}

struct Envelope::UsableSegment {
  std::shared_ptr<const KeyEntry> key;
  std::shared_ptr<const SegmentEntry> segment;
  std::shared_ptr<const crypto::Aead> aead;
  uint32_t segment_version = 0;
  uint32_t key_version = 0;
};

Envelope::Envelope(KeyRepository* repository, KeyLifecycle* lifecycle)
    : repository_(repository), lifecycle_(lifecycle) {}

struct Envelope::KeyAndSegment {
  std::shared_ptr<const KeyEntry> key;
  std::shared_ptr<const SegmentEntry> segment;
};

absl::StatusOr<Envelope::KeyAndSegment> Envelope::UsableKeyAndSegment(const SegmentName& name) {
  auto key = lifecycle_->CurrentKey(name.key);
  if (!key.ok()) return key.status();
  if (auto s = KeyNotUsable(name.key, (*key)->record()); !s.ok()) return s;
  auto segment = lifecycle_->GetOrCreateSegment(**key, name);
  if (!segment.ok()) return segment.status();
  if (auto s = SegmentNotUsable(name, (*segment)->record()); !s.ok()) return s;
  return KeyAndSegment{*std::move(key), *std::move(segment)};
}

absl::StatusOr<Envelope::UsableSegment> Envelope::SegmentForEncrypt(const SegmentName& name) {
  auto found = UsableKeyAndSegment(name);
  if (!found.ok()) return found.status();
  const SegmentEntry& segment = *found->segment;
  UsableSegment out;
  out.segment_version = segment.record().primary_version();
  const internal::SegmentVersionRecord* v = segment.FindVersion(out.segment_version);
  if (v == nullptr) {
    return absl::DataLossError(
        absl::StrCat("segment ", name.ToString(), " has no record of its primary version"));
  }
  out.key_version = v->key_version();
  if (auto s = KnowVersion(&found->key, out.key_version); !s.ok()) return s;
  const KeyEntry& key = *found->key;
  if (auto s = CheckKeyVersionUsable(key, out.key_version); !s.ok()) return s;
  auto aead = repository_->SegmentAead(key, segment, out.segment_version);
  if (!aead.ok()) return aead.status();
  out.aead = *std::move(aead);
  out.key = std::move(found->key);
  out.segment = std::move(found->segment);
  return out;
}

absl::StatusOr<EncryptResult> Envelope::Seal(const UsableSegment& s,
                                             const crypto::SecretBytes& plaintext,
                                             const EncryptionContext& context) {
  CiphertextBlobHeader header;
  header.tenant = s.key->name().tenant;
  header.key_id = s.key->name().key_id;
  header.segment = s.segment->name().segment;
  header.segment_key_version = s.segment_version;
  const std::string header_bytes = header.Encode();
  const std::string nonce = crypto::RandomBytes(kBlobNonceSize);
  auto sealed = s.aead->Seal(nonce, plaintext.view(),
                             BlobAssociatedData(header_bytes, CanonicalEncryptionContext(context)));
  if (!sealed.ok()) return sealed.status();
  EncryptResult out;
  out.ciphertext_blob = absl::StrCat(header_bytes, nonce, *sealed);
  out.segment_key_version = s.segment_version;
  return out;
}

absl::StatusOr<DataKey> Envelope::GenerateDataKey(const SegmentName& segment,
                                                  const EncryptionContext& context) {
  if (auto s = ValidateEncryptionContext(context); !s.ok()) return s;
  auto usable = SegmentForEncrypt(segment);
  if (!usable.ok()) return usable.status();
  DataKey out;
  out.plaintext = crypto::RandomSecret(kDataKeySize);
  auto sealed = Seal(*usable, out.plaintext, context);
  if (!sealed.ok()) return sealed.status();
  out.ciphertext_blob = std::move(sealed->ciphertext_blob);
  out.key_version = usable->key_version;
  out.segment_key_version = usable->segment_version;
  return out;
}

absl::StatusOr<EncryptResult> Envelope::Encrypt(const SegmentName& segment,
                                                const crypto::SecretBytes& plaintext,
                                                const EncryptionContext& context) {
  if (plaintext.size() > kMaxEncryptPlaintext) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plaintext is ", plaintext.size(), " bytes; Encrypt takes at most ", kMaxEncryptPlaintext,
        " (use GenerateDataKey and encrypt larger data locally)"));
  }
  if (auto s = ValidateEncryptionContext(context); !s.ok()) return s;
  auto usable = SegmentForEncrypt(segment);
  if (!usable.ok()) return usable.status();
  return Seal(*usable, plaintext, context);
}

absl::StatusOr<DecryptResult> Envelope::Decrypt(absl::string_view ciphertext_blob,
                                                const EncryptionContext& context,
                                                const std::optional<KeyName>& expected_key) {
  if (auto s = ValidateEncryptionContext(context); !s.ok()) return s;
  auto blob = ParseCiphertextBlob(ciphertext_blob);
  if (!blob.ok()) return blob.status();
  const KeyName key_name{blob->header.tenant, blob->header.key_id};
  if (expected_key.has_value() && !(*expected_key == key_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ciphertext blob was not made with key ", expected_key->ToString()));
  }
  const SegmentName segment_name{key_name, blob->header.segment};
  auto key = lifecycle_->CurrentKey(key_name);
  if (!key.ok()) return key.status();
  if (auto s = KeyNotUsable(key_name, (*key)->record()); !s.ok()) return s;
  auto segment = repository_->GetSegment(segment_name);
  // A blob naming a segment that does not exist cannot be authentic (or its
  // segment was purged): same answer as any other mismatch.
  if (absl::IsNotFound(segment.status())) return BlobDecryptionFailed();
  if (!segment.ok()) return segment.status();
  if (auto s = SegmentNotUsable(segment_name, (*segment)->record()); !s.ok()) return s;
  const internal::SegmentVersionRecord* v =
      (*segment)->FindVersion(blob->header.segment_key_version);
  if (v == nullptr) return BlobDecryptionFailed();
  if (auto s = KnowVersion(&*key, v->key_version()); !s.ok()) return s;
  if (auto s = CheckKeyVersionUsable(**key, v->key_version()); !s.ok()) return s;
  auto aead = repository_->SegmentAead(**key, **segment, v->version());
  if (!aead.ok()) return aead.status();
  auto plaintext = (*aead)->OpenSecret(
      blob->nonce, blob->ciphertext_and_tag,
      BlobAssociatedData(blob->header_bytes, CanonicalEncryptionContext(context)));
  if (!plaintext.ok()) return BlobDecryptionFailed();
  DecryptResult out;
  out.plaintext = *std::move(plaintext);
  out.key = key_name;
  out.segment = blob->header.segment;
  out.segment_key_version = v->version();
  return out;
}

absl::StatusOr<EncryptResult> Envelope::ReEncrypt(absl::string_view ciphertext_blob,
                                                  const EncryptionContext& context,
                                                  const EncryptionContext& new_context) {
  if (auto s = ValidateEncryptionContext(new_context); !s.ok()) return s;
  auto decrypted = Decrypt(ciphertext_blob, context, std::nullopt);
  if (!decrypted.ok()) return decrypted.status();
  auto usable = SegmentForEncrypt(SegmentName{decrypted->key, decrypted->segment});
  if (!usable.ok()) return usable.status();
  return Seal(*usable, decrypted->plaintext, new_context);
}

absl::StatusOr<crypto::SecretBytes> Envelope::DeriveBlindIndexKey(const SegmentName& segment,
                                                                  absl::string_view index) {
  if (auto s = ValidateBlindIndexName(index); !s.ok()) return s;
  auto found = UsableKeyAndSegment(segment);
  if (!found.ok()) return found.status();
  const internal::SegmentVersionRecord* v =
      found->segment->FindVersion(kBlindIndexSegmentKeyVersion);
  if (v == nullptr || v->wrapped_key().empty()) {
    return absl::DataLossError(absl::StrCat("segment ", segment.ToString(), " has no key version ",
                                            kBlindIndexSegmentKeyVersion));
  }
  if (auto s = KnowVersion(&found->key, v->key_version()); !s.ok()) return s;
  if (auto s = CheckKeyVersionUsable(*found->key, v->key_version()); !s.ok()) return s;
  auto segment_key = repository_->UnwrapSegmentKey(*found->key, segment.segment, *v);
  if (!segment_key.ok()) return segment_key.status();
  return DeriveBlindIndexKeyFromSegmentKey(*segment_key, segment.key, segment.segment, index);
}

}  // namespace clavis::kms
