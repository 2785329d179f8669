// AES key wrap (OpenSSL EVP): RFC 3394 without padding and RFC 5649 with
// padding ("KWP", as `openssl enc -id-aes256-wrap-pad` produces).
//
// Key-encryption keys of 16, 24 or 32 bytes are accepted (Clavis itself uses
// 32; the others exist for interoperability with customers' tooling).
// Unwrap failures of any kind (bad integrity check, bad padding, bad length)
// give InvalidArgument("key unwrap failed"), never a partial result.
#ifndef CLAVIS_CRYPTO_KEY_WRAP_H_
#define CLAVIS_CRYPTO_KEY_WRAP_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {

// RFC 3394. REQUIRES: key_to_wrap.size() is a multiple of 8 and >= 16.
absl::StatusOr<std::string> AesKeyWrap(const SecretBytes& kek, const SecretBytes& key_to_wrap);
absl::StatusOr<SecretBytes> AesKeyUnwrap(const SecretBytes& kek, absl::string_view wrapped);

// RFC 5649. REQUIRES: 1 <= key_to_wrap.size() <= 2^32 - 1.
absl::StatusOr<std::string> AesKeyWrapPad(const SecretBytes& kek, const SecretBytes& key_to_wrap);
absl::StatusOr<SecretBytes> AesKeyUnwrapPad(const SecretBytes& kek, absl::string_view wrapped);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_KEY_WRAP_H_
