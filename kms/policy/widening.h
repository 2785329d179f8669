// Whether a policy change could grant access the old policy did not: the
// trigger for M-of-N approval of policy edits.
//
// WidensAccess is sound and conservative: when it answers false, every
// request `new_policy` allows is also allowed by `old_policy`; it may answer
// true for some changes that widen nothing (e.g. one Allow split across two
// statements with different conditions, or a Deny rewritten as several
// narrower Denies). The check, per statement:
//   - every (entry, action) an Allow of `new_policy` grants must be granted
//     to the same entry by one Allow of `old_policy` whose conditions are
//     implied by the new statement's conditions (ConditionsImply);
//   - every Deny of `old_policy` must be kept by one Deny of
//     `new_policy` listing at least its entries and actions, with conditions
//     implied by the old Deny's conditions.
// Entries compare as written, so a group grant is never taken to cover a
// principal grant (membership is unknown here) or the reverse. Policies of
// different scopes always count as widening.
//
// Thread safety: reads only its arguments; safe to call concurrently.
#ifndef CLAVIS_KMS_POLICY_WIDENING_H_
#define CLAVIS_KMS_POLICY_WIDENING_H_

#include "kms/policy/policy.h"

namespace clavis::kms::policy {

bool WidensAccess(const Policy& old_policy, const Policy& new_policy);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_WIDENING_H_
