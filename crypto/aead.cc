#include "crypto/aead.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/internal/sodium_init.h"
#include "crypto/internal/ssl_unique_ptr.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {
namespace {

constexpr size_t kAesGcmNonceSize = 12;
constexpr size_t kChaChaNonceSize = crypto_aead_chacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kXChaChaNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
static_assert(kChaChaNonceSize == 12, "libsodium ChaCha20-Poly1305 IETF nonce size changed");
static_assert(kXChaChaNonceSize == 24, "libsodium XChaCha20-Poly1305 nonce size changed");
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == Aead::kKeySize, "key size");
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == Aead::kKeySize, "key size");
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == Aead::kTagSize, "tag size");
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == Aead::kTagSize, "tag size");

// NIST SP 800-38D: at most 2^39 - 256 bits of plaintext per (key, nonce).
constexpr uint64_t kAesGcmMaxPlaintext = (uint64_t{1} << 36) - 32;
// OpenSSL's update functions take int lengths: feed large inputs in chunks.
constexpr size_t kEvpChunk = size_t{1} << 30;

const uint8_t* Bytes(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

absl::Status DecryptionFailed() { return absl::InvalidArgumentError("decryption failed"); }

absl::Status WrongNonceSize(AeadAlgorithm algorithm, size_t expected, size_t actual) {
  return absl::InvalidArgumentError(absl::StrCat(AeadAlgorithmName(algorithm), " nonce must be ",
                                                 expected, " bytes, got ", actual));
}

// The AES-256-GCM implementation, fetched once from the default provider and
// deliberately never freed (no destruction-order hazard at exit; the object is
// immutable and safe to share between threads). Null if unavailable.
const EVP_CIPHER* Aes256GcmCipher() {
  static const EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

// EVP_CipherUpdate over an input of any size. `out` null means "associated
// data". On success *written is the number of bytes written to `out`.
bool EvpUpdate(EVP_CIPHER_CTX* ctx, uint8_t* out, const uint8_t* in, size_t len, size_t* written) {
  size_t total = 0;
  while (len > 0) {
    const size_t n = std::min(len, kEvpChunk);
    int outl = 0;
    if (EVP_CipherUpdate(ctx, out == nullptr ? nullptr : out + total, &outl, in,
                         static_cast<int>(n)) != 1 ||
        outl < 0) {
      return false;
    }
    total += static_cast<size_t>(outl);
    in += n;
    len -= n;
  }
  if (written != nullptr) *written = total;
  return true;
}

// Shared by all algorithms: argument checks and the Open / OpenSecret pair,
// which differ only in where the plaintext goes.
class AeadImpl : public Aead {
 public:
  absl::StatusOr<std::string> Seal(absl::string_view nonce, absl::string_view plaintext,
                                   absl::string_view associated_data) const final {
    if (nonce.size() != nonce_size()) {
      return WrongNonceSize(algorithm(), nonce_size(), nonce.size());
    }
    if (plaintext.size() > max_plaintext_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("plaintext too long for ", AeadAlgorithmName(algorithm())));
    }
    std::string out(plaintext.size() + kTagSize, '\0');
    absl::Status status =
        SealInto(nonce, plaintext, associated_data, reinterpret_cast<uint8_t*>(out.data()));
    if (!status.ok()) return status;
    return out;
  }

  absl::StatusOr<std::string> Open(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                                   absl::string_view associated_data) const final {
    absl::Status status = CheckOpenArguments(nonce, ciphertext_and_tag);
    if (!status.ok()) return status;
    std::string out(ciphertext_and_tag.size() - kTagSize, '\0');
    status = OpenInto(nonce, ciphertext_and_tag, associated_data,
                      reinterpret_cast<uint8_t*>(out.data()));
    if (!status.ok()) {
      // Unauthenticated plaintext may have been written: wipe it.
      SecureWipe(out.data(), out.size());
      return status;
    }
    return out;
  }

  absl::StatusOr<SecretBytes> OpenSecret(absl::string_view nonce,
                                         absl::string_view ciphertext_and_tag,
                                         absl::string_view associated_data) const final {
    absl::Status status = CheckOpenArguments(nonce, ciphertext_and_tag);
    if (!status.ok()) return status;
    SecretBytes out(ciphertext_and_tag.size() - kTagSize);
    status = OpenInto(nonce, ciphertext_and_tag, associated_data, out.data());
    // On failure `out` is wiped when it is freed (sodium_free).
    if (!status.ok()) return status;
    return out;
  }

 protected:
  AeadImpl(AeadAlgorithm algorithm, SecretBytes key) : Aead(algorithm), key_(std::move(key)) {}

  const SecretBytes& key() const { return key_; }

 private:
  virtual size_t max_plaintext_size() const = 0;
  // Writes plaintext.size() + kTagSize bytes to `out`. The nonce size has
  // been checked.
  virtual absl::Status SealInto(absl::string_view nonce, absl::string_view plaintext,
                                absl::string_view associated_data, uint8_t* out) const = 0;
  // Writes ciphertext_and_tag.size() - kTagSize bytes to `out` (which may be
  // null when that is 0). The nonce size has been checked and
  // ciphertext_and_tag is at least kTagSize bytes. On failure `out` may hold
  // garbage, which the caller wipes.
  virtual absl::Status OpenInto(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                                absl::string_view associated_data, uint8_t* out) const = 0;

  absl::Status CheckOpenArguments(absl::string_view nonce,
                                  absl::string_view ciphertext_and_tag) const {
    if (nonce.size() != nonce_size()) {
      return WrongNonceSize(algorithm(), nonce_size(), nonce.size());
    }
    if (ciphertext_and_tag.size() < kTagSize ||
        ciphertext_and_tag.size() - kTagSize > max_plaintext_size()) {
      return DecryptionFailed();
    }
    return absl::OkStatus();
  }

  SecretBytes key_;
};

class AesGcmAead final : public AeadImpl {
 public:
  AesGcmAead(SecretBytes key, const EVP_CIPHER* cipher)
      : AeadImpl(AeadAlgorithm::kAes256Gcm, std::move(key)), cipher_(cipher) {}

 private:
  size_t max_plaintext_size() const override { return kAesGcmMaxPlaintext; }

  absl::Status SealInto(absl::string_view nonce, absl::string_view plaintext,
                        absl::string_view associated_data, uint8_t* out) const override {
    internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    size_t written = 0;
    int final_len = 0;
    // The default GCM IV length is 12 bytes, which is ours.
    if (ctx == nullptr ||
        EVP_EncryptInit_ex2(ctx.get(), cipher_, key().data(), Bytes(nonce), nullptr) != 1 ||
        !EvpUpdate(ctx.get(), nullptr, Bytes(associated_data), associated_data.size(), nullptr) ||
        !EvpUpdate(ctx.get(), out, Bytes(plaintext), plaintext.size(), &written) ||
        written != plaintext.size() ||
        EVP_EncryptFinal_ex(ctx.get(), out + written, &final_len) != 1 || final_len != 0 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize),
                            out + written) != 1) {
      ERR_clear_error();
      return absl::InternalError("AES-256-GCM encryption failed");
    }
    return absl::OkStatus();
  }

  absl::Status OpenInto(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                        absl::string_view associated_data, uint8_t* out) const override {
    const size_t ciphertext_size = ciphertext_and_tag.size() - kTagSize;
    // OpenSSL copies the expected tag; it does not write through the pointer.
    uint8_t tag[kTagSize];
    std::copy_n(Bytes(ciphertext_and_tag) + ciphertext_size, kTagSize, tag);
    uint8_t scratch[kTagSize];  // a valid output pointer when `out` is null
    internal::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    size_t written = 0;
    int final_len = 0;
    if (ctx == nullptr ||
        EVP_DecryptInit_ex2(ctx.get(), cipher_, key().data(), Bytes(nonce), nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), tag) !=
            1 ||
        !EvpUpdate(ctx.get(), nullptr, Bytes(associated_data), associated_data.size(), nullptr) ||
        !EvpUpdate(ctx.get(), out, Bytes(ciphertext_and_tag), ciphertext_size, &written) ||
        written != ciphertext_size ||
        // The tag is checked here; GCM writes nothing more.
        EVP_DecryptFinal_ex(ctx.get(), out == nullptr ? scratch : out + written, &final_len) != 1 ||
        final_len != 0) {
      ERR_clear_error();
      return DecryptionFailed();
    }
    return absl::OkStatus();
  }

  const EVP_CIPHER* cipher_;  // not owned; see Aes256GcmCipher()
};

