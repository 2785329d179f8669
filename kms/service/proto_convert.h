// Conversions between API message fields and domain values shared by the
// services: durations, timestamps and page tokens, validated so that values
// that cannot be turned back into messages are refused before anything is
// stored.
#ifndef CLAVIS_KMS_SERVICE_PROTO_CONVERT_H_
#define CLAVIS_KMS_SERVICE_PROTO_CONVERT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace clavis::kms {

// Page tokens are the last returned id, base64url-encoded so they read as
// opaque and survive any transport.
std::string EncodePageToken(const std::string& last);
absl::StatusOr<std::string> DecodePageToken(const std::string& token);
absl::StatusOr<size_t> PageSize(int requested);

// Non-negative, at most 100 years, nanos in [0, 1e9).
absl::StatusOr<absl::Duration> ToDuration(const google::protobuf::Duration& d,
                                          absl::string_view field);
// Zero (unset) means "the server default".
std::optional<absl::Duration> OptionalWindow(absl::Duration d);
// 1970-01-01 .. 9999-12-31T23:59:59Z.
absl::StatusOr<absl::Time> ToTime(const google::protobuf::Timestamp& t, absl::string_view field);
google::protobuf::Timestamp ToTimestamp(absl::Time t);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVICE_PROTO_CONVERT_H_
