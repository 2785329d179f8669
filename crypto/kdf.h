// Key derivation and message authentication over SHA-256 (OpenSSL 3
// EVP_KDF / EVP_MAC).
#ifndef CLAVIS_CRYPTO_KDF_H_
#define CLAVIS_CRYPTO_KDF_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {

// HKDF-SHA256 (RFC 5869), extract-then-expand. An empty salt means a salt of
// 32 zero bytes, as the RFC says. InvalidArgument if output_size is 0 or more
// than 255 * 32 bytes, or if info is longer than 1024 bytes (the limit of
// OpenSSL 3.0's HKDF in its early releases).
absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& input_key_material,
                                       absl::string_view salt, absl::string_view info,
                                       size_t output_size);

// HMAC-SHA256 (RFC 2104): the full 32-byte tag. Keys of any length, including
// empty, are accepted as the RFC allows.
absl::StatusOr<std::string> HmacSha256(const SecretBytes& key, absl::string_view message);

// A key for many HMAC-SHA256 computations (the audit log's context key, one
// HMAC per call): the keyed state (the hash states of the inner and outer
// padded key) is computed once by New, and each Compute starts from a copy
// of it, about half the work of HmacSha256 on short messages. That state is
// key-equivalent: it lives in OpenSSL's memory, which OpenSSL clears when
// the last copy of this object is destroyed. Same results as HmacSha256.
// Thread-safe: Compute may run concurrently; copies share the state.
class HmacSha256Key {
 public:
  static absl::StatusOr<HmacSha256Key> New(const SecretBytes& key);
  absl::StatusOr<std::string> Compute(absl::string_view message) const;

 private:
  struct Keyed;
  explicit HmacSha256Key(std::shared_ptr<const Keyed> keyed) : keyed_(std::move(keyed)) {}
  std::shared_ptr<const Keyed> keyed_;
};

// Checks a tag in constant time. A tag shorter than the full 32 bytes is
// compared as a truncated HMAC (RFC 2104 section 5); tags shorter than 16
// bytes are refused as too weak. Returns InvalidArgument("MAC verification
// failed") on mismatch.
absl::Status VerifyHmacSha256(const SecretBytes& key, absl::string_view message,
                              absl::string_view tag);

// SHA-256 of `data` (not secret): fingerprints and hash chains.
std::string Sha256(absl::string_view data);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_KDF_H_
