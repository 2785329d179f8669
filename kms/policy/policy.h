// The key-policy data model: what a parsed, validated policy document holds
// (the JSON language is in docs/POLICY.md; policy_parser.h turns text into
// these types and is the only way to obtain a Policy that was checked).
//
// A Policy is a plain value: immutable once built, so it may be shared and
// read from many threads at once.
#ifndef CLAVIS_KMS_POLICY_POLICY_H_
#define CLAVIS_KMS_POLICY_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "kms/policy/action.h"

namespace clavis::kms::policy {

// Limits on a document; each one keeps parsing and evaluation bounded for
// hostile input.
constexpr size_t kMaxPolicyBytes = 32 * 1024;
constexpr size_t kMaxStatements = 100;
constexpr size_t kMaxPrincipalsPerStatement = 100;
constexpr size_t kMaxActionsPerStatement = 64;
constexpr size_t kMaxSegmentPrefixes = 32;
constexpr size_t kMaxSidLength = 64;
constexpr size_t kMaxPrincipalIdLength = 128;

// The language version written by PolicyToJson; integer 1 means the same.
constexpr char kPolicyVersion[] = "2026-11-01";

// The JSON name of the separation-of-duties override (see
// separation_of_duties.h).
constexpr char kSodOverrideField[] = "allowAdminAndDataToSamePrincipal";

// What a policy is attached to: one key (key_id set) or a whole tenant
// (key_id empty, for the tenant-level actions CreateKey and ListKeys).
struct PolicyScope {
  std::string tenant;
  std::string key_id;

  // "tenants/acme/keys/crm" or "tenants/acme".
  std::string ToString() const;
};

enum class Effect { kAllow, kDeny };

// Daily window in UTC: hours [start_hour, end_hour); wraps past midnight when
// start_hour > end_hour (22..6 is 22:00-05:59).
struct DailyHours {
  int start_hour = 0;  // 0..23
  int end_hour = 0;    // 0..24, != start_hour
  // Bit h set when hour h (0..23) is inside the window.
  uint32_t HourMask() const;
};

// All present conditions must hold for a statement to apply.
struct Conditions {
  // Segment must lie under one of these ('/'-separated part prefixes, stored
  // without a trailing '/'). Empty: no segment condition.
  std::vector<std::string> segment_prefixes;
  // Every pair must be present, with this exact value, in the request's
  // encryption context.
  std::map<std::string, std::string> encryption_context;
  std::optional<absl::Time> not_before;  // inclusive
  std::optional<absl::Time> not_after;   // exclusive
  std::optional<DailyHours> daily_hours_utc;

  bool empty() const {
    return segment_prefixes.empty() && encryption_context.empty() && !not_before && !not_after &&
           !daily_hours_utc;
  }
};

struct Statement {
  std::string sid;  // may be empty
  Effect effect = Effect::kDeny;
  // Full names: "tenants/acme/principals/x" or "tenants/acme/groups/y".
  std::vector<std::string> principals;
  // As written (names, "*" or, in Deny statements, "Prefix*"), kept so the
  // document can be written back unchanged.
  std::vector<std::string> action_patterns;
  ActionSet actions;  // the patterns expanded
  Conditions conditions;
};

struct Policy {
  PolicyScope scope;
  std::vector<Statement> statements;
  bool allow_admin_and_data_to_same_principal = false;
};

// `statement 1 (sid "billing-agents")` or `statement 1`, for reasons and
// messages.
std::string DescribeStatement(const Policy& policy, size_t index);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_POLICY_H_
