// Identity: who is calling, as established by authentication (mTLS client
// certificate, service token, or the loopback-only insecure development
// mode). Authorization (kms/access) decides what this identity may do.
#ifndef CLAVIS_KMS_AUTH_IDENTITY_H_
#define CLAVIS_KMS_AUTH_IDENTITY_H_

#include <string>
#include <vector>

namespace clavis::kms::auth {

enum class AuthMethod {
  kMutualTls,    // a client certificate signed by the configured client CA
  kToken,        // a signed service token (service_token.h)
  kInsecureDev,  // no authentication at all: loopback development mode only
};

// "mtls", "token", "insecure-dev".
const char* AuthMethodName(AuthMethod method);

struct Identity {
  // tenants/{tenant}/principals/{id}; for kInsecureDev the fixed
  // kInsecureDevPrincipal below.
  std::string principal;
  std::string tenant;  // the {tenant} of `principal`
  // tenants/{tenant}/groups/{id}, all of the principal's own tenant.
  std::vector<std::string> groups;
  AuthMethod method = AuthMethod::kInsecureDev;
  // The token's id (kToken only), for the audit trail and revocation.
  std::string token_id;
};

// The principal recorded for calls in insecure development mode. It is not
// a valid principal name on purpose: no policy can name it.
inline constexpr char kInsecureDevPrincipal[] = "insecure-dev:anonymous";

}  // namespace clavis::kms::auth

#endif  // CLAVIS_KMS_AUTH_IDENTITY_H_
