#include "kms/access/authenticator.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kms/auth/certificate_principal.h"

namespace clavis::kms::access {
namespace {

std::string Seconds(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)))),
                      "s");
}

}  // namespace

Authenticator::Authenticator(AuthenticatorOptions options, const Clock* clock)
    : options_(std::move(options)), failures_(options_.lockout, clock) {}

std::string Authenticator::PeerHost(const std::string& peer) {
  // ipv4:1.2.3.4:port, ipv6:[::1]:port, unix:/path (no port).
  if (absl::StartsWith(peer, "unix:")) return peer;
  const size_t colon = peer.rfind(':');
  if (colon == std::string::npos || colon < peer.find(':') + 1) return peer;
  return peer.substr(0, colon);
}

absl::StatusOr<auth::Identity> Authenticator::Verify(
    const PresentedCredentials& credentials) const {
  if (credentials.client_certificate && credentials.bearer_token.has_value()) {
    return absl::UnauthenticatedError(
        "present either a client certificate or a bearer token, not both");
  }
  if (credentials.client_certificate) {
    return auth::IdentityFromCertificate(credentials.certificate_uris,
                                         credentials.certificate_common_name);
  }
  if (credentials.bearer_token.has_value()) {
    if (options_.tokens == nullptr) {
      return absl::UnauthenticatedError("this server does not accept service tokens");
    }
    return options_.tokens->Verify(*credentials.bearer_token);
  }
  if (options_.insecure_dev) {
    auth::Identity dev;
    dev.principal = auth::kInsecureDevPrincipal;
    dev.method = auth::AuthMethod::kInsecureDev;
    return dev;
  }
  return absl::UnauthenticatedError(
      "no credentials: present a client certificate (mTLS) or `authorization: Bearer <service "
      "token>`");
}

absl::StatusOr<auth::Identity> Authenticator::Authenticate(const PresentedCredentials& credentials,
                                                           AuthenticationFailure* failure) {
  AuthenticationFailure ignored;
  if (failure == nullptr) failure = &ignored;
  const std::string host = PeerHost(credentials.peer);
  std::string claimed;
  if (credentials.bearer_token.has_value()) {
    auto unverified = auth::DecodeServiceTokenUnverified(*credentials.bearer_token);
    if (unverified.ok()) claimed = "principal:" + unverified->principal;
  }
  failure->claimed_principal = claimed.empty() ? "" : claimed.substr(10);
  for (const std::string& subject : {std::string("peer:") + host, claimed}) {
    if (subject.empty()) continue;
    if (auto locked = failures_.LockedFor(subject); locked.has_value()) {
      return absl::UnauthenticatedError(absl::StrCat(
          "too many failed authentication attempts from ", subject.substr(subject.find(':') + 1),
          "; locked out, retry in ", Seconds(*locked)));
    }
  }
  auto identity = Verify(credentials);
  if (identity.ok()) {
    failures_.RecordSuccess("peer:" + host);
    if (!claimed.empty()) failures_.RecordSuccess(claimed);
    return identity;
  }
  // Only a refused credential counts; a server-side problem (an unreadable
  // revocation list: Unavailable) must not lock everyone out. The claimed
  // principal only counts for tokens its issuer really signed (expired,
  // revoked, wrong audience): anyone can forge a token naming a victim, and
  // that must not lock the victim out.
  if (!absl::IsUnauthenticated(identity.status())) return identity;
  const bool signed_by_issuer = !claimed.empty() && options_.tokens != nullptr &&
                                options_.tokens->SignatureValid(*credentials.bearer_token);
  for (const std::string& subject :
       {std::string("peer:") + host, signed_by_issuer ? claimed : std::string()}) {
    if (subject.empty()) continue;
    if (auto locked = failures_.RecordFailure(subject); locked.has_value()) {
      failure->locked_out_for = locked;
    }
  }
  return identity;
}

}  // namespace clavis::kms::access
