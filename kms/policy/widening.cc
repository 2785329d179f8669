#include "kms/policy/widening.h"

#include <algorithm>

#include "kms/policy/conditions.h"

namespace clavis::kms::policy {
namespace {

bool Lists(const Statement& statement, const std::string& entry) {
  return std::find(statement.principals.begin(), statement.principals.end(), entry) !=
         statement.principals.end();
}

// Is `allow` (from the new policy) covered by old Allow statements?
bool AllowCovered(const Statement& allow, const Policy& old_policy) {
  for (const std::string& entry : allow.principals) {
    ActionSet covered;
    for (const Statement& old : old_policy.statements) {
      if (old.effect == Effect::kAllow && Lists(old, entry) &&
          ConditionsImply(allow.conditions, old.conditions)) {
        covered |= old.actions;
      }
    }
    if ((allow.actions & ~covered).any()) return false;
  }
  return true;
}

// Is the old `deny` still enforced by one Deny of the new policy?
bool DenyKept(const Statement& deny, const Policy& new_policy) {
  for (const Statement& kept : new_policy.statements) {
    if (kept.effect != Effect::kDeny || (deny.actions & ~kept.actions).any() ||
        !ConditionsImply(deny.conditions, kept.conditions)) {
      continue;
    }
    bool all_entries = std::all_of(deny.principals.begin(), deny.principals.end(),
                                   [&](const std::string& entry) { return Lists(kept, entry); });
    if (all_entries) return true;
  }
  return false;
}

}  // namespace

bool WidensAccess(const Policy& old_policy, const Policy& new_policy) {
  if (old_policy.scope.tenant != new_policy.scope.tenant ||
      old_policy.scope.key_id != new_policy.scope.key_id) {
    return true;
  }
  for (const Statement& statement : new_policy.statements) {
    if (statement.effect == Effect::kAllow && !AllowCovered(statement, old_policy)) return true;
  }
  for (const Statement& statement : old_policy.statements) {
    if (statement.effect == Effect::kDeny && !DenyKept(statement, new_policy)) return true;
  }
  return false;
}

}  // namespace clavis::kms::policy
