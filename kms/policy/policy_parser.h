// Parsing and validation of key-policy documents (JSON, docs/POLICY.md).
//
// The document is hostile input: it is size-checked before parsing, every
// field is type-checked, unknown fields are rejected (a misspelt
// "condition" must not silently drop a restriction), and every error is
// InvalidArgument whose message starts with the path of the bad field:
//   statements[2].actions[1]: unknown action "Decrpyt" (did you mean "Decrypt"?)
//   statements[0].effect: must be "Allow" or "Deny"
// Only the first error is reported.
//
// Beyond shape, validation enforces two rules no document can waive except
// as noted:
//   - tenant isolation: every principal and group must belong to the
//     scope's tenant (no exceptions);
//   - separation of duties (separation_of_duties.h): unless the document
//     sets "allowAdminAndDataToSamePrincipal": true.
//
// Thread safety: stateless functions, safe to call concurrently.
#ifndef CLAVIS_KMS_POLICY_POLICY_PARSER_H_
#define CLAVIS_KMS_POLICY_POLICY_PARSER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kms/policy/policy.h"

namespace clavis::kms::policy {

// The validated policy of `scope` (a key, or a tenant for tenant-level
// policies). InvalidArgument for a bad document or a malformed scope.
absl::StatusOr<Policy> ParsePolicy(absl::string_view json, const PolicyScope& scope);

// The document form of a valid policy (version "2026-11-01"); parsing it
// with the same scope yields an equal policy.
// REQUIRES: `policy` came from ParsePolicy (or was validated by it).
std::string PolicyToJson(const Policy& policy);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_POLICY_PARSER_H_
