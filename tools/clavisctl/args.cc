#include "tools/clavisctl/args.h"

#include <cstdint>
#include <iterator>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace clavis::clavisctl {
namespace {

// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the bounds of
// google.protobuf.Timestamp.
constexpr int64_t kMinTimestampSeconds = -62'135'596'800;
constexpr int64_t kMaxTimestampSeconds = 253'402'300'799;

struct Unit {
  char suffix;
  int64_t seconds;
};
// Largest first: the order ParseDuration requires and FormatCompactDuration writes.
constexpr Unit kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

absl::Status BadDuration(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("bad duration \"", absl::CHexEscape(text), "\": ",
                                                 why, "; write e.g. 90d, 12h, 1h30m or 45s"));
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text) {
  if (text.empty()) return BadDuration(text, "empty");
  int64_t total = 0;
  size_t next_unit = 0;  // index into kUnits: units must come largest first
  absl::string_view rest = text;
  while (!rest.empty()) {
    size_t digits = 0;
    while (digits < rest.size() && absl::ascii_isdigit(static_cast<unsigned char>(rest[digits]))) {
      ++digits;
    }
    if (digits == 0) return BadDuration(text, "expected a number");
    if (digits == rest.size()) return BadDuration(text, "missing unit (d, h, m or s)");
    // Accumulate by hand: absl::SimpleAtoi would also accept a sign.
    int64_t value = 0;
    for (size_t i = 0; i < digits; ++i) {
      const int digit = rest[i] - '0';
      if (value > (kMaxDurationSeconds - digit) / 10) {
        return BadDuration(text, "too long (at most 10000 years)");
      }
      value = value * 10 + digit;
    }
    const char suffix = rest[digits];
    size_t unit = next_unit;
    while (unit < std::size(kUnits) && kUnits[unit].suffix != suffix) ++unit;
    if (unit == std::size(kUnits)) {
      for (const Unit& u : kUnits) {
        if (u.suffix == suffix) {
          return BadDuration(text, "units must be largest first and each at most once");
        }
      }
      return BadDuration(text,
                         absl::StrCat("unknown unit '", absl::CHexEscape(rest.substr(digits, 1)),
                                      "' (use d, h, m or s)"));
    }
    // Compared by division, so value * seconds cannot overflow first.
    if (value > (kMaxDurationSeconds - total) / kUnits[unit].seconds) {
      return BadDuration(text, "too long (at most 10000 years)");
    }
    total += value * kUnits[unit].seconds;
    next_unit = unit + 1;
    rest.remove_prefix(digits + 1);
  }
  return absl::Seconds(total);
}

std::string FormatCompactDuration(absl::Duration duration) {
  if (duration < absl::ZeroDuration() || duration == absl::InfiniteDuration() ||
      duration != absl::Seconds(absl::ToInt64Seconds(duration))) {
    return absl::FormatDuration(duration);
  }
  int64_t seconds = absl::ToInt64Seconds(duration);
  if (seconds == 0) return "0s";
  std::string out;
  for (const Unit& unit : kUnits) {
    if (seconds >= unit.seconds) {
      absl::StrAppend(&out, seconds / unit.seconds, std::string(1, unit.suffix));
      seconds %= unit.seconds;
    }
  }
  return out;
}

absl::StatusOr<absl::Time> ParseTime(absl::string_view text) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &time, &error)) {
    return absl::InvalidArgumentError(absl::StrCat("bad time \"", absl::CHexEscape(text),
                                                   "\": expected RFC 3339, e.g. "
                                                   "2026-12-01T00:00:00Z (",
                                                   error, ")"));
  }
  if (time < absl::FromUnixSeconds(kMinTimestampSeconds) ||
      time > absl::FromUnixSeconds(kMaxTimestampSeconds + 1) - absl::Nanoseconds(1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("time \"", absl::CHexEscape(text), "\" is out of range (years 0001 to 9999)"));
  }
  return time;
}

google::protobuf::Duration ToProtoDuration(absl::Duration duration) {
  google::protobuf::Duration proto;
  const int64_t seconds = absl::IDivDuration(duration, absl::Seconds(1), &duration);
  proto.set_seconds(seconds);
  proto.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(duration)));
  return proto;
}

google::protobuf::Timestamp ToProtoTimestamp(absl::Time time) {
  google::protobuf::Timestamp proto;
  const int64_t seconds = absl::ToUnixSeconds(time);
  proto.set_seconds(seconds);
  // ToUnixSeconds rounds toward negative infinity, so the rest is in [0, 1s).
  proto.set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(seconds))));
  return proto;
}

absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

absl::StatusOr<std::pair<std::string, std::string>> ParseKeyValue(absl::string_view entry,
                                                                  absl::string_view what) {
  const size_t eq = entry.find('=');
  if (eq == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, what.empty() ? "" : " ", "entry \"",
                                                   absl::CHexEscape(entry), "\" is not key=value"));
  }
  if (eq == 0) {
    // The value is not echoed: a --context value may be personal data.
    return absl::InvalidArgumentError(
        absl::StrCat(what, what.empty() ? "" : " ", "entry has an empty key (before '=')"));
  }
  return std::make_pair(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
}

absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(
    const std::vector<std::string>& entries, absl::string_view what) {
  std::map<std::string, std::string> out;
  for (const std::string& entry : entries) {
    absl::StatusOr<std::pair<std::string, std::string>> kv = ParseKeyValue(entry, what);
    if (!kv.ok()) return kv.status();
    const std::string key = kv->first;
    if (!out.insert(*std::move(kv)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " key \"", absl::CHexEscape(key), "\" is given more than once"));
    }
  }
  return out;
}

absl::StatusOr<KeyNameParts> SplitKeyName(absl::string_view name) {
  const std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "tenants" || parts[1].empty() || parts[2] != "keys" ||
      parts[3].empty()) {
    return absl::InvalidArgumentError(absl::StrCat("bad key name \"", absl::CHexEscape(name),
                                                   "\": expected tenants/{tenant}/keys/{key}"));
  }
  return KeyNameParts{absl::StrCat("tenants/", parts[1]), std::string(parts[3])};
}

}  // namespace clavis::clavisctl
