#include "crypto/ed25519.h"

#include <sodium.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "crypto/internal/sodium_init.h"
#include "crypto/random.h"

namespace clavis::crypto {
namespace {

static_assert(Ed25519KeyPair::kPublicKeySize == crypto_sign_ed25519_PUBLICKEYBYTES);
static_assert(Ed25519KeyPair::kSeedSize == crypto_sign_ed25519_SEEDBYTES);
static_assert(Ed25519KeyPair::kSignatureSize == crypto_sign_ed25519_BYTES);

absl::Status BadSeedSize(size_t size) {
  return absl::InvalidArgumentError(
      absl::StrCat("Ed25519 seed must be ", Ed25519KeyPair::kSeedSize, " bytes, got ", size));
}

absl::Status VerificationFailed() {
  return absl::InvalidArgumentError("signature verification failed");
}

// libsodium is handed a non-NULL pointer even for an empty message.
const unsigned char* MessageBytes(absl::string_view message) {
  static const unsigned char kEmpty = 0;
  return message.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(message.data());
}

// Expands `seed` (checked to be kSeedSize) into libsodium's 64-byte secret key
// (seed || public key), held in secure memory that is wiped on destruction.
SecretBytes ExpandSeed(const SecretBytes& seed,
                       unsigned char (&public_key)[crypto_sign_PUBLICKEYBYTES]) {
  internal::EnsureSodiumInitialized();
  SecretBytes secret_key(crypto_sign_SECRETKEYBYTES);
  if (crypto_sign_seed_keypair(public_key, secret_key.data(), seed.data()) != 0) std::abort();
  return secret_key;
}

}  // namespace

Ed25519KeyPair Ed25519KeyPair::Generate() {
  SecretBytes seed = RandomSecret(kSeedSize);
  absl::StatusOr<Ed25519KeyPair> pair = FromSeed(seed);
  if (!pair.ok()) std::abort();  // a kSeedSize seed cannot be refused
  return *std::move(pair);
}

absl::StatusOr<Ed25519KeyPair> Ed25519KeyPair::FromSeed(const SecretBytes& seed) {
  if (seed.size() != kSeedSize) return BadSeedSize(seed.size());
  unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
  // Only the public key is kept; the expanded secret key is wiped right away.
  (void)ExpandSeed(seed, public_key);
  Ed25519KeyPair pair;
  pair.public_key.assign(reinterpret_cast<const char*>(public_key), sizeof(public_key));
  pair.seed = seed.Clone();
  return pair;
}

absl::StatusOr<std::string> Ed25519Sign(const SecretBytes& seed, absl::string_view message) {
  if (seed.size() != Ed25519KeyPair::kSeedSize) return BadSeedSize(seed.size());
  unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
  SecretBytes secret_key = ExpandSeed(seed, public_key);
  std::string signature(crypto_sign_BYTES, '\0');
  unsigned long long signature_len = 0;
  if (crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), &signature_len,
                           MessageBytes(message), message.size(), secret_key.data()) != 0 ||
      signature_len != crypto_sign_BYTES) {
    return absl::InternalError("Ed25519 signing failed");
  }
  return signature;
}

absl::Status Ed25519Verify(absl::string_view public_key, absl::string_view message,
                           absl::string_view signature) {
  if (public_key.size() != Ed25519KeyPair::kPublicKeySize ||
      signature.size() != Ed25519KeyPair::kSignatureSize) {
    return VerificationFailed();
  }
  internal::EnsureSodiumInitialized();
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                  MessageBytes(message), message.size(),
                                  reinterpret_cast<const unsigned char*>(public_key.data())) != 0) {
    return VerificationFailed();
  }
  return absl::OkStatus();
}

}  // namespace clavis::crypto
