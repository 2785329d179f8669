#include "kms/policy/evaluator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kms/keys/names.h"
#include "kms/policy/conditions.h"
#include "kms/policy/principal.h"

namespace clavis::kms::policy {
namespace {

Decision Deny(std::string reason) {
  Decision decision;
  decision.reason = std::move(reason);
  return decision;
}

struct ResourceFacts {
  std::string tenant;
  std::string key_id;                  // empty for a tenant resource
  std::optional<std::string> segment;  // from a segment name
};

absl::StatusOr<ResourceFacts> ParseResource(absl::string_view resource) {
  // Dispatch on the collection word; each parser validates the whole name.
  std::vector<absl::string_view> parts = absl::StrSplit(resource, absl::MaxSplits('/', 5));
  if (parts.size() == 2) {
    absl::StatusOr<std::string> tenant = ParseTenantName(resource);
    if (!tenant.ok()) return tenant.status();
    return ResourceFacts{*tenant, "", std::nullopt};
  }
  if (parts.size() == 4) {
    absl::StatusOr<KeyName> key = ParseKeyName(resource);
    if (!key.ok()) return key.status();
    return ResourceFacts{key->tenant, key->key_id, std::nullopt};
  }
  if (parts.size() >= 6 && parts[4] == "versions") {
    absl::StatusOr<KeyVersionName> version = ParseKeyVersionName(resource);
    if (!version.ok()) return version.status();
    return ResourceFacts{version->key.tenant, version->key.key_id, std::nullopt};
  }
  absl::StatusOr<SegmentName> segment = ParseSegmentName(resource);
  if (!segment.ok()) return segment.status();
  return ResourceFacts{segment->key.tenant, segment->key.key_id, segment->segment};
}

bool NamesPrincipal(const Statement& statement, const AccessRequest& request) {
  for (const std::string& entry : statement.principals) {
    if (entry == request.principal) return true;
    if (std::find(request.groups.begin(), request.groups.end(), entry) != request.groups.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace

Decision Decide(const Policy& policy, const AccessRequest& request) {
  absl::StatusOr<PrincipalName> principal = ParsePrincipal(request.principal);
  if (!principal.ok()) {
    return Deny(absl::StrCat("denied: malformed principal: ", principal.status().message()));
  }
  absl::StatusOr<ResourceFacts> resource = ParseResource(request.resource);
  if (!resource.ok()) {
    return Deny(absl::StrCat("denied: malformed resource: ", resource.status().message()));
  }
  // Tenant isolation comes before, and regardless of, the policy. The name
  // and the authenticating tenant must agree too, so neither can be used to
  // smuggle the other.
  if (principal->tenant != request.principal_tenant ||
      request.principal_tenant != resource->tenant || resource->tenant != policy.scope.tenant) {
    return Deny(absl::StrCat("denied: cross-tenant access is never allowed (principal ",
                             request.principal, " of tenant ",
                             QuoteForError(request.principal_tenant), ", resource ",
                             request.resource, ")"));
  }
  if (!policy.scope.key_id.empty() && resource->key_id != policy.scope.key_id) {
    return Deny(absl::StrCat("denied: resource ", request.resource,
                             " is not governed by the policy of ", policy.scope.ToString()));
  }
  std::optional<std::string> segment = resource->segment;
  if (request.segment) {
    if (segment && *segment != *request.segment) {
      return Deny(absl::StrCat("denied: segment ", QuoteForError(*request.segment),
                               " disagrees with resource ", request.resource));
    }
    if (absl::Status s = ValidateSegment(*request.segment); !s.ok()) {
      return Deny(absl::StrCat("denied: malformed segment: ", s.message()));
    }
    segment = request.segment;
  }
  ConditionInput input{segment, &request.encryption_context, request.time};

  std::optional<size_t> first_allow;
  for (size_t i = 0; i < policy.statements.size(); ++i) {
    const Statement& statement = policy.statements[i];
    if (!Contains(statement.actions, request.action) || !NamesPrincipal(statement, request) ||
        !ConditionsHold(statement.conditions, input)) {
      continue;
    }
    if (statement.effect == Effect::kDeny) {
      Decision decision;
      decision.statement_index = i;
      decision.sid = statement.sid;
      decision.reason = absl::StrCat("denied by ", DescribeStatement(policy, i));
      return decision;
    }
    if (!first_allow) first_allow = i;
  }
  if (first_allow) {
    Decision decision;
    decision.allowed = true;
    decision.statement_index = *first_allow;
    decision.sid = policy.statements[*first_allow].sid;
    decision.reason = absl::StrCat("allowed by ", DescribeStatement(policy, *first_allow));
    return decision;
  }
  // Default deny. Say which condition failed if a statement would otherwise
  // have allowed: it is the usual cause of surprise.
  std::string reason = absl::StrCat("denied: no statement allows ", ActionName(request.action),
                                    " for ", request.principal, " on ", request.resource);
  for (size_t i = 0; i < policy.statements.size(); ++i) {
    const Statement& statement = policy.statements[i];
    if (statement.effect == Effect::kAllow && Contains(statement.actions, request.action) &&
        NamesPrincipal(statement, request)) {
      absl::StrAppend(&reason, " (", DescribeStatement(policy, i),
                      " does not apply: ", FirstFailedCondition(statement.conditions, input), ")");
      break;
    }
  }
  return Deny(std::move(reason));
}

}  // namespace clavis::kms::policy
