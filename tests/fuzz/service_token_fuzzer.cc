// Service tokens (docs/FORMAT.md "Service token (v1)"): the bearer tokens
// any network peer can send to clavisd, decoded before anything else is
// known about the caller (lock-out accounting by claimed principal).
//
// For every input: DecodeServiceTokenUnverified and TokenVerifier::Verify
// (fixture issuer, audience and time) must not crash; Verify only accepts
// what decodes and carries a valid signature; and a token whose signature
// is valid is exactly what SignServiceToken makes of its decoded claims
// (one encoding per set of claims, so nothing in a signed token is ignored).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "crypto/ed25519.h"
#include "kms/auth/service_token.h"
#include "kms/keys/clock.h"
#include "tests/fuzz/fuzz_fixtures.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {
namespace {

struct Fixture {
  kms::FakeClock clock{absl::FromUnixSeconds(kFixtureNow)};
  std::unique_ptr<kms::auth::TokenVerifier> verifier;
};

const Fixture& TheFixture() {
  static const Fixture* fixture = [] {
    auto* f = new Fixture();
    auto pair = crypto::Ed25519KeyPair::FromSeed(FixtureSigningSeed());
    FUZZ_CHECK(pair.ok());
    kms::auth::TokenVerifierOptions options;
    options.audience = std::string(kFixtureAudience);
    options.issuers.push_back({std::string(kFixtureIssuerKeyId), pair->public_key});
    auto verifier = kms::auth::TokenVerifier::Create(std::move(options), &f->clock);
    FUZZ_CHECK(verifier.ok());
    f->verifier = *std::move(verifier);
    return f;
  }();
  return *fixture;
}

}  // namespace
}  // namespace clavis::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clavis::fuzz;
  namespace auth = clavis::kms::auth;
  const absl::string_view token = AsView(data, size);
  const Fixture& f = TheFixture();
  auto decoded = auth::DecodeServiceTokenUnverified(token);
  if (!decoded.ok()) FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument);
  const bool signature_valid = f.verifier->SignatureValid(token);
  auto identity = f.verifier->Verify(token);
  if (identity.ok()) {
    FUZZ_CHECK(decoded.ok() && signature_valid);
    FUZZ_CHECK(identity->principal == decoded->principal);
  }
  if (signature_valid) {
    FUZZ_CHECK(decoded.ok());
    if (decoded->issuer_key_id == kFixtureIssuerKeyId) {
      auto resigned = auth::SignServiceToken(*decoded, FixtureSigningSeed());
      FUZZ_CHECK(resigned.ok());
      FUZZ_CHECK(*resigned == token);
    }
  }
  return 0;
}
