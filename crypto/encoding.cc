#include "crypto/encoding.h"

#include <sodium.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/internal/sodium_init.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {
namespace {

int SodiumVariant(Base64Variant variant) {
  switch (variant) {
    case Base64Variant::kStandard:
      return sodium_base64_VARIANT_ORIGINAL;
    case Base64Variant::kUrlSafeNoPadding:
      return sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  }
  return sodium_base64_VARIANT_ORIGINAL;
}

// An upper bound on the decoded size of `text_size` base64 characters.
size_t MaxDecodedSize(size_t text_size) { return text_size / 4 * 3 + 3; }

// Decodes `text` into `out` (at least MaxDecodedSize(text.size()) bytes);
// sets *decoded_size. Error messages name a position, never the input.
absl::Status DecodeBase64Into(absl::string_view text, Base64Variant variant, uint8_t* out,
                              size_t out_size, size_t* decoded_size) {
  // libsodium 1.0.18's base64 decoder reads the input as signed chars and
  // takes every byte from 0x80 to 0xFF for a valid digit: reject non-ASCII
  // input first. The scan does not branch on the (possibly secret) contents.
  unsigned int high_bits = 0;
  for (char c : text) high_bits |= static_cast<unsigned char>(c);
  if ((high_bits & 0x80U) != 0) {
    size_t position = 0;
    while (static_cast<unsigned char>(text[position]) < 0x80) ++position;
    return absl::InvalidArgumentError(
        absl::StrCat("invalid base64: unexpected character at position ", position));
  }
  internal::EnsureSodiumInitialized();
  const char* end = nullptr;
  // No characters are ignored: whitespace and anything outside the alphabet
  // stop the decoder, and then `end` is short of the end of the input.
  const int rc = sodium_base642bin(out, out_size, text.data(), text.size(), /*ignore=*/nullptr,
                                   decoded_size, &end, SodiumVariant(variant));
  if (end != text.data() + text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid base64: unexpected character at position ", end - text.data()));
  }
  if (rc != 0) {
    return absl::InvalidArgumentError(
        "invalid base64: bad padding, truncated input or non-canonical final character");
  }
  return absl::OkStatus();
}

}  // namespace

std::string HexEncode(absl::string_view bytes) {
  if (bytes.empty()) return std::string();
  internal::EnsureSodiumInitialized();
  std::string hex(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  hex.resize(bytes.size() * 2);  // drop the terminating NUL
  return hex;
}

absl::StatusOr<std::string> HexDecode(absl::string_view hex) {
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("invalid hex: odd length ", hex.size()));
  }
  if (hex.empty()) return std::string();
  internal::EnsureSodiumInitialized();
  std::string out(hex.size() / 2, '\0');
  size_t decoded_size = 0;
  const char* end = nullptr;
  const int rc = sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                                hex.data(), hex.size(), /*ignore=*/nullptr, &decoded_size, &end);
  if (rc != 0 || end != hex.data() + hex.size() || decoded_size != out.size()) {
    SecureWipe(out.data(), out.size());
    // libsodium stops at the first non-hex character; if that is the second
    // digit of a byte (rc != 0), `end` points back at the first one.
    size_t position = static_cast<size_t>(end - hex.data());
    if (rc != 0) ++position;
    return absl::InvalidArgumentError(
        absl::StrCat("invalid hex: non-hex character at position ", position));
  }
  return out;
}

std::string Base64Encode(absl::string_view bytes, Base64Variant variant) {
  internal::EnsureSodiumInitialized();
  const int sodium_variant = SodiumVariant(variant);
  // Includes the terminating NUL.
  const size_t encoded_size = sodium_base64_encoded_len(bytes.size(), sodium_variant);
  std::string text(encoded_size, '\0');
  sodium_bin2base64(text.data(), text.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_variant);
  text.resize(encoded_size - 1);
  return text;
}

absl::StatusOr<std::string> Base64Decode(absl::string_view text, Base64Variant variant) {
  std::string out(MaxDecodedSize(text.size()), '\0');
  size_t decoded_size = 0;
  absl::Status status = DecodeBase64Into(text, variant, reinterpret_cast<uint8_t*>(out.data()),
                                         out.size(), &decoded_size);
  if (!status.ok()) {
    SecureWipe(out.data(), out.size());
    return status;
  }
  out.resize(decoded_size);
  return out;
}

absl::StatusOr<SecretBytes> Base64DecodeSecret(absl::string_view text, Base64Variant variant) {
  // Decode into a secure buffer of the maximum size, then copy to one of the
  // exact size; the temporary is wiped when freed.
  SecretBytes buffer(MaxDecodedSize(text.size()));
  size_t decoded_size = 0;
  absl::Status status =
      DecodeBase64Into(text, variant, buffer.data(), buffer.size(), &decoded_size);
  if (!status.ok()) return status;
  return SecretBytes::CopyOf(absl::Span<const uint8_t>(buffer.data(), decoded_size));
}

}  // namespace clavis::crypto
