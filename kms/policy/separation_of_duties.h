// Separation of duties: whoever administers a key (rotates, disables,
// destroys it, edits its policy, moves material in or out) should not also
// use it on data, so a single stolen credential cannot both widen its own
// access and read the data.
//
// The rule is checked per principal-or-group entry as written in the
// document: an entry (e.g. "tenants/acme/principals/bob" or
// "tenants/acme/groups/ops") may not receive, over all Allow statements,
// both an administrative and a data-plane action (action.h); read-only
// actions are neutral. Group membership is only known at request time, so
// a principal in both an admin group and a user group is not detected here
// (an open point for the authenticator or a runtime check). Conditions are
// ignored: a grant under conditions is still a grant.
//
// A document may waive the rule with "allowAdminAndDataToSamePrincipal":
// true; callers must audit that override.
//
// Thread safety: stateless functions, safe to call concurrently.
#ifndef CLAVIS_KMS_POLICY_SEPARATION_OF_DUTIES_H_
#define CLAVIS_KMS_POLICY_SEPARATION_OF_DUTIES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kms/keys/names.h"
#include "kms/policy/policy.h"

namespace clavis::kms::policy {

// InvalidArgument naming the statement that completes the conflict, the
// entry and one action of each kind; OK otherwise. Ignores the override flag
// (ParsePolicy decides whether to call it).
absl::Status CheckSeparationOfDuties(const Policy& policy);

// Read-only actions the SDK needs alongside the data plane: the key's
// metadata (primary version) and its event stream (cache invalidation).
ActionSet DataUserReadActions();

// The policy of a new key:
//   statement 0 (sid "key-administrators"): `admins` get every
//     administrative and read-only action;
//   statement 1 (sid "key-users"), when `users` is not empty: the data
//     plane plus DataUserReadActions().
// Entries are principal or group names of the key's tenant. InvalidArgument
// when `admins` is empty (nobody could ever fix the policy), when a name is
// malformed or of another tenant, or when an entry is in both lists.
absl::StatusOr<Policy> DefaultKeyPolicy(const KeyName& key, const std::vector<std::string>& admins,
                                        const std::vector<std::string>& users);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_SEPARATION_OF_DUTIES_H_
