// Ed25519 signatures (libsodium): audit checkpoints and service tokens.
#ifndef CLAVIS_CRYPTO_ED25519_H_
#define CLAVIS_CRYPTO_ED25519_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {

struct Ed25519KeyPair {
  static constexpr size_t kPublicKeySize = 32;
  static constexpr size_t kSeedSize = 32;
  static constexpr size_t kSignatureSize = 64;

  std::string public_key;  // 32 bytes
  SecretBytes seed;        // 32 bytes; the private key is derived from it

  static Ed25519KeyPair Generate();
  // InvalidArgument unless seed.size() == kSeedSize.
  static absl::StatusOr<Ed25519KeyPair> FromSeed(const SecretBytes& seed);
};

// Signs `message` with the key derived from `seed` (64-byte signature).
absl::StatusOr<std::string> Ed25519Sign(const SecretBytes& seed, absl::string_view message);

// OK if `signature` is a valid signature of `message` under `public_key`,
// else InvalidArgument("signature verification failed"). Non-canonical
// encodings and small-order keys are rejected (libsodium's strict rules).
absl::Status Ed25519Verify(absl::string_view public_key, absl::string_view message,
                           absl::string_view signature);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_ED25519_H_
