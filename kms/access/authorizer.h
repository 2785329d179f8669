// Authorizer: decides whether an authenticated identity may perform an
// action, from the key's stored policy (docs/POLICY.md) or, for tenant-level
// actions, from the configured tenant administrators.
//
//  - Tenant isolation comes first and no policy can open it: an identity of
//    tenant A is refused on any resource of tenant B.
//  - Key-level actions are decided by the key's policy (Decide in
//    kms/policy/evaluator.h): explicit deny wins, default deny.
//  - Tenant-level actions (CreateKey, ListKeys) and keys without a policy
//    (created before access control) are decided by the tenant
//    administrators list: they may create and list keys, and administer
//    (not use) policy-less keys so they can give them a policy.
//  - A key that does not exist: tenant administrators are allowed through
//    (the call then answers NOT_FOUND); anyone else is refused with the same
//    message as for an existing key, so existence does not leak.
//  - Server-level actions (CreateBackup: a copy of every tenant's keys) are
//    not in the policy language at all: only the principals and groups
//    configured as backup operators may take them, whatever their tenant.
//  - The insecure development identity is allowed everything (loopback
//    development mode only; clavisd refuses that mode on other addresses).
//
// Parsed policies are cached per key and re-parsed when the stored document
// changes (the key record itself is cached by KeyRepository).
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_ACCESS_AUTHORIZER_H_
#define CLAVIS_KMS_ACCESS_AUTHORIZER_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kms/auth/identity.h"
#include "kms/keys/clock.h"
#include "kms/keys/encryption_context.h"
#include "kms/keys/key_repository.h"
#include "kms/keys/names.h"
#include "kms/policy/action.h"
#include "kms/policy/policy.h"

namespace clavis::kms::access {

struct AuthorizerOptions {
  // Principals or groups (tenants/{t}/principals/{id} | tenants/{t}/groups/{g})
  // who administer their own tenant.
  std::vector<std::string> tenant_admins;
  // Principals or groups (any tenant) allowed to take backups of the whole
  // store (Operations.CreateBackup). Empty: nobody (default deny).
  std::vector<std::string> backup_operators;
};

// What a key-level request is about.
struct KeyRequest {
  KeyName key;
  policy::Action action = policy::Action::kGetKey;
  // The resource's full name (the key, a version or a segment); empty means
  // the key itself.
  std::string resource;
  std::optional<std::string> segment;
  const EncryptionContext* context = nullptr;  // data-plane calls
};

class Authorizer {
 public:
  // InvalidArgument for a malformed tenant_admins entry.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Create(KeyRepository* repository,
                                                            const Clock* clock,
                                                            AuthorizerOptions options);

  // OK or PermissionDenied with a reason safe to show and log.
  absl::Status AuthorizeTenant(const auth::Identity& who, policy::Action action,
                               const std::string& tenant) const;
  absl::Status AuthorizeKey(const auth::Identity& who, const KeyRequest& request);

  // OK if `who` is a configured backup operator (or the insecure development
  // identity); PermissionDenied otherwise, with a reason safe to show.
  absl::Status AuthorizeBackup(const auth::Identity& who) const;

  bool IsTenantAdmin(const auth::Identity& who, const std::string& tenant) const;

  // The key's parsed policy (nullptr for a policy-less key); NotFound if the
  // key does not exist.
  absl::StatusOr<std::shared_ptr<const policy::Policy>> PolicyOf(const KeyName& key);

 private:
  Authorizer(KeyRepository* repository, const Clock* clock, AuthorizerOptions options);

  KeyRepository* const repository_;
  const Clock* const clock_;
  const AuthorizerOptions options_;

  struct CachedPolicy {
    std::string json;
    std::shared_ptr<const policy::Policy> parsed;
  };
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  std::mutex mu_;
  std::map<std::string, CachedPolicy> cache_ ABSL_GUARDED_BY(mu_);  // by key name
};

// A policy document, validated as the policy of `key` (the parser's
// message, pointing at the bad field, on failure).
absl::StatusOr<policy::Policy> ParseKeyPolicy(const std::string& json, const KeyName& key);

}  // namespace clavis::kms::access

#endif  // CLAVIS_KMS_ACCESS_AUTHORIZER_H_
