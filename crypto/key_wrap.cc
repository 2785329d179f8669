#include "crypto/key_wrap.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/internal/ssl_unique_ptr.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {
namespace {

constexpr size_t kSemiblock = 8;
// OpenSSL refuses inputs of 2^31 bytes or more (CRYPTO128_WRAP_MAX) and its
// EVP interface counts in int: this bound keeps input and output below both.
constexpr size_t kMaxKeyToWrap = (size_t{1} << 31) - 2 * kSemiblock;

enum class Mode { kWrap, kWrapPad };

const uint8_t* Bytes(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

absl::Status UnwrapFailed() { return absl::InvalidArgumentError("key unwrap failed"); }

// The AES key-wrap ciphers, fetched once and deliberately never freed
// (immutable, shareable between threads). Fetched ciphers, unlike the legacy
// EVP_aes_*_wrap() objects, need no EVP_CIPHER_CTX_FLAG_WRAP_ALLOW.
const EVP_CIPHER* WrapCipher(size_t kek_size, Mode mode) {
  static const EVP_CIPHER* const ciphers[2][3] = {
      {EVP_CIPHER_fetch(nullptr, "AES-128-WRAP", nullptr),
       EVP_CIPHER_fetch(nullptr, "AES-192-WRAP", nullptr),
       EVP_CIPHER_fetch(nullptr, "AES-256-WRAP", nullptr)},
      {EVP_CIPHER_fetch(nullptr, "AES-128-WRAP-PAD", nullptr),
       EVP_CIPHER_fetch(nullptr, "AES-192-WRAP-PAD", nullptr),
       EVP_CIPHER_fetch(nullptr, "AES-256-WRAP-PAD", nullptr)},
  };
  const int m = mode == Mode::kWrap ? 0 : 1;
  switch (kek_size) {
    case 16:
      return ciphers[m][0];
    case 24:
      return ciphers[m][1];
    case 32:
      return ciphers[m][2];
    default:
      return nullptr;
  }
}

absl::StatusOr<const EVP_CIPHER*> CipherForKek(const SecretBytes& kek, Mode mode) {
  if (kek.size() != 16 && kek.size() != 24 && kek.size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("key-encryption key must be 16, 24 or 32 bytes, got ", kek.size()));
  }
  const EVP_CIPHER* cipher = WrapCipher(kek.size(), mode);
  if (cipher == nullptr) {
    ERR_clear_error();
    return absl::InternalError("AES key wrap is not available from OpenSSL");
  }
  return cipher;
}

absl::StatusOr<std::string> Wrap(const SecretBytes& kek, const SecretBytes& key_to_wrap,
                                 Mode mode) {
  absl::StatusOr<const EVP_CIPHER*> cipher = CipherForKek(kek, mode);
  if (!cipher.ok()) return cipher.status();
  const size_t n = key_to_wrap.size();
  if (mode == Mode::kWrap && (n < 2 * kSemiblock || n % kSemiblock != 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES key wrap (RFC 3394) needs a key of at least 16 bytes and a multiple "
                     "of 8 bytes, got ",
                     n));
  }
  if (mode == Mode::kWrapPad && n == 0) {
    return absl::InvalidArgumentError("AES key wrap with padding (RFC 5649) needs a non-empty key");
  }
  if (n > kMaxKeyToWrap) {
    return absl::InvalidArgumentError(absl::StrCat("key to wrap is too long: ", n, " bytes"));
  }
  // RFC 5649 pads to a multiple of 8; both add one 8-byte integrity block.
  const size_t padded = (n + kSemiblock - 1) / kSemiblock * kSemiblock;
  const size_t expected = padded + kSemiblock;
  std::string out(expected, '\0');
  uint8_t* dst = reinterpret_cast<uint8_t*>(out.data());
  internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  int final_len = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx.get(), *cipher, kek.data(), nullptr, nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), dst, &written, key_to_wrap.data(), static_cast<int>(n)) != 1 ||
      static_cast<size_t>(written) != expected ||
      EVP_EncryptFinal_ex(ctx.get(), dst + written, &final_len) != 1 || final_len != 0) {
    ERR_clear_error();
    return absl::InternalError("AES key wrap failed");
  }
  return out;
}

absl::StatusOr<SecretBytes> Unwrap(const SecretBytes& kek, absl::string_view wrapped, Mode mode) {
  absl::StatusOr<const EVP_CIPHER*> cipher = CipherForKek(kek, mode);
  if (!cipher.ok()) return cipher.status();
  // The shortest wrapping: RFC 3394 of a 16-byte key (the minimum that
  // AesKeyWrap accepts), RFC 5649 of a key of 1 to 8 bytes.
  const size_t min_size = mode == Mode::kWrap ? 3 * kSemiblock : 2 * kSemiblock;
  if (wrapped.size() < min_size || wrapped.size() % kSemiblock != 0 ||
      wrapped.size() > kMaxKeyToWrap + kSemiblock) {
    return UnwrapFailed();
  }
  // Unwrapping writes at most wrapped.size() - 8 bytes; the temporary is
  // secure memory and is wiped when freed.
  SecretBytes buffer(wrapped.size());
  internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  int final_len = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex2(ctx.get(), *cipher, kek.data(), nullptr, nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), buffer.data(), &written, Bytes(wrapped),
                        static_cast<int>(wrapped.size())) != 1 ||
      written <= 0 || static_cast<size_t>(written) > wrapped.size() - kSemiblock ||
      EVP_DecryptFinal_ex(ctx.get(), buffer.data() + written, &final_len) != 1 || final_len != 0) {
    ERR_clear_error();
    return UnwrapFailed();
  }
  if (mode == Mode::kWrap && static_cast<size_t>(written) != wrapped.size() - kSemiblock) {
    return UnwrapFailed();
  }
  return SecretBytes::CopyOf(absl::Span<const uint8_t>(buffer.data(), written));
}

}  // namespace

absl::StatusOr<std::string> AesKeyWrap(const SecretBytes& kek, const SecretBytes& key_to_wrap) {
  return Wrap(kek, key_to_wrap, Mode::kWrap);
}

absl::StatusOr<SecretBytes> AesKeyUnwrap(const SecretBytes& kek, absl::string_view wrapped) {
  return Unwrap(kek, wrapped, Mode::kWrap);
}

absl::StatusOr<std::string> AesKeyWrapPad(const SecretBytes& kek, const SecretBytes& key_to_wrap) {
  return Wrap(kek, key_to_wrap, Mode::kWrapPad);
}

absl::StatusOr<SecretBytes> AesKeyUnwrapPad(const SecretBytes& kek, absl::string_view wrapped) {
  return Unwrap(kek, wrapped, Mode::kWrapPad);
}

}  // namespace clavis::crypto
