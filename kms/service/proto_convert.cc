#include "kms/service/proto_convert.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace clavis::kms {
namespace {
constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
}  // namespace

// Page tokens are the last returned id, base64url-encoded so they read as
// opaque and survive any transport.
std::string EncodePageToken(const std::string& last) {
  if (last.empty()) return "";
  std::string out;
  absl::WebSafeBase64Escape(last, &out);
  return out;
}

absl::StatusOr<std::string> DecodePageToken(const std::string& token) {
  std::string out;
  if (!token.empty() && !absl::WebSafeBase64Unescape(token, &out)) {
    return absl::InvalidArgumentError("page_token is not one this server returned");
  }
  return out;
}

absl::StatusOr<size_t> PageSize(int requested) {
  if (requested < 0) return absl::InvalidArgumentError("page_size must not be negative");
  if (requested == 0) return kDefaultPageSize;
  return static_cast<size_t>(std::min(requested, kMaxPageSize));
}

// google.protobuf.Duration/Timestamp carry their own validity rules (nanos
// in [0, 1e9), years 1..9999); values outside them are refused here, before
// anything is stored, because they cannot be turned back into messages.
absl::StatusOr<absl::Duration> ToDuration(const google::protobuf::Duration& d,
                                          absl::string_view field) {
  if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() > 999999999 ||
      d.seconds() > 100ll * 365 * 86400) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be a non-negative duration of at most 100 years with nanos below 1e9"));
  }
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

std::optional<absl::Duration> OptionalWindow(absl::Duration d) {
  if (d == absl::ZeroDuration()) return std::nullopt;  // unset: the server default
  return d;
}

absl::StatusOr<absl::Time> ToTime(const google::protobuf::Timestamp& t, absl::string_view field) {
  // 1970-01-01 .. 9999-12-31T23:59:59Z, the range Timestamp can carry (and
  // nothing Clavis schedules lies before 1970).
  constexpr int64_t kMaxSeconds = 253402300799;
  if (t.seconds() < 0 || t.seconds() > kMaxSeconds || t.nanos() < 0 || t.nanos() > 999999999) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z"));
  }
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp out;
  const int64_t us = absl::ToUnixMicros(t);
  out.set_seconds(us / 1000000);
  out.set_nanos(static_cast<int32_t>((us % 1000000) * 1000));
  return out;
}

}  // namespace clavis::kms
