#include "kms/policy/separation_of_duties.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "kms/policy/policy_parser.h"

namespace clavis::kms::policy {
namespace {

std::string FirstActionName(const ActionSet& set) {
  for (Action action : AllActions()) {
    if (Contains(set, action)) return std::string(ActionName(action));
  }
  return "";
}

}  // namespace

absl::Status CheckSeparationOfDuties(const Policy& policy) {
  const ActionSet admin = ActionsOfClass(ActionClass::kAdministrative);
  const ActionSet data = ActionsOfClass(ActionClass::kDataPlane);
  std::map<std::string, ActionSet> granted;  // entry -> allowed so far
  for (size_t i = 0; i < policy.statements.size(); ++i) {
    const Statement& statement = policy.statements[i];
    if (statement.effect != Effect::kAllow) continue;
    for (const std::string& entry : statement.principals) {
      ActionSet& actions = granted[entry];
      actions |= statement.actions;
      if ((actions & admin).any() && (actions & data).any()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "statements[", i, "]: ", entry, " would get both administrative (",
            FirstActionName(actions & admin), ") and data-plane (", FirstActionName(actions & data),
            ") actions; separation of duties forbids this unless the document sets \"",
            kSodOverrideField, "\": true"));
      }
    }
  }
  return absl::OkStatus();
}

ActionSet DataUserReadActions() { return ToSet(Action::kGetKey) | ToSet(Action::kWatchKeyEvents); }

absl::StatusOr<Policy> DefaultKeyPolicy(const KeyName& key, const std::vector<std::string>& admins,
                                        const std::vector<std::string>& users) {
  if (admins.empty()) {
    return absl::InvalidArgumentError(
        "admins: a key needs at least one administrator, or its policy could never be changed");
  }
  Policy draft;
  draft.scope = PolicyScope{key.tenant, key.key_id};
  Statement administrators;
  administrators.sid = "key-administrators";
  administrators.effect = Effect::kAllow;
  administrators.principals = admins;
  administrators.actions =
      ActionsOfClass(ActionClass::kAdministrative) | ActionsOfClass(ActionClass::kReadOnly);
  draft.statements.push_back(std::move(administrators));
  if (!users.empty()) {
    Statement data_users;
    data_users.sid = "key-users";
    data_users.effect = Effect::kAllow;
    data_users.principals = users;
    data_users.actions = ActionsOfClass(ActionClass::kDataPlane) | DataUserReadActions();
    draft.statements.push_back(std::move(data_users));
  }
  for (Statement& statement : draft.statements) {
    for (Action action : AllActions()) {
      if (Contains(statement.actions, action)) {
        statement.action_patterns.emplace_back(ActionName(action));
      }
    }
  }
  // Round-trip through the parser so the default obeys exactly the rules of
  // any other document (names, tenant isolation, separation of duties).
  return ParsePolicy(PolicyToJson(draft), draft.scope);
}

}  // namespace clavis::kms::policy
