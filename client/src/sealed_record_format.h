// Constants of the sealed record format, versions 1 and 2. The prose spec,
// which is normative, is docs/FORMAT.md "Sealed record (v2)"; change both
// together, and never change a version's meaning: a change an old reader
// could misread is a new version.
#ifndef CLAVIS_CLIENT_SRC_SEALED_RECORD_FORMAT_H_
#define CLAVIS_CLIENT_SRC_SEALED_RECORD_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace clavis::client_internal {

// "CLSR": Clavis sealed record.
inline constexpr absl::string_view kSealedRecordMagic = "CLSR";
// Written by this SDK. v2 has v1's layout; its salt is fresh per data key
// rather than per record (so a cached data key's record key is derived
// once), and it may bind application associated data.
inline constexpr uint8_t kSealedRecordVersion = 2;
// Still read: records written by earlier SDKs.
inline constexpr uint8_t kSealedRecordVersionV1 = 1;
// AES-256-GCM under an HKDF-SHA256-derived key, with key commitment.
inline constexpr uint8_t kAlgorithmAes256GcmHkdfSha256Committing = 1;

inline constexpr size_t kMaxKeyNameSize = 256;
inline constexpr size_t kMaxSegmentSize = 256;
// The server's ciphertext blob limit (docs/FORMAT.md "Ciphertext blob").
inline constexpr size_t kMaxDataKeyBlobSize = 8192;
inline constexpr size_t kSaltSize = 32;
inline constexpr size_t kCommitmentSize = 32;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kDerivedKeySize = 32;
// Plaintext per record: 1 GiB (AES-GCM allows ~64 GiB per key; larger data
// belongs in a streaming format).
inline constexpr size_t kMaxRecordPlaintextSize = size_t{1} << 30;

// Records one (data key, salt) pair may seal: the SDK's nonces are a counter
// under a random 32-bit prefix, and 2^32 is also AES-GCM's limit for random
// 96-bit nonces (NIST SP 800-38D 8.3), which another writer may use.
inline constexpr uint64_t kMaxRecordsPerSalt = uint64_t{1} << 32;

// HKDF info label (both versions): 23 ASCII bytes, no terminator.
inline constexpr absl::string_view kKdfLabel = "clavis sealed record v1";

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_SEALED_RECORD_FORMAT_H_
