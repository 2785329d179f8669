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
#include "crypto/aes_gcm_key.h"
#include "crypto/internal/sodium_init.h"
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

const uint8_t* Bytes(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

absl::Status DecryptionFailed() { return absl::InvalidArgumentError("decryption failed"); }

absl::Status WrongNonceSize(AeadAlgorithm algorithm, size_t expected, size_t actual) {
  return absl::InvalidArgumentError(absl::StrCat(AeadAlgorithmName(algorithm), " nonce must be ",
                                                 expected, " bytes, got ", actual));
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

// The key is set up once (crypto::AesGcmKey's pool of keyed contexts), not
// per message: that set-up cost as much as sealing a data key, and clavisd
// keeps its segment and master keys' Aead objects in caches.
class AesGcmAead final : public AeadImpl {
 public:
  AesGcmAead(SecretBytes key, std::unique_ptr<AesGcmKey> keyed)
      : AeadImpl(AeadAlgorithm::kAes256Gcm, std::move(key)), keyed_(std::move(keyed)) {}

 private:
  size_t max_plaintext_size() const override { return kAesGcmMaxPlaintext; }

  absl::Status SealInto(absl::string_view nonce, absl::string_view plaintext,
                        absl::string_view associated_data, uint8_t* out) const override {
    const absl::string_view aad[] = {associated_data};
    if (absl::Status s = keyed_->SealTo(nonce, plaintext, aad, out); !s.ok()) {
      return absl::InternalError("AES-256-GCM encryption failed");
    }
    return absl::OkStatus();
  }

  absl::Status OpenInto(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                        absl::string_view associated_data, uint8_t* out) const override {
    const absl::string_view aad[] = {associated_data};
    if (absl::Status s = keyed_->OpenTo(nonce, ciphertext_and_tag, aad, out); !s.ok()) {
      return DecryptionFailed();
    }
    return absl::OkStatus();
  }

  const std::unique_ptr<AesGcmKey> keyed_;
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
      absl::StatusOr<std::unique_ptr<AesGcmKey>> keyed = AesGcmKey::New(key);
      if (!keyed.ok()) {
        ERR_clear_error();
        return keyed.status();
      }
      return std::unique_ptr<Aead>(new AesGcmAead(std::move(key), *std::move(keyed)));
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
