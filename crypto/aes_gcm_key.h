// AesGcmKey: one AES-256-GCM key used for many messages, fast.
//
// crypto::Aead sets the key up again for every message, which costs as much
// as encrypting a kilobyte. AesGcmKey keeps keyed OpenSSL cipher contexts
// (the expanded key schedule and GHASH tables) in a small pool and only
// sets a new nonce per message, so sealing many small records under one key
// runs at raw EVP speed. Used by the SDK's data-key cache, and by
// crypto::Aead's AES-256-GCM (so clavisd's cached segment and master keys
// are set up once, not per call).
//
// Contract:
//  - Nonces are 12 bytes and chosen by the caller; a (key, nonce) pair must
//    never be used twice (random nonces: at most 2^32 messages per key).
//  - Associated data is given in pieces and authenticated as their
//    concatenation.
//  - Open returns nothing but InvalidArgument("decryption failed") for any
//    wrong key, nonce, tag, associated data or changed byte.
//  - The pooled contexts hold key-derived state in OpenSSL memory;
//    EVP_CIPHER_CTX_free cleanses it, which happens when the AesGcmKey is
//    destroyed. The raw key is kept only in SecretBytes.
//
// Thread safety: safe to use from many threads; each call takes a context
// from the pool (or makes one) and gives it back.
#ifndef CLAVIS_CRYPTO_AES_GCM_KEY_H_
#define CLAVIS_CRYPTO_AES_GCM_KEY_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "crypto/secret_bytes.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace clavis::crypto {

class AesGcmKey {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kNonceSize = 12;
  static constexpr size_t kTagSize = 16;

  // InvalidArgument unless key.size() == 32.
  static absl::StatusOr<std::unique_ptr<AesGcmKey>> New(const SecretBytes& key);
  ~AesGcmKey();
  AesGcmKey(const AesGcmKey&) = delete;
  AesGcmKey& operator=(const AesGcmKey&) = delete;

  // Appends ciphertext || tag of `plaintext` to *out.
  absl::Status SealAppend(absl::string_view nonce, absl::string_view plaintext,
                          absl::Span<const absl::string_view> associated_data,
                          std::string* out) const;

  // The plaintext of `ciphertext_and_tag`.
  absl::StatusOr<std::string> Open(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                                   absl::Span<const absl::string_view> associated_data) const;

  // The same two operations into a buffer the caller owns (e.g. secure
  // memory for a plaintext that is a key). SealTo writes plaintext.size() +
  // kTagSize bytes to `out`; OpenTo writes ciphertext_and_tag.size() -
  // kTagSize bytes (`out` may be null when that is 0) and, when the message
  // is not authentic, wipes them before returning
  // InvalidArgument("decryption failed").
  absl::Status SealTo(absl::string_view nonce, absl::string_view plaintext,
                      absl::Span<const absl::string_view> associated_data, uint8_t* out) const;
  absl::Status OpenTo(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                      absl::Span<const absl::string_view> associated_data, uint8_t* out) const;

 private:
  explicit AesGcmKey(SecretBytes key) : key_(std::move(key)) {}

  // A keyed context for `encrypt`, from the pool or new (null on failure).
  EVP_CIPHER_CTX* Acquire(bool encrypt) const;
  void Release(EVP_CIPHER_CTX* ctx, bool encrypt) const;

  const SecretBytes key_;
  // A plain std::mutex: it is taken twice per message, and absl::Mutex's
  // deadlock detection (on in Debian's build) costs more than the message.
  mutable std::mutex mu_;
  mutable std::vector<EVP_CIPHER_CTX*> idle_encrypt_;  // guarded by mu_
  mutable std::vector<EVP_CIPHER_CTX*> idle_decrypt_;  // guarded by mu_
};

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_AES_GCM_KEY_H_
