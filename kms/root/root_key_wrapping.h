// RootKeyWrapper: the Wrap/Unwrap and key check value shared by the root key
// providers that hold a 256-bit root key in process memory (key file,
// passphrase). Providers obtain the root key their own way and hand it here;
// from then on the key lives only inside the AES-256-GCM instance.
//
// Wrapped blob (docs/FORMAT.md, "Root-wrapped blob"):
//
//   0x01 || nonce (12 bytes, random) || AES-256-GCM ciphertext || tag (16)
//
// with associated data kRootWrapDomainLabel || caller's associated data, so a
// blob made for another purpose under the same key never opens here, and a
// blob moved to another record (other associated data) does not open either.
//
// Random 96-bit nonces are safe for well under 2^32 wraps per root key (NIST
// SP 800-38D); a root key wraps tenant master keys, a few per tenant.
//
// Thread safety: a RootKeyWrapper is immutable after New() and every method
// may be called concurrently.
#ifndef CLAVIS_KMS_ROOT_ROOT_KEY_WRAPPING_H_
#define CLAVIS_KMS_ROOT_ROOT_KEY_WRAPPING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/aead.h"
#include "crypto/secret_bytes.h"

namespace clavis::kms {

// Size of every in-memory root key (AES-256).
inline constexpr size_t kRootKeySize = 32;
// First byte of every blob Wrap produces.
inline constexpr uint8_t kRootWrapVersion = 0x01;
// Prefix of the AEAD associated data: ASCII "clavis/root-wrap/v1" then one
// 0x00 byte, which ends the fixed part so no caller's associated data can
// make it look like another label.
inline constexpr absl::string_view kRootWrapDomainLabel{"clavis/root-wrap/v1\0", 20};
// Largest plaintext Wrap accepts (the RootKeyProvider contract: key material).
inline constexpr size_t kMaxRootWrapPlaintextSize = 4096;
// The message HMAC'd under the root key to make its key check value.
inline constexpr absl::string_view kKeyCheckValueMessage = "clavis root key check value v1";
// Number of HMAC bytes kept in a key check value (shown as 8 hex digits).
// Deliberately short: it tells keys apart and detects a wrong passphrase, but
// is far too short to help anyone test guesses of a 256-bit key.
inline constexpr size_t kKeyCheckValueBytes = 4;

// The key check value of `root_key`: the first kKeyCheckValueBytes of
// HMAC-SHA256(root_key, kKeyCheckValueMessage), lower-case hex. Not secret.
absl::StatusOr<std::string> RootKeyCheckValue(const crypto::SecretBytes& root_key);

class RootKeyWrapper {
 public:
  // Takes ownership of `root_key`, which must be kRootKeySize bytes
  // (InvalidArgument otherwise; the message never contains key bytes).
  static absl::StatusOr<RootKeyWrapper> New(crypto::SecretBytes root_key);

  RootKeyWrapper(RootKeyWrapper&&) = default;
  RootKeyWrapper& operator=(RootKeyWrapper&&) = default;

  // Wraps `plaintext` (1..kMaxRootWrapPlaintextSize bytes, else
  // InvalidArgument) bound to `associated_data`.
  absl::StatusOr<std::string> Wrap(const crypto::SecretBytes& plaintext,
                                   absl::string_view associated_data) const;
  // Unwraps a blob from Wrap under the same root key and associated data.
  // Every failure (wrong key, other associated data, any altered, missing or
  // added byte, unknown version) is the same DataLoss error, so a caller
  // cannot learn which check failed and no message names key bytes.
  absl::StatusOr<crypto::SecretBytes> Unwrap(absl::string_view wrapped,
                                             absl::string_view associated_data) const;

  // 8 lower-case hex digits; see RootKeyCheckValue.
  const std::string& key_check_value() const { return key_check_value_; }

 private:
  RootKeyWrapper(std::unique_ptr<crypto::Aead> aead, std::string key_check_value)
      : aead_(std::move(aead)), key_check_value_(std::move(key_check_value)) {}

  std::unique_ptr<crypto::Aead> aead_;
  std::string key_check_value_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ROOT_ROOT_KEY_WRAPPING_H_
