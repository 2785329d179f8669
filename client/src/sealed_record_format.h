// Constants of the sealed record format, v1. The prose spec, which is
// normative, is docs/FORMAT.md "Sealed record (v1)"; change both together,
// and never change v1's meaning: a change an old reader could misread is a
// new version.
#ifndef CLAVIS_CLIENT_SRC_SEALED_RECORD_FORMAT_H_
#define CLAVIS_CLIENT_SRC_SEALED_RECORD_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace clavis::client_internal {

// "CLSR": Clavis sealed record.
inline constexpr absl::string_view kSealedRecordMagic = "CLSR";
inline constexpr uint8_t kSealedRecordVersion = 1;
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

// HKDF info label: 23 ASCII bytes, no terminator.
inline constexpr absl::string_view kKdfLabel = "clavis sealed record v1";

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_SEALED_RECORD_FORMAT_H_
