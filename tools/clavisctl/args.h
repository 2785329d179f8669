// Parsing of clavisctl's argument values: durations ("90d", "1h30m"),
// RFC 3339 times, key=value pairs (--label, --context) and the split of a key
// name into the parent and id that CreateKey wants. Pure functions, no I/O,
// so they are unit-tested on their own (args_test.cc).
#ifndef CLAVIS_TOOLS_CLAVISCTL_ARGS_H_
#define CLAVIS_TOOLS_CLAVISCTL_ARGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace clavis::clavisctl {

// The largest duration google.protobuf.Duration can hold (10,000 years);
// anything longer could not be sent, so the parser refuses it up front.
constexpr int64_t kMaxDurationSeconds = 315'576'000'000;

// Parses a non-negative whole-second duration written as one or more
// <digits><unit> parts, units d (24h), h, m, s, largest first and each at most
// once: "90d", "1h30m", "1d12h", "0s". A bare number, a sign, spaces, another
// unit or a repeated unit is InvalidArgument; so is a total above
// kMaxDurationSeconds.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

// The inverse of ParseDuration for whole seconds ("90d", "1h30m", "0s");
// anything else (sub-second, negative, infinite) falls back to
// absl::FormatDuration.
std::string FormatCompactDuration(absl::Duration duration);

// Parses an RFC 3339 time ("2026-12-01T00:00:00Z", offsets and fractions
// allowed) within google.protobuf.Timestamp's range (years 1..9999).
absl::StatusOr<absl::Time> ParseTime(absl::string_view text);

// Conversions to the well-known protobuf types.
google::protobuf::Duration ToProtoDuration(absl::Duration duration);
google::protobuf::Timestamp ToProtoTimestamp(absl::Time time);
absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp);
absl::Duration FromProtoDuration(const google::protobuf::Duration& duration);

// Parses one "key=value" entry. The split is at the first '=', so the value
// may itself contain '='. The key must be non-empty; the value may be empty
// ("k=" is an entry with an empty value, as the server allows). `what` names
// the option in error messages ("--context").
absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(absl::string_view entry,
                                                                  absl::string_view what);

// Parses repeated "key=value" entries into a map; a key given twice is
// InvalidArgument rather than last-one-wins, because a silently dropped
// encryption-context entry would make a blob undecryptable.
absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(
    const std::vector<std::string>& entries, absl::string_view what);

// "tenants/{t}/keys/{k}" -> {"tenants/{t}", "{k}"}: CreateKey takes the parent
// and the key id separately while the CLI takes the full name. Only the shape
// is checked here; the id rules are the server's (kms/keys/names.h).
struct KeyNameParts {
  std::string parent;
  std::string key_id;
};
absl::StatusOr<KeyNameParts> SplitKeyName(absl::string_view name);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_ARGS_H_
