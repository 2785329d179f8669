// Authorization decisions against a key policy.
//
// Order of evaluation (docs/POLICY.md, "Evaluation"):
//   1. Tenant isolation: a principal of another tenant than the resource is
//      denied before the policy is read ("cross-tenant access is never
//      allowed"); so are malformed or inconsistent requests and resources
//      outside the policy's scope.
//   2. Explicit Deny: the first (lowest-index) matching Deny statement
//      decides, whatever any Allow says.
//   3. Allow: the first matching Allow statement decides.
//   4. Default deny.
// A statement matches when the request's principal, or one of its groups,
// is listed, the action is in the statement's actions, and all its
// conditions hold.
//
// Thread safety: Decide reads only its arguments; safe to call concurrently
// on a shared Policy.
#ifndef CLAVIS_KMS_POLICY_EVALUATOR_H_
#define CLAVIS_KMS_POLICY_EVALUATOR_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "kms/policy/action.h"
#include "kms/policy/policy.h"

namespace clavis::kms::policy {

struct AccessRequest {
  std::string principal;            // tenants/{t}/principals/{id}, authenticated
  std::vector<std::string> groups;  // tenants/{t}/groups/{id}, from the authenticator
  std::string principal_tenant;     // tenant that authenticated the principal
  Action action = Action::kGetKey;
  // tenants/{t}[/keys/{k}[/versions/{n} | /segments/{segment}]]
  std::string resource;
  // The segment a data-plane call works on when `resource` is the key;
  // when `resource` is a segment name it may be omitted (else must agree).
  std::optional<std::string> segment;
  std::map<std::string, std::string> encryption_context;
  absl::Time time;
};

struct Decision {
  bool allowed = false;
  // The statement that decided; nullopt for default deny and for requests
  // denied before the policy was read.
  std::optional<size_t> statement_index;
  std::string sid;     // of that statement, may be empty
  std::string reason;  // human-readable, safe to log (no context values)
};

Decision Decide(const Policy& policy, const AccessRequest& request);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_EVALUATOR_H_
