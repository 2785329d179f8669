// Envelope: the data plane. Issues data keys and encrypts small payloads
// under segment keys, decrypts the resulting ciphertext blobs, and derives
// blind index keys (docs/FORMAT.md), checking on every call that the master
// key, the master version the segment key is wrapped under, the segment and
// the segment-key version are all usable.
//
// Errors: InvalidArgument for malformed input and for a blob that does not
// authenticate (wrong context, segment, tenant, altered bytes: one message,
// "decryption failed", so nothing says which part was wrong); NotFound for
// an unknown key; FailedPrecondition naming the state for an unusable key,
// version or segment. No message ever holds key bytes or plaintext.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_KEYS_ENVELOPE_H_
#define CLAVIS_KMS_KEYS_ENVELOPE_H_

#include <string>

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"
#include "kms/keys/encryption_context.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/keys/key_repository.h"

namespace clavis::kms {

constexpr size_t kDataKeySize = 32;
constexpr size_t kMaxEncryptPlaintext = 4096;

struct DataKey {
  crypto::SecretBytes plaintext;  // 32 bytes
  std::string ciphertext_blob;
  uint32_t key_version = 0;  // master version the segment key is wrapped under
  uint32_t segment_key_version = 0;
};

struct EncryptResult {
  std::string ciphertext_blob;
  uint32_t segment_key_version = 0;
};

struct DecryptResult {
  crypto::SecretBytes plaintext;
  KeyName key;
  std::string segment;
  uint32_t segment_key_version = 0;
};

class Envelope {
 public:
  // REQUIRES: both outlive the object.
  Envelope(KeyRepository* repository, KeyLifecycle* lifecycle);

  absl::StatusOr<DataKey> GenerateDataKey(const SegmentName& segment,
                                          const EncryptionContext& context);
  // REQUIRES: plaintext.size() <= kMaxEncryptPlaintext (else InvalidArgument).
  absl::StatusOr<EncryptResult> Encrypt(const SegmentName& segment,
                                        const crypto::SecretBytes& plaintext,
                                        const EncryptionContext& context);
  // `expected_key`, if set, must be the blob's key (else InvalidArgument).
  absl::StatusOr<DecryptResult> Decrypt(absl::string_view ciphertext_blob,
                                        const EncryptionContext& context,
                                        const std::optional<KeyName>& expected_key);
  // Decrypts and encrypts again under the segment's current key version,
  // bound to `new_context`.
  absl::StatusOr<EncryptResult> ReEncrypt(absl::string_view ciphertext_blob,
                                          const EncryptionContext& context,
                                          const EncryptionContext& new_context);

  // The 32-byte key of blind index `index` over `segment`
  // (docs/FORMAT.md "Blind index key (v1)"), derived from segment-key
  // version 1, so every call gives the same key until the segment or the
  // key is destroyed. Creates the segment on first use, like
  // GenerateDataKey, and refuses the same states (key, segment, and the
  // master version segment-key version 1 is wrapped under).
  // InvalidArgument if `index` breaks ValidateBlindIndexName.
  absl::StatusOr<crypto::SecretBytes> DeriveBlindIndexKey(const SegmentName& segment,
                                                          absl::string_view index);

 private:
  struct UsableSegment;
  struct KeyAndSegment;
  // The key and the segment (created on first use), both usable.
  absl::StatusOr<KeyAndSegment> UsableKeyAndSegment(const SegmentName& name);
  absl::StatusOr<UsableSegment> SegmentForEncrypt(const SegmentName& name);
  absl::Status CheckKeyVersionUsable(const KeyEntry& key, uint32_t version);
  // Reads `key` again if it does not know master-key `version` yet: it was
  // read before the segment that names the version, and a rotation and a
  // re-wrap may have come in between. The key read again must be usable.
  absl::Status KnowVersion(std::shared_ptr<const KeyEntry>* key, uint32_t version);
  absl::StatusOr<EncryptResult> Seal(const UsableSegment& segment,
                                     const crypto::SecretBytes& plaintext,
                                     const EncryptionContext& context);

  KeyRepository* const repository_;
  KeyLifecycle* const lifecycle_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_ENVELOPE_H_
