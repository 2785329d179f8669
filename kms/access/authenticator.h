// Authenticator: turns what a caller presented at the transport (a verified
// client certificate, a bearer service token, or nothing) into an Identity,
// and enforces lock-out after repeated failures.
//
// Rules:
//  - A verified client certificate (the TLS stack checked it against the
//    configured client CA) maps to its principal (certificate_principal.h).
//  - Otherwise a bearer token is verified (service_token.h).
//  - A caller presenting both is refused: two identities for one call is
//    ambiguous.
//  - A caller presenting neither is the insecure development identity when
//    that mode is on (loopback only), else refused.
//  - Failures are counted per peer host and, for a token, per claimed
//    principal; a subject over the limit is refused before its credential is
//    looked at, with how long it stays locked out.
//
// Thread safety: Authenticate may be called concurrently.
#ifndef CLAVIS_KMS_ACCESS_AUTHENTICATOR_H_
#define CLAVIS_KMS_ACCESS_AUTHENTICATOR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kms/auth/identity.h"
#include "kms/auth/lockout.h"
#include "kms/auth/service_token.h"
#include "kms/keys/clock.h"

namespace clavis::kms::access {

// What the transport saw; no gRPC types.
struct PresentedCredentials {
  std::string peer;                 // e.g. "ipv4:127.0.0.1:50312"
  bool client_certificate = false;  // a client certificate was verified by TLS
  std::vector<std::string> certificate_uris;
  std::string certificate_common_name;
  std::optional<std::string> bearer_token;
};

struct AuthenticatorOptions {
  bool insecure_dev = false;
  std::unique_ptr<auth::TokenVerifier> tokens;  // null: tokens are not accepted
  auth::LockoutOptions lockout;
};

struct AuthenticationFailure {
  // Set when this failure started a lock-out (audit it once).
  std::optional<absl::Duration> locked_out_for;
  // The principal a token claimed, unverified (for the audit record).
  std::string claimed_principal;
};

class Authenticator {
 public:
  Authenticator(AuthenticatorOptions options, const Clock* clock);

  // Identity, or Unauthenticated with a clear reason (never the credential
  // itself). `failure` (optional) receives details of a refusal.
  absl::StatusOr<auth::Identity> Authenticate(const PresentedCredentials& credentials,
                                              AuthenticationFailure* failure = nullptr);

  bool insecure_dev() const { return options_.insecure_dev; }

  // "ipv4:10.0.0.7:51234" -> "ipv4:10.0.0.7"; lock-out is per host, not per
  // connection.
  static std::string PeerHost(const std::string& peer);

 private:
  absl::StatusOr<auth::Identity> Verify(const PresentedCredentials& credentials) const;

  AuthenticatorOptions options_;
  auth::AuthFailureTracker failures_;
};

}  // namespace clavis::kms::access

#endif  // CLAVIS_KMS_ACCESS_AUTHENTICATOR_H_
