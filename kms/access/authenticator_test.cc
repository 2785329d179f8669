// Authenticator: which credential wins, the development mode, and lock-out
// by peer host and by claimed principal.
#include "kms/access/authenticator.h"

#include "crypto/ed25519.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::access {
namespace {

using ::testing::HasSubstr;

class AuthenticatorTest : public ::testing::Test {
 protected:
  std::unique_ptr<Authenticator> Make(bool insecure_dev = false) {
    AuthenticatorOptions options;
    options.insecure_dev = insecure_dev;
    options.lockout.max_failures = 3;
    options.lockout.base_lockout = absl::Seconds(30);
    auth::TokenVerifierOptions tokens;
    tokens.audience = "clavis-test";
    tokens.issuers.push_back({"k1", issuer_.public_key});
    auto verifier = auth::TokenVerifier::Create(tokens, &clock_);
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    options.tokens = *std::move(verifier);
    return std::make_unique<Authenticator>(std::move(options), &clock_);
  }

  std::string Token(const std::string& principal, absl::Duration ttl = absl::Minutes(5)) {
    auth::TokenClaims claims;
    claims.issuer_key_id = "k1";
    claims.principal = principal;
    claims.audience = "clavis-test";
    claims.issued_at = clock_.Now();
    claims.expires_at = clock_.Now() + ttl;
    claims.token_id = "t1";
    auto token = auth::SignServiceToken(claims, issuer_.seed);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.ok() ? *token : "";
  }

  static PresentedCredentials Cert(const std::string& principal, const std::string& peer) {
    PresentedCredentials c;
    c.peer = peer;
    c.client_certificate = true;
    c.certificate_uris = {"clavis:" + principal};
    return c;
  }

