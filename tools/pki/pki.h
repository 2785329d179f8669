// A small certificate authority for tests and small deployments of Clavis
// (`clavisctl pki ...`), built on OpenSSL's X509 API (no hand-written ASN.1).
//
// Keys are ECDSA P-256. Certificates are X.509 v3:
//  - the CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign+cRLSign;
//  - a server certificate: keyUsage digitalSignature, extendedKeyUsage
//    serverAuth, SAN with the given DNS names and IP addresses;
//  - a client certificate for a principal: extendedKeyUsage clientAuth,
//    subject CN = the principal name, and SAN URIs
//    "clavis:tenants/{t}/principals/{id}" plus one
//    "clavis-group:tenants/{t}/groups/{g}" per group. clavisd maps a client
//    certificate to its principal and groups from these URIs
//    (kms/auth/certificate_principal.h).
// Serial numbers are 128 random bits.
//
// Private keys are PEM (PKCS#8, unencrypted) held in SecretBytes and written
// with mode 0600.
//
// Thread safety: stateless functions, safe to call concurrently.
#ifndef CLAVIS_TOOLS_PKI_PKI_H_
#define CLAVIS_TOOLS_PKI_PKI_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "kms/auth/certificate_principal.h"  // kPrincipalUriScheme, kGroupUriScheme

namespace clavis::pki {


struct KeyAndCertificate {
  std::string certificate_pem;
  crypto::SecretBytes private_key_pem;
};

struct CaOptions {
  std::string common_name = "Clavis CA";
  absl::Duration validity = absl::Hours(24 * 365 * 5);
};

struct ServerCertOptions {
  std::string common_name = "clavisd";
  std::vector<std::string> dns_names = {"localhost"};
  std::vector<std::string> ip_addresses = {"127.0.0.1", "::1"};
  absl::Duration validity = absl::Hours(24 * 365);
};

struct ClientCertOptions {
  std::string principal;            // tenants/{t}/principals/{id}, required
  std::vector<std::string> groups;  // tenants/{t}/groups/{id}, same tenant
  absl::Duration validity = absl::Hours(24 * 90);
};

// A new self-signed CA.
absl::StatusOr<KeyAndCertificate> CreateCertificateAuthority(const CaOptions& options);

// Certificates signed by `ca`. InvalidArgument for malformed names or
// addresses (a principal or group of another tenant, an IP that does not
// parse), or a `ca` whose key does not match its certificate.
absl::StatusOr<KeyAndCertificate> IssueServerCertificate(const KeyAndCertificate& ca,
                                                         const ServerCertOptions& options);
absl::StatusOr<KeyAndCertificate> IssueClientCertificate(const KeyAndCertificate& ca,
                                                         const ClientCertOptions& options);

// Files: <prefix>.crt (0644) and <prefix>.key (0600). Refuses to overwrite
// existing files unless `overwrite`.
absl::Status WriteKeyAndCertificate(const KeyAndCertificate& pair, const std::string& prefix,
                                    bool overwrite = false);
absl::StatusOr<KeyAndCertificate> ReadKeyAndCertificate(const std::string& prefix);

}  // namespace clavis::pki

#endif  // CLAVIS_TOOLS_PKI_PKI_H_
