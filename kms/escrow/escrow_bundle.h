// The escrow bundle (v1, docs/FORMAT.md "Escrow bundle (v1)"): every segment
// key of one key of origin EXTERNAL, each exactly as clavisd stores it:
// wrapped under a version of the customer's own imported material (the
// "Segment key wrap" of docs/FORMAT.md). With their material, a customer can
// unwrap every segment key, then every data key, then every record, with no
// Clavis server (clavis-recover, or their own code following the format).
//
// JSON Lines (UTF-8, one JSON object per line, '\n' after each):
//   1. header:  {"format":"clavis-escrow-bundle","version":1,
//                "key":"tenants/T/keys/K","createTime":"<RFC 3339>",
//                "keyVersions":[{"version":1,"keyCheckValue":"<16 hex>"},...]}
//   2. one line per segment:
//               {"segment":"<label>","state":"ENABLED",
//                "versions":[{"version":1,"keyVersion":1,
//                             "wrappedKey":"<standard base64>"},...]}
//   3. trailer: {"end":{"segments":<number of segment lines>}}
// The trailer makes a truncated bundle detectable. Integrity of the keys
// themselves comes from the AES-GCM tag of each wrap, whose associated data
// names the tenant, key, segment and both versions: a wrapped key moved to
// another line or relabelled does not unwrap.
//
// Parse errors are InvalidArgument("escrow bundle line N: ...") and never
// echo key bytes.
#ifndef CLAVIS_KMS_ESCROW_ESCROW_BUNDLE_H_
#define CLAVIS_KMS_ESCROW_ESCROW_BUNDLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kms/keys/names.h"

namespace clavis::kms {

inline constexpr absl::string_view kEscrowBundleFormat = "clavis-escrow-bundle";
inline constexpr int kEscrowBundleVersion = 1;

struct EscrowKeyVersion {
  uint32_t version = 0;
  std::string key_check_value;  // docs/FORMAT.md "Master-key check value"
};

struct EscrowSegmentVersion {
  uint32_t version = 0;      // segment-key version
  uint32_t key_version = 0;  // master-key version it is wrapped under
  std::string wrapped_key;   // nonce(12) || ciphertext(32) || tag(16)
};

struct EscrowSegment {
  std::string segment;
  std::string state;  // the segment's KeyState name when exported
  std::vector<EscrowSegmentVersion> versions;
};

struct EscrowHeader {
  KeyName key;
  absl::Time create_time;
  std::vector<EscrowKeyVersion> key_versions;
};

// One line each, '\n' included.
std::string EncodeEscrowHeader(const EscrowHeader& header);
std::string EncodeEscrowSegment(const EscrowSegment& segment);
std::string EncodeEscrowTrailer(uint64_t segments);

struct EscrowBundle {
  EscrowHeader header;
  std::vector<EscrowSegment> segments;
};

// Parses and checks a whole bundle: format and version, names, base64,
// versions, the trailer's count and nothing after it.
absl::StatusOr<EscrowBundle> ParseEscrowBundle(absl::string_view text);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ESCROW_ESCROW_BUNDLE_H_
