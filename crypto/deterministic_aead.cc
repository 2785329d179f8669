#include "crypto/deterministic_aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/internal/ssl_unique_ptr.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {
namespace {

constexpr size_t kSivSize = 16;
// OpenSSL's SIV takes the whole plaintext in one int-sized update.
constexpr size_t kMaxPlaintextSize = INT_MAX - kSivSize;

const uint8_t* Bytes(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

absl::Status DecryptionFailed() { return absl::InvalidArgumentError("decryption failed"); }

// The AES-SIV cipher for a key of `key_size` bytes (two AES keys), fetched
// once and deliberately never freed (immutable, shareable between threads).
// Null for an unsupported size or if OpenSSL does not provide it.
const EVP_CIPHER* SivCipher(size_t key_size) {
  struct Ciphers {
    const EVP_CIPHER* aes128;
    const EVP_CIPHER* aes192;
    const EVP_CIPHER* aes256;
  };
  static const Ciphers ciphers = {
      EVP_CIPHER_fetch(nullptr, "AES-128-SIV", nullptr),
      EVP_CIPHER_fetch(nullptr, "AES-192-SIV", nullptr),
      EVP_CIPHER_fetch(nullptr, "AES-256-SIV", nullptr),
  };
  switch (key_size) {
    case 32:
      return ciphers.aes128;
    case 48:
      return ciphers.aes192;
    case 64:
      return ciphers.aes256;
    default:
      return nullptr;
  }
}

// Adds `associated_data` as exactly one S2V component, even when it is empty
// (RFC 5297 with one associated-data string). OpenSSL adds a component for a
// zero-length update only if the input pointer is non-null.
bool AddAssociatedData(EVP_CIPHER_CTX* ctx, absl::string_view associated_data) {
  static const uint8_t kEmpty = 0;
  const uint8_t* in = associated_data.empty() ? &kEmpty : Bytes(associated_data);
  int unused = 0;
  return EVP_CipherUpdate(ctx, nullptr, &unused, in, static_cast<int>(associated_data.size())) == 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeterministicAead>> DeterministicAead::New(SecretBytes key) {
  if (key.size() != 32 && key.size() != 48 && key.size() != 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-SIV key must be 32, 48 or 64 bytes, got ", key.size()));
  }
  if (SivCipher(key.size()) == nullptr) {
    ERR_clear_error();
    return absl::InternalError("AES-SIV is not available from OpenSSL");
  }
  return std::unique_ptr<DeterministicAead>(new DeterministicAead(std::move(key)));
}

absl::StatusOr<std::string> DeterministicAead::Seal(absl::string_view plaintext,
                                                    absl::string_view associated_data) const {
  if (plaintext.empty()) {
    // OpenSSL 3.0's AES-SIV fails on an empty plaintext (openssl#17268).
    return absl::InvalidArgumentError("AES-SIV plaintext must not be empty");
  }
  if (plaintext.size() > kMaxPlaintextSize || associated_data.size() > INT_MAX) {
    return absl::InvalidArgumentError("AES-SIV input too long");
  }
  std::string out(kSivSize + plaintext.size(), '\0');
  uint8_t* siv = reinterpret_cast<uint8_t*>(out.data());
  internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  int final_len = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx.get(), SivCipher(key_.size()), key_.data(), nullptr, nullptr) != 1 ||
      !AddAssociatedData(ctx.get(), associated_data) ||
      EVP_EncryptUpdate(ctx.get(), siv + kSivSize, &written, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      static_cast<size_t>(written) != plaintext.size() ||
      EVP_EncryptFinal_ex(ctx.get(), siv + kSivSize + written, &final_len) != 1 || final_len != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kSivSize), siv) != 1) {
    ERR_clear_error();
    return absl::InternalError("AES-SIV encryption failed");
  }
  return out;
}

absl::StatusOr<std::string> DeterministicAead::Open(absl::string_view sealed,
                                                    absl::string_view associated_data) const {
  // An empty plaintext is never produced by Seal (see there).
  if (sealed.size() <= kSivSize || sealed.size() - kSivSize > kMaxPlaintextSize ||
      associated_data.size() > INT_MAX) {
    return DecryptionFailed();
  }
  const size_t ciphertext_size = sealed.size() - kSivSize;
  // OpenSSL copies the expected SIV; it does not write through the pointer.
  uint8_t siv[kSivSize];
  std::copy_n(Bytes(sealed), kSivSize, siv);
  std::string out(ciphertext_size, '\0');
  uint8_t* plaintext = reinterpret_cast<uint8_t*>(out.data());
  internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int written = 0;
  int final_len = 0;
  if (ctx == nullptr ||
      EVP_DecryptInit_ex2(ctx.get(), SivCipher(key_.size()), key_.data(), nullptr, nullptr) != 1 ||
      // The SIV must be set before the ciphertext: OpenSSL checks it there.
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kSivSize), siv) != 1 ||
      !AddAssociatedData(ctx.get(), associated_data) ||
      EVP_DecryptUpdate(ctx.get(), plaintext, &written, Bytes(sealed) + kSivSize,
                        static_cast<int>(ciphertext_size)) != 1 ||
      static_cast<size_t>(written) != ciphertext_size ||
      EVP_DecryptFinal_ex(ctx.get(), plaintext + written, &final_len) != 1 || final_len != 0) {
    ERR_clear_error();
    SecureWipe(out.data(), out.size());
    return DecryptionFailed();
  }
  return out;
}

}  // namespace clavis::crypto
