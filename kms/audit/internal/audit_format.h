// Wire constants of the audit log. The normative spec is docs/FORMAT.md,
// section "Audit log (v1)"; change both together.
#ifndef CLAVIS_KMS_AUDIT_INTERNAL_AUDIT_FORMAT_H_
#define CLAVIS_KMS_AUDIT_INTERNAL_AUDIT_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace clavis::kms::audit_internal {

// File header: magic, version, u32 file number.
inline constexpr absl::string_view kFileMagic = "CLAU";
inline constexpr uint8_t kFormatVersion = 1;
inline constexpr size_t kFileHeaderSize = 4 + 1 + 4;

// Record body, common part: version, kind, u64 sequence, prev hash, i64 time.
inline constexpr size_t kHashSize = 32;
inline constexpr size_t kCommonHeaderSize = 1 + 1 + 8 + kHashSize + 8;
// Smallest body: a call record with empty fields (six u16 lengths, u32 code,
// u16 message length, u8 context hash length) plus the digest.
inline constexpr size_t kMinBodySize = kCommonHeaderSize + 6 * 2 + 4 + 2 + 1 + kHashSize;
// Largest body a reader accepts; the writer's fields stay far below it.
inline constexpr size_t kMaxBodySize = 64 * 1024;

inline constexpr uint8_t kCheckpointFlagClosing = 0x01;

// Prefix of every checkpoint signature input (26 ASCII bytes, then 0x00).
inline constexpr absl::string_view kCheckpointSignatureContext = "clavis audit checkpoint v1";

}  // namespace clavis::kms::audit_internal

#endif  // CLAVIS_KMS_AUDIT_INTERNAL_AUDIT_FORMAT_H_
