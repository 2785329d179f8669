// Resource names of the Clavis API and the rules for their parts.
//
//   tenants/{tenant}
//   tenants/{tenant}/keys/{key}
//   tenants/{tenant}/keys/{key}/versions/{n}
//   tenants/{tenant}/keys/{key}/segments/{segment}
//
// tenant and key ids: 1-63 of [a-z0-9_-], starting with a letter or digit.
// segment labels: 1-256 of [A-Za-z0-9._/=-] (no "//", no leading or trailing
// '/', no "." or ".." path part), so "acme/orders/2026-11" is one segment.
// Versions: 1..2^31-1. Parse errors are InvalidArgument naming the part that
// is wrong and the rule it breaks (the offending text is quoted, truncated to
// 64 characters, with non-printable bytes escaped).
#ifndef CLAVIS_KMS_KEYS_NAMES_H_
#define CLAVIS_KMS_KEYS_NAMES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::kms {

constexpr size_t kMaxIdLength = 63;
constexpr size_t kMaxSegmentLength = 256;

absl::Status ValidateTenantId(absl::string_view tenant);
absl::Status ValidateKeyId(absl::string_view key_id);
absl::Status ValidateSegment(absl::string_view segment);

struct KeyName {
  std::string tenant;
  std::string key_id;

  std::string ToString() const;  // tenants/{t}/keys/{k}
  friend bool operator==(const KeyName& a, const KeyName& b) {
    return a.tenant == b.tenant && a.key_id == b.key_id;
  }
};

struct KeyVersionName {
  KeyName key;
  uint32_t version = 0;
  std::string ToString() const;
};

struct SegmentName {
  KeyName key;
  std::string segment;
  std::string ToString() const;
};

absl::StatusOr<std::string> ParseTenantName(absl::string_view name);  // -> tenant id
absl::StatusOr<KeyName> ParseKeyName(absl::string_view name);
absl::StatusOr<KeyVersionName> ParseKeyVersionName(absl::string_view name);
absl::StatusOr<SegmentName> ParseSegmentName(absl::string_view name);

// Quotes untrusted text for an error message: at most 64 characters, C-escaped.
std::string QuoteForError(absl::string_view text);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_NAMES_H_
