// Mapping a verified mTLS client certificate to a Clavis identity.
//
// The certificate's URI subject alternative names carry the identity (as
// issued by `clavisctl pki issue-client`, tools/pki/pki.h):
//   clavis:tenants/{t}/principals/{id}      exactly one: the principal
//   clavis-group:tenants/{t}/groups/{g}     any number: its groups
// Other URIs (e.g. SPIFFE ids) are ignored; schemes are matched exactly
// (lower case). The same "clavis:" URI twice counts once; a group named
// twice is listed once. When there is no "clavis:" URI, the subject common
// name is used if it is a principal name; groups then come only from URIs.
//
// Thread safety: stateless.
#ifndef CLAVIS_KMS_AUTH_CERTIFICATE_PRINCIPAL_H_
#define CLAVIS_KMS_AUTH_CERTIFICATE_PRINCIPAL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kms/auth/identity.h"

namespace clavis::kms::auth {

inline constexpr char kPrincipalUriScheme[] = "clavis:";
inline constexpr char kGroupUriScheme[] = "clavis-group:";

// Identity with method kMutualTls, or Unauthenticated: "client certificate
// names no Clavis principal ...", "... names two principals", "group ... is
// of another tenant than principal ...", "malformed principal ...".
absl::StatusOr<Identity> IdentityFromCertificate(const std::vector<std::string>& uri_sans,
                                                 const std::string& common_name);

}  // namespace clavis::kms::auth

#endif  // CLAVIS_KMS_AUTH_CERTIFICATE_PRINCIPAL_H_
