// Fixed keys and names shared by the fuzz targets and the seed generator:
// seeds made with them open under the targets' keys, so mutations start
// from inputs that reach decryption and signature checks, not only parsing.
// Not secrets: test-only constants.
#ifndef CLAVIS_TESTS_FUZZ_FUZZ_FIXTURES_H_
#define CLAVIS_TESTS_FUZZ_FUZZ_FIXTURES_H_

#include <string>

#include "absl/strings/string_view.h"
#include "crypto/encryption_context.h"
#include "crypto/secret_bytes.h"

namespace clavis::fuzz {

// The SDK's data key (sealed records, streams, field encryption).
inline crypto::SecretBytes FixtureDataKey() {
  return crypto::SecretBytes::CopyOf(std::string(32, 'K'));
}
// The salt of sealed-record key material.
inline std::string FixtureSalt() { return std::string(32, 'S'); }
inline constexpr absl::string_view kFixtureKey = "tenants/acme/keys/crm";
inline constexpr absl::string_view kFixtureSegment = "acme/orders";
inline constexpr absl::string_view kFixtureDataKeyBlob = "the server's wrapped data key";
inline crypto::EncryptionContext FixtureContext() { return {{"customer", "42"}}; }

// Ed25519 seed of the audit log's checkpoints and of the service token
// issuer (key id "fuzz-issuer", audience "clavisd-fuzz").
inline crypto::SecretBytes FixtureSigningSeed() {
  return crypto::SecretBytes::CopyOf(std::string(32, 'E'));
}
inline constexpr absl::string_view kFixtureIssuerKeyId = "fuzz-issuer";
inline constexpr absl::string_view kFixtureAudience = "clavisd-fuzz";
// Service tokens are checked at this time (Unix seconds).
inline constexpr int64_t kFixtureNow = 1800000000;

// The audit log's context key (HMAC of encryption contexts).
inline crypto::SecretBytes FixtureContextKey() {
  return crypto::SecretBytes::CopyOf(std::string(32, 'C'));
}

}  // namespace clavis::fuzz

#endif  // CLAVIS_TESTS_FUZZ_FUZZ_FIXTURES_H_
