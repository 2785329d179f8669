// Statement conditions: whether they hold for a request, and whether one set
// of conditions implies another (used to compare policies).
//
// Thread safety: stateless functions, safe to call concurrently.
#ifndef CLAVIS_KMS_POLICY_CONDITIONS_H_
#define CLAVIS_KMS_POLICY_CONDITIONS_H_

#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kms/policy/policy.h"

namespace clavis::kms::policy {

// The request facts conditions look at.
struct ConditionInput {
  std::optional<std::string> segment;  // nullopt: the request names no segment
  const std::map<std::string, std::string>* encryption_context = nullptr;  // may be null
  absl::Time time;
};

// True when `segment` lies under `prefix` on '/' boundaries: the prefix's
// parts are the first parts of the segment. "acme/billing" covers
// "acme/billing" and "acme/billing/2026" but not "acme/billingx".
// REQUIRES: prefix has no trailing '/' (the parser strips it).
bool SegmentUnderPrefix(absl::string_view segment, absl::string_view prefix);

// True when every present condition holds. A segment condition never holds
// for a request without a segment: an Allow scoped to segments grants nothing
// key-wide.
bool ConditionsHold(const Conditions& conditions, const ConditionInput& input);

// The first condition that fails, for explanations ("segment
// \"acme/hr/1\" is not under acme/billing"); empty when all hold.
std::string FirstFailedCondition(const Conditions& conditions, const ConditionInput& input);

// Sound, conservative: true only if every request satisfying `narrow` also
// satisfies `wide`. May answer false for some pairs where that holds (e.g.
// a time window covered only by a combination of daily hours).
bool ConditionsImply(const Conditions& narrow, const Conditions& wide);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_CONDITIONS_H_
