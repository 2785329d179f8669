#include "kms/escrow/offline_recovery.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kms/keys/ciphertext_blob.h"
#include "kms/keys/key_repository.h"

namespace clavis::kms {
namespace {

constexpr size_t kNonceSize = 12;

}  // namespace

absl::StatusOr<std::unique_ptr<OfflineRecovery>> OfflineRecovery::Create(
    EscrowBundle bundle, const std::vector<crypto::SecretBytes>& materials) {
  std::unique_ptr<OfflineRecovery> out(new OfflineRecovery(std::move(bundle)));
  for (const EscrowSegment& s : out->bundle_.segments) out->segments_[s.segment] = &s;
  std::vector<std::string> known;
  for (const auto& v : out->bundle_.header.key_versions) {
    known.push_back(absl::StrCat(v.version, "=", v.key_check_value));
  }
  for (size_t i = 0; i < materials.size(); ++i) {
    if (materials[i].size() != crypto::Aead::kKeySize) {
      return absl::InvalidArgumentError(absl::StrCat("key material #", i + 1, " is ",
                                                     materials[i].size(),
                                                     " bytes; imported material is 32 bytes"));
    }
    auto kcv = KeyCheckValue(materials[i]);
    if (!kcv.ok()) return kcv.status();
    bool matched = false;
    for (const auto& v : out->bundle_.header.key_versions) {
      if (!crypto::ConstantTimeEquals(v.key_check_value, *kcv)) continue;
      auto aead = crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm,
                                    crypto::SecretBytes::CopyOf(materials[i].view()));
      if (!aead.ok()) return aead.status();
      out->masters_[v.version] = *std::move(aead);
      matched = true;
    }
    if (!matched) {
      return absl::InvalidArgumentError(
          absl::StrCat("key material #", i + 1, " (key check value ", *kcv, ") is no version of ",
                       out->bundle_.header.key.ToString(),
                       " (versions and check values: ", absl::StrJoin(known, ", "), ")"));
    }
  }
  return out;
}

std::vector<uint32_t> OfflineRecovery::MatchedVersions() const {
  std::vector<uint32_t> out;
  for (const auto& [version, aead] : masters_) out.push_back(version);
  return out;
}

absl::StatusOr<crypto::SecretBytes> OfflineRecovery::SegmentKey(const std::string& segment,
                                                                uint32_t segment_version) const {
  auto found = segments_.find(segment);
  if (found == segments_.end()) {
    return absl::NotFoundError(absl::StrCat("segment ", QuoteForError(segment),
                                            " is not in the escrow bundle (exported before it "
                                            "was created?)"));
  }
  for (const EscrowSegmentVersion& v : found->second->versions) {
    if (v.version != segment_version) continue;
    auto master = masters_.find(v.key_version);
    if (master == masters_.end()) {
      std::string kcv;
      for (const auto& k : bundle_.header.key_versions) {
        if (k.version == v.key_version) kcv = k.key_check_value;
      }
      return absl::FailedPreconditionError(
          absl::StrCat("segment ", QuoteForError(segment), " version ", segment_version,
                       " is wrapped under key version ", v.key_version, " (key check value ",
                       kcv.empty() ? "unknown" : kcv, "); give its material too"));
    }
    const absl::string_view wrapped = v.wrapped_key;
    auto key = master->second->OpenSecret(
        wrapped.substr(0, kNonceSize), wrapped.substr(kNonceSize),
        SegmentKeyWrapAssociatedData(bundle_.header.key, v.key_version, segment, v.version));
    if (!key.ok()) {
      return absl::DataLossError(absl::StrCat("segment ", QuoteForError(segment), " version ",
                                              segment_version,
                                              " does not unwrap with the given material: the "
                                              "bundle was altered"));
    }
    return key;
  }
  return absl::NotFoundError(absl::StrCat("segment ", QuoteForError(segment),
                                          " has no key version ", segment_version,
                                          " in the escrow bundle (destroyed, or rotated after "
                                          "the export?)"));
}

absl::StatusOr<crypto::SecretBytes> OfflineRecovery::DecryptBlob(
    absl::string_view blob, const EncryptionContext& context) const {
  auto parsed = ParseCiphertextBlob(blob);
  if (!parsed.ok()) return parsed.status();
  const KeyName key{parsed->header.tenant, parsed->header.key_id};
  if (!(key == bundle_.header.key)) {
    return absl::InvalidArgumentError(absl::StrCat("the ciphertext blob was made with key ",
                                                   key.ToString(), ", the escrow bundle is of ",
                                                   bundle_.header.key.ToString()));
  }
  if (auto s = ValidateEncryptionContext(context); !s.ok()) return s;
  auto segment_key = SegmentKey(parsed->header.segment, parsed->header.segment_key_version);
  if (!segment_key.ok()) return segment_key.status();
  auto aead = crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, *std::move(segment_key));
  if (!aead.ok()) return aead.status();
  auto plaintext = (*aead)->OpenSecret(
      parsed->nonce, parsed->ciphertext_and_tag,
      BlobAssociatedData(parsed->header_bytes, CanonicalEncryptionContext(context)));
  if (!plaintext.ok()) return BlobDecryptionFailed();
  return plaintext;
}

}  // namespace clavis::kms
