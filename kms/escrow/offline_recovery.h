// OfflineRecovery: the customer's way out, with no Clavis server and no
// store (clavis-recover). Given an escrow bundle and the customer's own
// copies of their imported key material, it unwraps segment keys and opens
// ciphertext blobs (the data keys GenerateDataKey returned, or Encrypt's
// small payloads), exactly as clavisd would.
//
// Materials are matched to key versions by their key check value, so the
// caller need not know which file is which version. Errors say what is
// missing ("no material for key version 2 (key check value ...)"), never
// echo key bytes, and a blob that does not authenticate gives clavisd's
// "decryption failed" message.
//
// Thread safety: const methods may be called concurrently.
#ifndef CLAVIS_KMS_ESCROW_OFFLINE_RECOVERY_H_
#define CLAVIS_KMS_ESCROW_OFFLINE_RECOVERY_H_

#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "crypto/aead.h"
#include "crypto/secret_bytes.h"
#include "kms/escrow/escrow_bundle.h"
#include "kms/keys/encryption_context.h"

namespace clavis::kms {

class OfflineRecovery {
 public:
  // InvalidArgument if a material is not 32 bytes or matches no version of
  // the bundle. Versions without a material are fine until a blob needs one.
  static absl::StatusOr<std::unique_ptr<OfflineRecovery>> Create(
      EscrowBundle bundle, const std::vector<crypto::SecretBytes>& materials);

  // The plaintext of a ciphertext blob made under the bundle's key, bound to
  // `context`.
  absl::StatusOr<crypto::SecretBytes> DecryptBlob(absl::string_view blob,
                                                  const EncryptionContext& context) const;

  // Key versions for which a material was given.
  std::vector<uint32_t> MatchedVersions() const;

 private:
  explicit OfflineRecovery(EscrowBundle bundle) : bundle_(std::move(bundle)) {}
  absl::StatusOr<crypto::SecretBytes> SegmentKey(const std::string& segment,
                                                 uint32_t segment_version) const;

  const EscrowBundle bundle_;
  std::map<std::string, const EscrowSegment*> segments_;
  // AES-256-GCM under each matched master-key version's material.
  std::map<uint32_t, std::unique_ptr<crypto::Aead>> masters_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ESCROW_OFFLINE_RECOVERY_H_
