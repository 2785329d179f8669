// RSAES-OAEP with SHA-256 and MGF1-SHA-256 (OpenSSL EVP_PKEY), for BYOK
// import: Clavis generates a wrapping key pair, hands out the public half and
// decrypts the customer's wrapped key material with the private half.
//
// Every decryption failure (bad padding, wrong label, wrong length, bad
// ciphertext integer) gives the same InvalidArgument("RSA-OAEP decryption
// failed"): distinguishable errors would be a padding oracle.
//
// Thread safety: a key is immutable after creation and safe to share.
#ifndef CLAVIS_CRYPTO_RSA_OAEP_H_
#define CLAVIS_CRYPTO_RSA_OAEP_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/internal/ssl_unique_ptr.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {

class RsaOaepPrivateKey {
 public:
  // REQUIRES: modulus_bits is 2048, 3072 or 4096, else InvalidArgument.
  static absl::StatusOr<std::unique_ptr<RsaOaepPrivateKey>> Generate(int modulus_bits);
  // Parses a PKCS#8 PrivateKeyInfo (DER) or a PEM private key. Only RSA keys
  // of 2048 bits or more are accepted.
  static absl::StatusOr<std::unique_ptr<RsaOaepPrivateKey>> FromPkcs8Der(const SecretBytes& der);
  static absl::StatusOr<std::unique_ptr<RsaOaepPrivateKey>> FromPem(const SecretBytes& pem);

  int modulus_bits() const;
  // SubjectPublicKeyInfo, DER and PEM ("-----BEGIN PUBLIC KEY-----").
  absl::StatusOr<std::string> PublicKeyDer() const;
  absl::StatusOr<std::string> PublicKeyPem() const;

  // Decrypts; the plaintext lands in secure memory.
  absl::StatusOr<SecretBytes> Decrypt(absl::string_view ciphertext,
                                      absl::string_view label = {}) const;

 private:
  explicit RsaOaepPrivateKey(internal::EvpPkeyPtr key) : key_(std::move(key)) {}
  internal::EvpPkeyPtr key_;
};

// Encrypts `plaintext` to an RSA public key given as SubjectPublicKeyInfo DER
// or PEM (what a customer does with `openssl pkeyutl`; used by tests and
// tools).
absl::StatusOr<std::string> RsaOaepEncrypt(absl::string_view public_key_der_or_pem,
                                           const SecretBytes& plaintext,
                                           absl::string_view label = {});

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_RSA_OAEP_H_