// libsodium's IETF ChaCha20-Poly1305 and XChaCha20-Poly1305 have the same
// interface and differ in nonce size.
struct SodiumAeadOps {
  decltype(&crypto_aead_chacha20poly1305_ietf_encrypt) encrypt;
  decltype(&crypto_aead_chacha20poly1305_ietf_decrypt) decrypt;
  size_t max_plaintext_size;
};

const SodiumAeadOps& OpsFor(AeadAlgorithm algorithm) {
  static const SodiumAeadOps kChaCha = {&crypto_aead_chacha20poly1305_ietf_encrypt,
                                        &crypto_aead_chacha20poly1305_ietf_decrypt,
                                        crypto_aead_chacha20poly1305_ietf_messagebytes_max()};
  static const SodiumAeadOps kXChaCha = {&crypto_aead_xchacha20poly1305_ietf_encrypt,
                                         &crypto_aead_xchacha20poly1305_ietf_decrypt,
                                         crypto_aead_xchacha20poly1305_ietf_messagebytes_max()};
  return algorithm == AeadAlgorithm::kXChaCha20Poly1305 ? kXChaCha : kChaCha;
}

class SodiumAead final : public AeadImpl {
 public:
  SodiumAead(AeadAlgorithm algorithm, SecretBytes key)
      : AeadImpl(algorithm, std::move(key)), ops_(OpsFor(algorithm)) {}

