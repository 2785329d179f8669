#include "kms/policy/conditions.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kms/keys/names.h"

namespace clavis::kms::policy {
namespace {

bool UnderAnyPrefix(absl::string_view segment, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (SegmentUnderPrefix(segment, prefix)) return true;
  }
  return false;
}

int HourOfDayUtc(absl::Time time) { return absl::ToCivilHour(time, absl::UTCTimeZone()).hour(); }

}  // namespace

bool SegmentUnderPrefix(absl::string_view segment, absl::string_view prefix) {
  if (!absl::StartsWith(segment, prefix)) return false;
  // Exactly the prefix, or the prefix followed by a part boundary.
  return segment.size() == prefix.size() || segment[prefix.size()] == '/';
}

std::string FirstFailedCondition(const Conditions& conditions, const ConditionInput& input) {
  if (!conditions.segment_prefixes.empty()) {
    if (!input.segment) return "the request names no segment";
    if (!UnderAnyPrefix(*input.segment, conditions.segment_prefixes)) {
      return absl::StrCat("segment ", QuoteForError(*input.segment),
                          " is not under an allowed prefix");
    }
  }
  for (const auto& [key, value] : conditions.encryption_context) {
    // Values are not echoed: the context may hold personal data.
    if (input.encryption_context == nullptr) {
      return absl::StrCat("encryption context lacks ", QuoteForError(key));
    }
    auto it = input.encryption_context->find(key);
    if (it == input.encryption_context->end()) {
      return absl::StrCat("encryption context lacks ", QuoteForError(key));
    }
    if (it->second != value) {
      return absl::StrCat("encryption context ", QuoteForError(key), " has another value");
    }
  }
  if (conditions.not_before && input.time < *conditions.not_before) {
    return absl::StrCat(
        "before notBefore ",
        absl::FormatTime(absl::RFC3339_sec, *conditions.not_before, absl::UTCTimeZone()));
  }
  if (conditions.not_after && input.time >= *conditions.not_after) {
    return absl::StrCat(
        "at or after notAfter ",
        absl::FormatTime(absl::RFC3339_sec, *conditions.not_after, absl::UTCTimeZone()));
  }
  if (conditions.daily_hours_utc) {
    int hour = HourOfDayUtc(input.time);
    if ((conditions.daily_hours_utc->HourMask() & (uint32_t{1} << hour)) == 0) {
      return absl::StrCat("hour ", hour, " UTC is outside the daily window ",
                          conditions.daily_hours_utc->start_hour, "-",
                          conditions.daily_hours_utc->end_hour);
    }
  }
  return "";
}

bool ConditionsHold(const Conditions& conditions, const ConditionInput& input) {
  return FirstFailedCondition(conditions, input).empty();
}

bool ConditionsImply(const Conditions& narrow, const Conditions& wide) {
  if (!wide.segment_prefixes.empty()) {
    // `narrow` must confine segments to prefixes that `wide` covers.
    if (narrow.segment_prefixes.empty()) return false;
    for (const std::string& prefix : narrow.segment_prefixes) {
      if (!UnderAnyPrefix(prefix, wide.segment_prefixes)) return false;
    }
  }
  for (const auto& [key, value] : wide.encryption_context) {
    auto it = narrow.encryption_context.find(key);
    if (it == narrow.encryption_context.end() || it->second != value) return false;
  }
  if (wide.not_before && (!narrow.not_before || *narrow.not_before < *wide.not_before)) {
    return false;
  }
  if (wide.not_after && (!narrow.not_after || *narrow.not_after > *wide.not_after)) {
    return false;
  }
  if (wide.daily_hours_utc) {
    if (!narrow.daily_hours_utc) return false;
    uint32_t narrow_mask = narrow.daily_hours_utc->HourMask();
    if ((narrow_mask & ~wide.daily_hours_utc->HourMask()) != 0) return false;
  }
  return true;
}

}  // namespace clavis::kms::policy
