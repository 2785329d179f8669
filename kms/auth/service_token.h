// Service tokens: short-lived bearer credentials for applications where
// mTLS is awkward. A token is signed with Ed25519 (libsodium) by an issuer
// whose public key clavisd trusts; it names one principal (and its groups),
// an audience (the clavisd deployment), an expiry and a unique id that can
// be revoked. Wire format: docs/FORMAT.md, "Service token (v1)":
//
//   clavis-token.v1.<base64url(claims)>.<base64url(signature)>
//
// where claims is the protobuf-free binary encoding given there and the
// signature covers "clavis-token.v1." || base64url(claims) (the exact bytes
// the verifier sees, so no canonicalisation is needed).
//
// A client sends it as gRPC metadata `authorization: Bearer <token>`.
//
// Thread safety: SignServiceToken is stateless. TokenVerifier::Verify may be
// called concurrently; it re-reads the revocation file at most once per
// second when the file's modification time changed.
#ifndef CLAVIS_KMS_AUTH_SERVICE_TOKEN_H_
#define CLAVIS_KMS_AUTH_SERVICE_TOKEN_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crypto/secret_bytes.h"
#include "kms/auth/identity.h"
#include "kms/keys/clock.h"

namespace clavis::kms::auth {

inline constexpr char kTokenPrefix[] = "clavis-token.v1.";
// A token longer than this is refused before it is decoded.
inline constexpr size_t kMaxTokenBytes = 8192;
inline constexpr size_t kMaxTokenGroups = 32;

struct TokenClaims {
  std::string issuer_key_id;        // which trusted issuer key signed it; 1-64 of [A-Za-z0-9._-]
  std::string principal;            // tenants/{t}/principals/{id}
  std::vector<std::string> groups;  // tenants/{t}/groups/{id}, same tenant, no duplicates
  // The clavisd deployment it is meant for: 1-256 printable ASCII, no space.
  std::string audience;
  absl::Time issued_at;   // encoded as whole Unix seconds (sub-second part dropped)
  absl::Time expires_at;  // at least one second after issued_at
  std::string token_id;   // 1-64 of [A-Za-z0-9._-]; unique; what revocation names
};

// Signs `claims` with the Ed25519 `seed` (32 bytes). InvalidArgument when a
// claim is malformed (principal or group names, tenant mismatch, empty
// audience, expires_at <= issued_at, ids out of their alphabet, a group
// named twice, more than kMaxTokenGroups groups, a token that would be longer
// than kMaxTokenBytes, a seed that is not 32 bytes).
absl::StatusOr<std::string> SignServiceToken(const TokenClaims& claims,
                                             const crypto::SecretBytes& seed);

// Decodes a token WITHOUT checking the signature or times: for tools that
// print a token, and for lock-out accounting of failures by claimed
// principal. Never use the result to grant anything. The format is checked
// as strictly as by Verify (names included); InvalidArgument("malformed
// token: ...") otherwise.
absl::StatusOr<TokenClaims> DecodeServiceTokenUnverified(absl::string_view token);

struct TrustedIssuer {
  std::string key_id;
  std::string public_key;  // 32 raw bytes
};

struct TokenVerifierOptions {
  std::string audience;                // required
  std::vector<TrustedIssuer> issuers;  // at least one
  // Tokens whose expires_at - issued_at is longer are refused: tokens are
  // meant to be short-lived.
  absl::Duration max_lifetime = absl::Hours(24);
  absl::Duration clock_skew = absl::Seconds(60);
  // Optional: a text file of revoked token ids, one per line ('#' starts a
  // comment). Missing file = nothing revoked; a file that cannot be used
  // (unreadable, not a regular file, over 16 MiB, or a line that is not a
  // token id) refuses every token (fail closed). Its metadata (mtime, ctime,
  // size, inode) is checked at most once per second of `clock`, and the file
  // re-read when it changed (every second while it cannot be used).
  std::string revocation_file;
};

class TokenVerifier {
 public:
  // InvalidArgument for bad options (no or malformed audience, no issuer,
  // bad key size or key id, duplicate key id, max_lifetime <= 0, clock_skew
  // outside 0..1h, null clock). `clock` must outlive the verifier.
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> Create(TokenVerifierOptions options,
                                                               const Clock* clock);
  virtual ~TokenVerifier() = default;

  // The caller's identity (method kToken), or Unauthenticated with a reason a
  // person understands and that contains nothing secret ("token expired at
  // 2026-11-23T10:00:00Z", "token signature is not valid", "token is for
  // audience \"x\", this server is \"y\"", "token t-42 was revoked", "unknown
  // token issuer key \"k2\"", "malformed token: ..."). Checks in the order of
  // docs/FORMAT.md: format, issuer, signature, then the claims (audience,
  // not before issued_at - clock_skew, expired when now > expires_at +
  // clock_skew, lifetime, revocation). A revocation file that cannot be used
  // refuses every token with Unavailable (a server problem: fail closed, but
  // do not blame the caller's credential).
  virtual absl::StatusOr<Identity> Verify(absl::string_view token) const = 0;

  // Whether the token is well formed and signed by a trusted issuer,
  // whatever its claims say (expired, revoked...). Lock-out accounting by
  // claimed principal uses it: a forged token must not lock out the
  // principal it names.
  virtual bool SignatureValid(absl::string_view token) const = 0;
};

}  // namespace clavis::kms::auth

#endif  // CLAVIS_KMS_AUTH_SERVICE_TOKEN_H_
