// Conversions from stored records to the API's resource messages.
#ifndef CLAVIS_KMS_KEYS_RESOURCE_VIEWS_H_
#define CLAVIS_KMS_KEYS_RESOURCE_VIEWS_H_

#include <string>

#include "absl/time/time.h"
#include "clavis/v1/resources.pb.h"
#include "kms/keys/names.h"
#include "kms/keys/records.pb.h"

namespace clavis::kms {

clavis::v1::Key KeyView(const internal::KeyRecord& record);
clavis::v1::Segment SegmentView(const KeyName& key, const internal::SegmentRecord& record);

// "ENABLED", "DISABLED", ...
std::string StateName(clavis::v1::KeyState state);
// RFC 3339 in UTC, e.g. "2026-12-01T10:00:00Z".
std::string FormatTimestamp(absl::Time t);

inline int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_RESOURCE_VIEWS_H_
