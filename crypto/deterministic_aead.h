// Deterministic authenticated encryption: AES-SIV (RFC 5297) with CMAC, via
// OpenSSL 3's "AES-256-SIV" cipher (64-byte key: two AES-256 keys).
//
// The same (key, plaintext, associated data) always gives the same output,
// which leaks equality of plaintexts and nothing else: use it only where that
// is the point (equality search over encrypted values). Output is
// `synthetic IV (16 bytes) || ciphertext`.
//
// Thread safety: immutable after New(), safe to share.
#ifndef CLAVIS_CRYPTO_DETERMINISTIC_AEAD_H_
#define CLAVIS_CRYPTO_DETERMINISTIC_AEAD_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {

class DeterministicAead {
 public:
  // Key sizes 32, 48 or 64 (AES-128/192/256-SIV); Clavis uses 64.
  static absl::StatusOr<std::unique_ptr<DeterministicAead>> New(SecretBytes key);

  // `associated_data` is one S2V component, also when empty (as in RFC 5297's
  // deterministic example and Wycheproof). REQUIRES: !plaintext.empty(), else
  // InvalidArgument: OpenSSL 3.0's AES-SIV cannot encrypt an empty plaintext
  // (openssl/openssl#17268).
  absl::StatusOr<std::string> Seal(absl::string_view plaintext,
                                   absl::string_view associated_data) const;
  // InvalidArgument("decryption failed") on any mismatch, and for a `sealed`
  // of 16 bytes or fewer (an empty plaintext is never produced).
  absl::StatusOr<std::string> Open(absl::string_view sealed,
                                   absl::string_view associated_data) const;

 private:
  explicit DeterministicAead(SecretBytes key) : key_(std::move(key)) {}
  SecretBytes key_;
};

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_DETERMINISTIC_AEAD_H_
