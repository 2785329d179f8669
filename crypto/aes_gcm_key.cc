#include "crypto/aes_gcm_key.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clavis::crypto {
namespace {

// Contexts kept per key and direction; more concurrent callers than this
// make (and free) their own.
constexpr size_t kMaxIdleContexts = 16;
// OpenSSL's update functions take int lengths.
constexpr size_t kEvpChunk = size_t{1} << 30;
// NIST SP 800-38D: at most 2^39 - 256 bits of plaintext per (key, nonce).
constexpr uint64_t kMaxPlaintext = (uint64_t{1} << 36) - 32;

const EVP_CIPHER* Cipher() {
  // Fetched once, never freed: immutable and shared by all threads.
  static const EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

const uint8_t* Bytes(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

bool Update(EVP_CIPHER_CTX* ctx, uint8_t* out, absl::string_view in) {
  size_t done = 0;
  while (done < in.size()) {
    const size_t n = std::min(in.size() - done, kEvpChunk);
    int outl = 0;
    if (EVP_CipherUpdate(ctx, out == nullptr ? nullptr : out + done, &outl, Bytes(in) + done,
                         static_cast<int>(n)) != 1) {
      return false;
    }
    done += n;
  }
  return true;
}

bool AbsorbAad(EVP_CIPHER_CTX* ctx, absl::Span<const absl::string_view> aad) {
  for (absl::string_view piece : aad) {
    if (!piece.empty() && !Update(ctx, nullptr, piece)) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AesGcmKey>> AesGcmKey::New(const SecretBytes& key) {
  if (key.size() != kKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-256-GCM key must be ", kKeySize, " bytes, got ", key.size()));
  }
  if (Cipher() == nullptr) return absl::InternalError("AES-256-GCM is not available in OpenSSL");
  return std::unique_ptr<AesGcmKey>(new AesGcmKey(key.Clone()));
}

AesGcmKey::~AesGcmKey() {
  std::lock_guard<std::mutex> lock(mu_);
  for (EVP_CIPHER_CTX* ctx : idle_encrypt_) EVP_CIPHER_CTX_free(ctx);
  for (EVP_CIPHER_CTX* ctx : idle_decrypt_) EVP_CIPHER_CTX_free(ctx);
}

EVP_CIPHER_CTX* AesGcmKey::Acquire(bool encrypt) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<EVP_CIPHER_CTX*>& idle = encrypt ? idle_encrypt_ : idle_decrypt_;
    if (!idle.empty()) {
      EVP_CIPHER_CTX* ctx = idle.back();
      idle.pop_back();
      return ctx;
    }
  }
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return nullptr;
  // Key now, nonce per message: the 12-byte IV length is GCM's default.
  if (EVP_CipherInit_ex(ctx, Cipher(), nullptr, key_.data(), nullptr, encrypt ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

void AesGcmKey::Release(EVP_CIPHER_CTX* ctx, bool encrypt) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<EVP_CIPHER_CTX*>& idle = encrypt ? idle_encrypt_ : idle_decrypt_;
    if (idle.size() < kMaxIdleContexts) {
      idle.push_back(ctx);
      return;
    }
  }
  EVP_CIPHER_CTX_free(ctx);
}

absl::Status AesGcmKey::SealTo(absl::string_view nonce, absl::string_view plaintext,
                               absl::Span<const absl::string_view> associated_data,
                               uint8_t* out) const {
  if (nonce.size() != kNonceSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-256-GCM nonce must be ", kNonceSize, " bytes, got ", nonce.size()));
  }
  if (plaintext.size() > kMaxPlaintext) {
    return absl::InvalidArgumentError("plaintext is too large for one AES-256-GCM message");
  }
  EVP_CIPHER_CTX* ctx = Acquire(/*encrypt=*/true);
  if (ctx == nullptr) {
    ERR_clear_error();
    return absl::InternalError("AES-256-GCM setup failed");
  }
  int final_len = 0;
  const bool ok =
      EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, Bytes(nonce)) == 1 &&
      AbsorbAad(ctx, associated_data) && Update(ctx, out, plaintext) &&
      EVP_EncryptFinal_ex(ctx, out + plaintext.size(), &final_len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagSize, out + plaintext.size()) == 1;
  if (!ok) {
    // A context in an unknown state is not reused.
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    return absl::InternalError("AES-256-GCM encryption failed");
  }
  Release(ctx, /*encrypt=*/true);
  return absl::OkStatus();
}

absl::Status AesGcmKey::OpenTo(absl::string_view nonce, absl::string_view ciphertext_and_tag,
                               absl::Span<const absl::string_view> associated_data,
                               uint8_t* out) const {
  if (nonce.size() != kNonceSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("AES-256-GCM nonce must be ", kNonceSize, " bytes, got ", nonce.size()));
  }
  if (ciphertext_and_tag.size() < kTagSize) {
    return absl::InvalidArgumentError("decryption failed");
  }
  const absl::string_view ciphertext =
      ciphertext_and_tag.substr(0, ciphertext_and_tag.size() - kTagSize);
  // OpenSSL copies the expected tag; it does not write through the pointer.
  unsigned char tag[kTagSize];
  std::memcpy(tag, ciphertext_and_tag.data() + ciphertext.size(), kTagSize);
  uint8_t scratch[kTagSize];  // a valid output pointer when there is no plaintext
  uint8_t* const dst = ciphertext.empty() ? scratch : out;
  EVP_CIPHER_CTX* ctx = Acquire(/*encrypt=*/false);
  if (ctx == nullptr) {
    ERR_clear_error();
    return absl::InternalError("AES-256-GCM setup failed");
  }
  int final_len = 0;
  const bool set_up = EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, Bytes(nonce)) == 1 &&
                      AbsorbAad(ctx, associated_data) && Update(ctx, dst, ciphertext) &&
                      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTagSize, tag) == 1;
  const bool authentic =
      set_up && EVP_DecryptFinal_ex(ctx, dst + ciphertext.size(), &final_len) == 1;
  // A failed tag leaves the context reusable (the next message sets a new
  // nonce); a failure before that does not.
  if (set_up) {
    Release(ctx, /*encrypt=*/false);
  } else {
    EVP_CIPHER_CTX_free(ctx);
  }
  if (!authentic) {
    ERR_clear_error();
    OPENSSL_cleanse(dst, ciphertext.size());
    return absl::InvalidArgumentError("decryption failed");
  }
  return absl::OkStatus();
}

absl::Status AesGcmKey::SealAppend(absl::string_view nonce, absl::string_view plaintext,
                                   absl::Span<const absl::string_view> associated_data,
                                   std::string* out) const {
  if (plaintext.size() > kMaxPlaintext) {
    return absl::InvalidArgumentError("plaintext is too large for one AES-256-GCM message");
  }
  const size_t start = out->size();
  out->resize(start + plaintext.size() + kTagSize);
  absl::Status s =
      SealTo(nonce, plaintext, associated_data, reinterpret_cast<uint8_t*>(out->data()) + start);
  if (!s.ok()) out->resize(start);
  return s;
}

absl::StatusOr<std::string> AesGcmKey::Open(
    absl::string_view nonce, absl::string_view ciphertext_and_tag,
    absl::Span<const absl::string_view> associated_data) const {
  std::string plaintext(
      ciphertext_and_tag.size() < kTagSize ? 0 : ciphertext_and_tag.size() - kTagSize, '\0');
  if (absl::Status s = OpenTo(nonce, ciphertext_and_tag, associated_data,
                              reinterpret_cast<uint8_t*>(plaintext.data()));
      !s.ok()) {
    return s;
  }
  return plaintext;
}

}  // namespace clavis::crypto