 private:
  size_t max_plaintext_size() const override { return ops_.max_plaintext_size; }

  absl::Status SealInto(absl::string_view nonce, absl::string_view plaintext,
                        absl::string_view associated_data, uint8_t* out) const override {
    unsigned long long out_len = 0;  // NOLINT(runtime/int): libsodium's type
    if (ops_.encrypt(out, &out_len, Bytes(plaintext), plaintext.size(), Bytes(associated_data),
                     associated_data.size(), nullptr, Bytes(nonce), key().data()) != 0 ||
        out_len != plaintext.size() + kTagSize) {
      return absl::InternalError(
          absl::StrCat(AeadAlgorithmName(algorithm()), " encryption failed"));
    }
    return absl::OkStatus();
  }

  absl::Status OpenInto(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                        absl::string_view associated_data, uint8_t* out) const override {
    uint8_t unused;                  // libsodium wants a buffer even for an empty plaintext
    unsigned long long out_len = 0;  // NOLINT(runtime/int): libsodium's type
    if (ops_.decrypt(out == nullptr ? &unused : out, &out_len, nullptr, Bytes(ciphertext_and_tag),
                     ciphertext_and_tag.size(), Bytes(associated_data), associated_data.size(),
                     Bytes(nonce), key().data()) != 0 ||
        out_len != ciphertext_and_tag.size() - kTagSize) {
      return DecryptionFailed();
    }
    return absl::OkStatus();
  }

  const SodiumAeadOps& ops_;
};

}  // namespace

absl::string_view AeadAlgorithmName(AeadAlgorithm algorithm) {
  switch (algorithm) {
    case AeadAlgorithm::kAes256Gcm:
      return "AES-256-GCM";
    case AeadAlgorithm::kXChaCha20Poly1305:
      return "XCHACHA20-POLY1305";
    case AeadAlgorithm::kChaCha20Poly1305:
      return "CHACHA20-POLY1305";
  }
  return "UNKNOWN-AEAD";
}

size_t Aead::nonce_size() const {
  switch (algorithm_) {
    case AeadAlgorithm::kAes256Gcm:
      return kAesGcmNonceSize;
    case AeadAlgorithm::kXChaCha20Poly1305:
      return kXChaChaNonceSize;
    case AeadAlgorithm::kChaCha20Poly1305:
      return kChaChaNonceSize;
  }
  return 0;  // unreachable: New() accepts only the algorithms above
}

absl::StatusOr<std::unique_ptr<Aead>> Aead::New(AeadAlgorithm algorithm, SecretBytes key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(AeadAlgorithmName(algorithm), " key must be ",
                                                   kKeySize, " bytes, got ", key.size()));
  }
  switch (algorithm) {
    case AeadAlgorithm::kAes256Gcm: {
      const EVP_CIPHER* cipher = Aes256GcmCipher();
      if (cipher == nullptr) {
        ERR_clear_error();
        return absl::InternalError("AES-256-GCM is not available from OpenSSL");
      }
      return std::unique_ptr<Aead>(new AesGcmAead(std::move(key), cipher));
    }
    case AeadAlgorithm::kXChaCha20Poly1305:
    case AeadAlgorithm::kChaCha20Poly1305:
      internal::EnsureSodiumInitialized();
      return std::unique_ptr<Aead>(new SodiumAead(algorithm, std::move(key)));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported AEAD algorithm ", static_cast<int>(algorithm)));
}

absl::StatusOr<std::string> Aead::SealWithRandomNonce(absl::string_view plaintext,
                                                      absl::string_view associated_data) const {
  const std::string nonce = RandomBytes(nonce_size());
  absl::StatusOr<std::string> ciphertext = Seal(nonce, plaintext, associated_data);
  if (!ciphertext.ok()) return ciphertext.status();
  std::string out;
  out.reserve(nonce.size() + ciphertext->size());
  out.append(nonce).append(*ciphertext);
  return out;
}

absl::StatusOr<std::string> Aead::OpenWithPrefixedNonce(absl::string_view sealed,
                                                        absl::string_view associated_data) const {
  const size_t n = nonce_size();
  if (sealed.size() < n) return DecryptionFailed();
  return Open(sealed.substr(0, n), sealed.substr(n), associated_data);
}

}  // namespace clavis::crypto
