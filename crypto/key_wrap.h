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

// Sizes above 2^31 - 16 bytes are refused (OpenSSL's limit). A key-encryption
// key of the wrong size is InvalidArgument naming the accepted sizes.

// RFC 3394. REQUIRES: key_to_wrap.size() is a multiple of 8 and >= 16.
// Unwrap accordingly refuses anything that would not unwrap to >= 16 bytes
// (such as an 8-byte key wrapped as a single block).
absl::StatusOr<std::string> AesKeyWrap(const SecretBytes& kek, const SecretBytes& key_to_wrap);
absl::StatusOr<SecretBytes> AesKeyUnwrap(const SecretBytes& kek, absl::string_view wrapped);

// RFC 5649. REQUIRES: 1 <= key_to_wrap.size() (RFC 5649 allows up to 2^32 - 1;
// see the limit above).
absl::StatusOr<std::string> AesKeyWrapPad(const SecretBytes& kek, const SecretBytes& key_to_wrap);
absl::StatusOr<SecretBytes> AesKeyUnwrapPad(const SecretBytes& kek, absl::string_view wrapped);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_KEY_WRAP_H_
