#include "kms/policy/simulator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kms/keys/names.h"
#include "kms/policy/policy_parser.h"
#include "kms/policy/principal.h"

namespace clavis::kms::policy {
namespace {

// The scope a resource's policy is attached to: its key, or its tenant.
absl::StatusOr<PolicyScope> ScopeOf(const std::string& resource) {
  std::vector<absl::string_view> parts = absl::StrSplit(resource, absl::MaxSplits('/', 4));
  if (parts.size() == 2) {
    absl::StatusOr<std::string> tenant = ParseTenantName(resource);
    if (!tenant.ok()) return tenant.status();
    return PolicyScope{*tenant, ""};
  }
  if (parts.size() < 4) return ParseKeyName(resource).status();
  absl::StatusOr<KeyName> key =
      ParseKeyName(absl::StrCat(parts[0], "/", parts[1], "/", parts[2], "/", parts[3]));
  if (!key.ok()) return key.status();
  return PolicyScope{key->tenant, key->key_id};
}

}  // namespace

absl::StatusOr<SimulationResult> Simulate(absl::string_view policy_json,
                                          const std::string& principal,
                                          const std::vector<std::string>& groups,
                                          absl::string_view action, const std::string& resource,
                                          const std::optional<std::string>& segment,
                                          const std::map<std::string, std::string>& context,
                                          absl::Time time) {
  absl::StatusOr<PolicyScope> scope = ScopeOf(resource);
  if (!scope.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("resource: ", scope.status().message()));
  }
  absl::StatusOr<Policy> policy = ParsePolicy(policy_json, *scope);
  if (!policy.ok()) return policy.status();
  std::optional<Action> parsed_action = ParseAction(action);
  if (!parsed_action) {
    return absl::InvalidArgumentError(
        absl::StrCat("action: unknown action ", QuoteForError(action)));
  }
  absl::StatusOr<PrincipalName> principal_name = ParsePrincipal(principal);
  if (!principal_name.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal: ", principal_name.status().message()));
  }
  AccessRequest request;
  request.principal = principal;
  request.groups = groups;
  request.principal_tenant = principal_name->tenant;
  request.action = *parsed_action;
  request.resource = resource;
  request.segment = segment;
  request.encryption_context = context;
  request.time = time;

  SimulationResult result;
  result.decision = Decide(*policy, request);
  if (result.decision.statement_index) {
    Policy only;
    only.scope = policy->scope;
    only.statements.push_back(policy->statements[*result.decision.statement_index]);
    result.deciding_statement_json = PolicyToJson(only);
  }
  return result;
}

}  // namespace clavis::kms::policy
