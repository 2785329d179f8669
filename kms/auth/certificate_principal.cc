#include "kms/auth/certificate_principal.h"

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "kms/keys/names.h"
#include "kms/policy/principal.h"

namespace clavis::kms::auth {

absl::StatusOr<Identity> IdentityFromCertificate(const std::vector<std::string>& uri_sans,
                                                 const std::string& common_name) {
  // The principal: the one "clavis:" URI, else the common name.
  std::string principal;
  for (const std::string& uri : uri_sans) {
    absl::string_view name = uri;
    if (!absl::ConsumePrefix(&name, kPrincipalUriScheme)) continue;
    if (!principal.empty() && principal != name) {
      return absl::UnauthenticatedError(
          absl::StrCat("client certificate names two principals, ", QuoteForError(principal),
                       " and ", QuoteForError(name), "; it must name exactly one"));
    }
    principal = std::string(name);
    if (principal.empty()) {
      return absl::UnauthenticatedError(absl::StrCat(
          "malformed principal in client certificate: empty \"", kPrincipalUriScheme, "\" URI"));
    }
  }
  const bool from_uri = !principal.empty();
  if (!from_uri) {
    if (common_name.empty() || !policy::ParsePrincipal(common_name).ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat("client certificate names no Clavis principal: no \"", kPrincipalUriScheme,
                       "tenants/{t}/principals/{id}\" URI SAN, and the subject common name ",
                       QuoteForError(common_name), " is not a principal name"));
    }
    principal = common_name;
  }
  absl::StatusOr<policy::PrincipalName> parsed = policy::ParsePrincipal(principal);
  if (!parsed.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("malformed principal in client certificate: ", parsed.status().message()));
  }

  Identity identity;
  identity.principal = principal;
  identity.tenant = parsed->tenant;
  identity.method = AuthMethod::kMutualTls;
  absl::flat_hash_set<absl::string_view> seen;  // views into uri_sans
  for (const std::string& uri : uri_sans) {
    absl::string_view group = uri;
    if (!absl::ConsumePrefix(&group, kGroupUriScheme)) continue;
    absl::StatusOr<policy::PrincipalName> g = policy::ParsePrincipalOrGroup(group);
    if (!g.ok() || !g->is_group) {
      return absl::UnauthenticatedError(absl::StrCat(
          "malformed group in client certificate: ",
          g.ok() ? absl::StrCat(QuoteForError(group), " is not tenants/{tenant}/groups/{id}")
                 : std::string(g.status().message())));
    }
    if (g->tenant != parsed->tenant) {
      return absl::UnauthenticatedError(
          absl::StrCat("client certificate group ", QuoteForError(group),
                       " is of another tenant than principal ", QuoteForError(principal)));
    }
    if (seen.insert(group).second) identity.groups.emplace_back(group);
  }
  return identity;
}

}  // namespace clavis::kms::auth
