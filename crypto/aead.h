// Authenticated encryption with associated data.
//
// Three algorithms, all with 256-bit keys and 128-bit tags:
//  - AES-256-GCM (OpenSSL EVP), 96-bit nonce: Clavis's default;
//  - XChaCha20-Poly1305 (libsodium), 192-bit nonce: safe with random nonces
//    for any number of messages;
//  - ChaCha20-Poly1305 (libsodium, IETF RFC 8439), 96-bit nonce.
//
// Ciphertexts are `ciphertext || tag`. Nonces are chosen by the caller: use
// SealWithRandomNonce unless the caller has its own nonce discipline.
// On any failure no partial plaintext is returned.
//
// Thread safety: an Aead is immutable after New() and safe to share.
#ifndef CLAVIS_CRYPTO_AEAD_H_
#define CLAVIS_CRYPTO_AEAD_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {

enum class AeadAlgorithm {
  kAes256Gcm = 1,
  kXChaCha20Poly1305 = 2,
  kChaCha20Poly1305 = 3,
};

// "AES-256-GCM" / "XCHACHA20-POLY1305" / "CHACHA20-POLY1305".
absl::string_view AeadAlgorithmName(AeadAlgorithm algorithm);

class Aead {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kTagSize = 16;

  // REQUIRES: key.size() == kKeySize, else InvalidArgument.
  static absl::StatusOr<std::unique_ptr<Aead>> New(AeadAlgorithm algorithm, SecretBytes key);

  virtual ~Aead() = default;

  AeadAlgorithm algorithm() const { return algorithm_; }
  // 12 for AES-256-GCM and ChaCha20-Poly1305, 24 for XChaCha20-Poly1305.
  size_t nonce_size() const;

  // Returns ciphertext || tag. InvalidArgument if the nonce has the wrong size.
  virtual absl::StatusOr<std::string> Seal(absl::string_view nonce, absl::string_view plaintext,
                                           absl::string_view associated_data) const = 0;
  // Returns the plaintext. A wrong key, nonce, tag, associated data or any
  // changed byte gives InvalidArgument("decryption failed") and nothing else.
  // (A nonce of the wrong size is a caller error: InvalidArgument naming the
  // expected size, as for Seal.)
  virtual absl::StatusOr<std::string> Open(absl::string_view nonce,
                                           absl::string_view ciphertext_and_tag,
                                           absl::string_view associated_data) const = 0;
  // Same as Open, the plaintext going straight into secure memory (for
  // plaintexts that are keys).
  virtual absl::StatusOr<SecretBytes> OpenSecret(absl::string_view nonce,
                                                 absl::string_view ciphertext_and_tag,
                                                 absl::string_view associated_data) const = 0;

  // Returns nonce || ciphertext || tag with a fresh random nonce.
  absl::StatusOr<std::string> SealWithRandomNonce(absl::string_view plaintext,
                                                  absl::string_view associated_data) const;
  // Opens the output of SealWithRandomNonce.
  absl::StatusOr<std::string> OpenWithPrefixedNonce(absl::string_view sealed,
                                                    absl::string_view associated_data) const;

 protected:
  explicit Aead(AeadAlgorithm algorithm) : algorithm_(algorithm) {}

 private:
  AeadAlgorithm algorithm_;
};

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_AEAD_H_
