// Blind index keys (docs/FORMAT.md "Blind index key (v1)", normative): the
// 32-byte HMAC-SHA256 key of one equality-searchable index over one segment,
// derived with HKDF-SHA256 from the segment's FIRST key version, so it stays
// the same across segment rotation and master-key re-wrapping, and is gone
// when the segment or its key is destroyed.
//
// Envelope::DeriveBlindIndexKey does the state checks and unwraps segment
// key version 1; this file only holds the name rule and the derivation.
//
// Thread safety: stateless; safe to call concurrently.
#ifndef CLAVIS_KMS_KEYS_BLIND_INDEX_H_
#define CLAVIS_KMS_KEYS_BLIND_INDEX_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"
#include "kms/keys/names.h"

namespace clavis::kms {

constexpr size_t kBlindIndexKeySize = 32;
constexpr size_t kMaxBlindIndexNameLength = 64;
// The segment-key version every blind index key is derived from.
constexpr uint32_t kBlindIndexSegmentKeyVersion = 1;
// The first bytes of the HKDF info (21 ASCII bytes, no terminator).
constexpr absl::string_view kBlindIndexInfoLabel = "clavis blind index v1";

// OK if `index` is 1..64 bytes of [a-z0-9_.-]; otherwise InvalidArgument
// naming the rule and the length, never the bytes themselves.
absl::Status ValidateBlindIndexName(absl::string_view index);

// HKDF-SHA256(IKM = segment_key_v1, salt = empty,
//   info = "clavis blind index v1" || u16 len || key name (tenants/{t}/keys/{k})
//          || u16 len || segment || u16 len || index, L = 32).
// REQUIRES: segment_key_v1 is the 32-byte plaintext of segment-key version 1
// of `segment` under `key`; the segment label is valid (ValidateSegment).
// InvalidArgument for an invalid index name or a segment key of another size.
absl::StatusOr<crypto::SecretBytes> DeriveBlindIndexKeyFromSegmentKey(
    const crypto::SecretBytes& segment_key_v1, const KeyName& key, absl::string_view segment,
    absl::string_view index);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_BLIND_INDEX_H_
