// Names of the identities a policy grants to:
//   tenants/{tenant}/principals/{id}   one authenticated identity
//   tenants/{tenant}/groups/{id}       a group; memberships come with the request
// {id}: 1-128 of [A-Za-z0-9._@-], starting with a letter or digit (wide
// enough for service-account and e-mail-like ids from the authenticator).
//
// Thread safety: stateless functions, safe to call concurrently.
#ifndef CLAVIS_KMS_POLICY_PRINCIPAL_H_
#define CLAVIS_KMS_POLICY_PRINCIPAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::kms::policy {

struct PrincipalName {
  std::string tenant;
  bool is_group = false;
  std::string id;
};

// Either form above; InvalidArgument saying which part is wrong.
absl::StatusOr<PrincipalName> ParsePrincipalOrGroup(absl::string_view name);

// Only the tenants/{t}/principals/{id} form (a request is made by a
// principal, never by a group).
absl::StatusOr<PrincipalName> ParsePrincipal(absl::string_view name);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_PRINCIPAL_H_
