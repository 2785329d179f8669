// A small certificate authority for tests and small deployments of Clavis
// (`clavisctl pki ...`), built on OpenSSL's X509 API (no hand-written ASN.1).
//
// Keys are ECDSA P-256, signatures ECDSA with SHA-256. Certificates are
// X.509 v3, valid from 5 minutes before issuance (clock skew between hosts)
// for the requested validity, which must be positive and at most 100 years;
// a certificate may not outlive its CA:
//  - the CA: basicConstraints CA:TRUE, pathlen:0 (critical; it signs leaf
//    certificates only), keyUsage keyCertSign+cRLSign;
//  - leaf certificates: basicConstraints CA:FALSE (critical);
//  - a server certificate: keyUsage digitalSignature, extendedKeyUsage
//    serverAuth, SAN with the given DNS names and IP addresses;
//  - a client certificate for a principal: extendedKeyUsage clientAuth,
//    subject CN = the principal name (X.509 caps a CN at 64 characters: a
//    longer name is cut to 63 and ends in '~', which is not a valid name
//    character, so the CN never names another principal), and SAN URIs
//    "clavis:tenants/{t}/principals/{id}" plus one
//    "clavis-group:tenants/{t}/groups/{g}" per group. clavisd maps a client
//    certificate to its principal and groups from these URIs
//    (kms/auth/certificate_principal.h).
// Serial numbers are 128 random bits.
//
// Private keys are PEM (PKCS#8, unencrypted) held in SecretBytes and written
// with mode 0600.
//
// All certificates carry subjectKeyIdentifier and authorityKeyIdentifier.
//
// Thread safety: stateless functions, safe to call concurrently.
#ifndef CLAVIS_TOOLS_PKI_PKI_H_
#define CLAVIS_TOOLS_PKI_PKI_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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

// A new self-signed CA. InvalidArgument for an empty common name or one
// longer than 64 characters, or a validity out of range.
absl::StatusOr<KeyAndCertificate> CreateCertificateAuthority(const CaOptions& options);

// Certificates signed by `ca`. InvalidArgument for malformed names or
// addresses (a principal or group of another tenant, an IP that does not
// parse, a server certificate without any name), or a `ca` whose key does
// not match its certificate, that is not a CA certificate, or that would
// expire before the new certificate.
absl::StatusOr<KeyAndCertificate> IssueServerCertificate(const KeyAndCertificate& ca,
                                                         const ServerCertOptions& options);
absl::StatusOr<KeyAndCertificate> IssueClientCertificate(const KeyAndCertificate& ca,
                                                         const ClientCertOptions& options);

// Files: <prefix>.crt (0644) and <prefix>.key (0600). Refuses to overwrite
// existing files unless `overwrite`.
//
// Each file is written to a temporary file beside it (created O_EXCL, mode
// 0600), synced, then renamed into place (linked, when !overwrite, so an
// existing file is never replaced even by a concurrent writer). Both
// temporary files are written before either is published. Errors:
// AlreadyExists (a file exists and !overwrite), NotFound (no such directory),
// InvalidArgument (other unusable paths: permissions, not a directory, ...),
// Internal (I/O errors such as a full disk).
absl::Status WriteKeyAndCertificate(const KeyAndCertificate& pair, const std::string& prefix,
                                    bool overwrite = false);
// Reads <prefix>.crt and <prefix>.key back. NotFound if a file is missing;
// InvalidArgument if it is not a PEM certificate / private key (an encrypted
// key is refused, never prompted for) or the key does not match the
// certificate.
absl::StatusOr<KeyAndCertificate> ReadKeyAndCertificate(const std::string& prefix);

// One file written the same way (temporary file, sync, rename or link) with
// `mode`, for other credentials (token seeds, tokens). Same errors as
// WriteKeyAndCertificate.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view contents, unsigned mode,
                                 bool overwrite);

// What `clavisctl pki` prints about a certificate it wrote.
struct CertificateInfo {
  std::string subject;  // one line, RFC 2253: "CN=clavisd"
  std::string issuer;
  std::string serial_hex;  // upper-case hex, no separators
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // "10.0.0.5", "::1"
  std::vector<std::string> uris;          // "clavis:tenants/acme/principals/app"
};
// InvalidArgument if `certificate_pem` is not a PEM certificate.
absl::StatusOr<CertificateInfo> DescribeCertificate(absl::string_view certificate_pem);

}  // namespace clavis::pki

#endif  // CLAVIS_TOOLS_PKI_PKI_H_
