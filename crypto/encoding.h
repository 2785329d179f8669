// Base64 and hex (libsodium, constant-time codecs), for non-secret bytes and
// for key material crossing a text boundary (a key file, a CLI argument).
#ifndef CLAVIS_CRYPTO_ENCODING_H_
#define CLAVIS_CRYPTO_ENCODING_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {

enum class Base64Variant { kStandard, kUrlSafeNoPadding };

std::string HexEncode(absl::string_view bytes);
// InvalidArgument on odd length or a non-hex character (position named).
absl::StatusOr<std::string> HexDecode(absl::string_view hex);

std::string Base64Encode(absl::string_view bytes, Base64Variant variant = Base64Variant::kStandard);
// InvalidArgument on characters outside the alphabet (including any byte
// >= 0x80), bad or missing padding (kStandard), any padding
// (kUrlSafeNoPadding), non-zero unused final bits or trailing data.
// Whitespace is not accepted.
absl::StatusOr<std::string> Base64Decode(absl::string_view text,
                                         Base64Variant variant = Base64Variant::kStandard);
// Decodes straight into secure memory.
absl::StatusOr<SecretBytes> Base64DecodeSecret(absl::string_view text,
                                               Base64Variant variant = Base64Variant::kStandard);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_ENCODING_H_
