#include "kms/access/authorizer.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kms/policy/evaluator.h"
#include "kms/policy/policy_parser.h"
#include "kms/policy/principal.h"

namespace clavis::kms::access {
namespace {

constexpr size_t kMaxCachedPolicies = 10000;

bool IsMember(const auth::Identity& who, const std::string& entry) {
  return entry == who.principal ||
         std::find(who.groups.begin(), who.groups.end(), entry) != who.groups.end();
}

absl::Status Denied(const auth::Identity& who, policy::Action action, const std::string& resource,
                    absl::string_view why) {
  return absl::PermissionDeniedError(
      absl::StrCat("denied: ", who.principal, " may not ", policy::ActionName(action), " on ",
                   resource, why.empty() ? "" : " (", why, why.empty() ? "" : ")"));
}

}  // namespace

absl::StatusOr<policy::Policy> ParseKeyPolicy(const std::string& json, const KeyName& key) {
  return policy::ParsePolicy(json, policy::PolicyScope{key.tenant, key.key_id});
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Create(KeyRepository* repository,
                                                               const Clock* clock,
                                                               AuthorizerOptions options) {
  for (const std::string& entry : options.tenant_admins) {
    auto parsed = policy::ParsePrincipalOrGroup(entry);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("tenant_admins: ", parsed.status().message()));
    }
  }
  for (const std::string& entry : options.backup_operators) {
    auto parsed = policy::ParsePrincipalOrGroup(entry);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("backup_operators: ", parsed.status().message()));
    }
  }
  return std::unique_ptr<Authorizer>(new Authorizer(repository, clock, std::move(options)));
}

Authorizer::Authorizer(KeyRepository* repository, const Clock* clock, AuthorizerOptions options)
    : repository_(repository), clock_(clock), options_(std::move(options)) {}

bool Authorizer::IsTenantAdmin(const auth::Identity& who, const std::string& tenant) const {
  if (who.tenant != tenant) return false;
  for (const std::string& entry : options_.tenant_admins) {
    if (absl::StartsWith(entry, absl::StrCat("tenants/", tenant, "/")) && IsMember(who, entry)) {
      return true;
    }
  }
  return false;
}

absl::Status Authorizer::AuthorizeBackup(const auth::Identity& who) const {
  if (who.method == auth::AuthMethod::kInsecureDev) return absl::OkStatus();
  for (const std::string& entry : options_.backup_operators) {
    if (IsMember(who, entry)) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("denied: ", who.principal,
                   " may not CreateBackup (a backup holds every tenant's keys: only clavisd's "
                   "backup_operators may take one)"));
}

absl::Status Authorizer::AuthorizeTenant(const auth::Identity& who, policy::Action action,
                                         const std::string& tenant) const {
  if (who.method == auth::AuthMethod::kInsecureDev) return absl::OkStatus();
  const std::string resource = absl::StrCat("tenants/", tenant);
  if (who.tenant != tenant) {
    return Denied(who, action, resource, "cross-tenant access is never allowed");
  }
  if (IsTenantAdmin(who, tenant)) return absl::OkStatus();
  return Denied(who, action, resource, "only the tenant's administrators may");
}

absl::StatusOr<std::shared_ptr<const policy::Policy>> Authorizer::PolicyOf(const KeyName& key) {
  auto entry = repository_->GetKey(key);
  if (!entry.ok()) return entry.status();
  const std::string& json = (*entry)->record().policy_json();
  if (json.empty()) return std::shared_ptr<const policy::Policy>();
  const std::string name = key.ToString();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(name);
    if (it != cache_.end() && it->second.json == json) return it->second.parsed;
  }
  auto parsed = ParseKeyPolicy(json, key);
  if (!parsed.ok()) {
    // Stored documents were validated on the way in; this means a damaged
    // record or a language change: refuse rather than guess.
    return absl::InternalError(absl::StrCat("the stored policy of ", name,
                                            " does not parse: ", parsed.status().message()));
  }
  auto shared = std::make_shared<const policy::Policy>(*std::move(parsed));
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.size() >= kMaxCachedPolicies) cache_.clear();
  cache_[name] = CachedPolicy{json, shared};
  return shared;
}

absl::Status Authorizer::AuthorizeKey(const auth::Identity& who, const KeyRequest& request) {
  if (who.method == auth::AuthMethod::kInsecureDev) return absl::OkStatus();
  const std::string resource = request.resource.empty() ? request.key.ToString() : request.resource;
  if (who.tenant != request.key.tenant) {
    return Denied(who, request.action, resource, "cross-tenant access is never allowed");
  }
  auto policy = PolicyOf(request.key);
  if (absl::IsNotFound(policy.status())) {
    if (IsTenantAdmin(who, request.key.tenant)) return absl::OkStatus();  // -> NOT_FOUND
    return Denied(who, request.action, resource, "no statement allows it");
  }
  if (!policy.ok()) return policy.status();
  if (*policy == nullptr) {
    if (policy::ClassOf(request.action) != policy::ActionClass::kDataPlane &&
        IsTenantAdmin(who, request.key.tenant)) {
      return absl::OkStatus();
    }
    return Denied(who, request.action, resource,
                  "the key has no policy yet; a tenant administrator must set one");
  }
  policy::AccessRequest access;
  access.principal = who.principal;
  access.groups = who.groups;
  access.principal_tenant = who.tenant;
  access.action = request.action;
  access.resource = resource;
  access.segment = request.segment;
  if (request.context != nullptr) access.encryption_context = *request.context;
  access.time = clock_->Now();
  policy::Decision decision = policy::Decide(**policy, access);
  if (decision.allowed) return absl::OkStatus();
  return absl::PermissionDeniedError(decision.reason);
}

}  // namespace clavis::kms::access
