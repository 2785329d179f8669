// The Clavis ciphertext blob (format v1, docs/FORMAT.md "Ciphertext blob"):
// what Encrypt and GenerateDataKey return and Decrypt accepts. It names the
// tenant, key, segment and segment-key version that encrypted it, and its
// header is authenticated as associated data together with the canonical
// encryption context, so a blob moved to another tenant, key, segment or
// context fails to decrypt.
//
//   u8   format version (1)
//   u8   algorithm (1 = AES-256-GCM)
//   u8   tenant length, tenant
//   u8   key id length, key id
//   u16  segment length, segment
//   u32  segment-key version
//   12   nonce
//   ...  ciphertext || 16-byte tag
//
// Every parser error is InvalidArgument with a message that says what is
// wrong ("ciphertext blob is truncated", "unsupported ciphertext blob format
// version 7") and never echoes the blob's bytes.
#ifndef CLAVIS_KMS_KEYS_CIPHERTEXT_BLOB_H_
#define CLAVIS_KMS_KEYS_CIPHERTEXT_BLOB_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::kms {

constexpr uint8_t kCiphertextBlobVersion = 1;
constexpr uint8_t kBlobAlgorithmAes256Gcm = 1;
constexpr size_t kBlobNonceSize = 12;
constexpr size_t kBlobTagSize = 16;
// Encrypt's payload limit plus header room.
constexpr size_t kMaxCiphertextBlobSize = 8192;

struct CiphertextBlobHeader {
  uint8_t version = kCiphertextBlobVersion;
  uint8_t algorithm = kBlobAlgorithmAes256Gcm;
  std::string tenant;
  std::string key_id;
  std::string segment;
  uint32_t segment_key_version = 0;

  // The encoded header: the bytes before the nonce.
  std::string Encode() const;
};

struct ParsedCiphertextBlob {
  CiphertextBlobHeader header;
  std::string header_bytes;  // exactly as received, for the AAD
  std::string nonce;
  std::string ciphertext_and_tag;
};

// Parses and validates (names, version, sizes). Does not decrypt.
absl::StatusOr<ParsedCiphertextBlob> ParseCiphertextBlob(absl::string_view blob);

// The one answer to a blob that does not authenticate (wrong context,
// segment, tenant, altered bytes), on- and offline: nothing says which part
// was wrong.
absl::Status BlobDecryptionFailed();

// The associated data of a blob: header bytes || canonical context.
std::string BlobAssociatedData(absl::string_view header_bytes, absl::string_view canonical_context);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_CIPHERTEXT_BLOB_H_