  FakeClock clock_{absl::Now()};
  crypto::Ed25519KeyPair issuer_ = crypto::Ed25519KeyPair::Generate();
};

TEST_F(AuthenticatorTest, CertificatesAndTokensGiveTheirPrincipal) {
  auto authn = Make();
  auto by_cert = authn->Authenticate(Cert("tenants/acme/principals/app", "ipv4:10.0.0.1:1"));
  ASSERT_TRUE(by_cert.ok()) << by_cert.status();
  EXPECT_EQ(by_cert->principal, "tenants/acme/principals/app");
  EXPECT_EQ(by_cert->tenant, "acme");
  EXPECT_EQ(by_cert->method, auth::AuthMethod::kMutualTls);

  PresentedCredentials token;
  token.peer = "ipv4:10.0.0.1:2";
  token.bearer_token = Token("tenants/acme/principals/batch");
  auto by_token = authn->Authenticate(token);
  ASSERT_TRUE(by_token.ok()) << by_token.status();
  EXPECT_EQ(by_token->principal, "tenants/acme/principals/batch");
  EXPECT_EQ(by_token->method, auth::AuthMethod::kToken);
}

TEST_F(AuthenticatorTest, BothOrNeitherAreRefusedOutsideDevelopmentMode) {
  auto authn = Make();
  PresentedCredentials both = Cert("tenants/acme/principals/app", "ipv4:10.0.0.1:1");
  both.bearer_token = Token("tenants/acme/principals/batch");
  EXPECT_THAT(authn->Authenticate(both).status().message(), HasSubstr("not both"));
  PresentedCredentials none;
  none.peer = "ipv4:10.0.0.2:1";
  auto anonymous = authn->Authenticate(none);
  EXPECT_TRUE(absl::IsUnauthenticated(anonymous.status()));
  EXPECT_THAT(anonymous.status().message(), HasSubstr("no credentials"));

  auto dev = Make(/*insecure_dev=*/true)->Authenticate(none);
  ASSERT_TRUE(dev.ok());
  EXPECT_EQ(dev->method, auth::AuthMethod::kInsecureDev);
  EXPECT_EQ(dev->principal, auth::kInsecureDevPrincipal);
}

TEST_F(AuthenticatorTest, RepeatedFailuresLockOutThePeerThenRecover) {
  auto authn = Make();
  PresentedCredentials bad;
  bad.peer = "ipv4:10.0.0.9:1000";
  bad.bearer_token = "clavis-token.v1.garbage.garbage";
  AuthenticationFailure failure;
  for (int i = 0; i < 3; ++i) {
    failure = {};
    EXPECT_TRUE(absl::IsUnauthenticated(authn->Authenticate(bad, &failure).status()));
  }
  EXPECT_TRUE(failure.locked_out_for.has_value()) << "the third failure locks";
  // Even a good certificate from that host (another port) is refused now.
  auto locked = authn->Authenticate(Cert("tenants/acme/principals/app", "ipv4:10.0.0.9:2000"));
  EXPECT_TRUE(absl::IsUnauthenticated(locked.status()));
  EXPECT_THAT(locked.status().message(), HasSubstr("locked out"));
  // Another host is not affected.
  EXPECT_TRUE(authn->Authenticate(Cert("tenants/acme/principals/app", "ipv4:10.0.0.8:1")).ok());
  clock_.Advance(absl::Seconds(31));
  EXPECT_TRUE(authn->Authenticate(Cert("tenants/acme/principals/app", "ipv4:10.0.0.9:3")).ok());
}

TEST_F(AuthenticatorTest, ExpiredTokensCountAgainstTheClaimedPrincipal) {
  auto authn = Make();
  const std::string expired = Token("tenants/acme/principals/batch", absl::Seconds(1));
  clock_.Advance(absl::Minutes(5));
  for (int i = 0; i < 3; ++i) {
    PresentedCredentials c;
    c.peer = absl::StrCat("ipv4:10.1.0.", i, ":1");  // spread over hosts
    c.bearer_token = expired;
    AuthenticationFailure failure;
    EXPECT_TRUE(absl::IsUnauthenticated(authn->Authenticate(c, &failure).status()));
    EXPECT_EQ(failure.claimed_principal, "tenants/acme/principals/batch");
  }
  PresentedCredentials fresh;
  fresh.peer = "ipv4:10.2.0.1:1";
  fresh.bearer_token = Token("tenants/acme/principals/batch");
  auto locked = authn->Authenticate(fresh);
  EXPECT_TRUE(absl::IsUnauthenticated(locked.status()));
  EXPECT_THAT(locked.status().message(), HasSubstr("tenants/acme/principals/batch"));
}

TEST_F(AuthenticatorTest, ForgedTokensDoNotLockOutThePrincipalTheyName) {
  auto authn = Make();
  crypto::Ed25519KeyPair forger = crypto::Ed25519KeyPair::Generate();
  auth::TokenClaims claims;
  claims.issuer_key_id = "k1";
  claims.principal = "tenants/acme/principals/batch";
  claims.audience = "clavis-test";
  claims.issued_at = clock_.Now();
  claims.expires_at = clock_.Now() + absl::Minutes(5);
  claims.token_id = "forged";
  auto forged = auth::SignServiceToken(claims, forger.seed);
  ASSERT_TRUE(forged.ok());
  for (int i = 0; i < 10; ++i) {
    PresentedCredentials c;
    c.peer = absl::StrCat("ipv4:10.3.0.", i, ":1");  // many hosts, none locked
    c.bearer_token = *forged;
    EXPECT_TRUE(absl::IsUnauthenticated(authn->Authenticate(c).status()));
  }
  PresentedCredentials real;
  real.peer = "ipv4:10.4.0.1:1";
  real.bearer_token = Token("tenants/acme/principals/batch");
  EXPECT_TRUE(authn->Authenticate(real).ok()) << "the real owner is not locked out";
}

TEST_F(AuthenticatorTest, PeerHostStripsThePort) {
  EXPECT_EQ(Authenticator::PeerHost("ipv4:127.0.0.1:5555"), "ipv4:127.0.0.1");
  EXPECT_EQ(Authenticator::PeerHost("ipv6:[::1]:5555"), "ipv6:[::1]");
  EXPECT_EQ(Authenticator::PeerHost("unix:/tmp/s"), "unix:/tmp/s");
}

}  // namespace
}  // namespace clavis::kms::access
