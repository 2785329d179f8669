#include "crypto/rsa_oaep.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <climits>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace clavis::crypto {
namespace {

using internal::BioPtr;
using internal::EvpPkeyCtxPtr;
using internal::EvpPkeyPtr;
using Pkcs8PrivKeyInfoPtr =
    std::unique_ptr<PKCS8_PRIV_KEY_INFO,
                    internal::SslDeleter<PKCS8_PRIV_KEY_INFO, PKCS8_PRIV_KEY_INFO_free>>;

constexpr int kMinModulusBits = 2048;
// SHA-256 output size: OAEP overhead is 2 * hLen + 2 bytes.
constexpr size_t kSha256Size = 32;

// The single error of Decrypt. Anything finer grained would be a padding
// oracle (Bleichenbacher / Manger).
absl::Status DecryptionFailed() { return absl::InvalidArgumentError("RSA-OAEP decryption failed"); }

// Empties the thread's OpenSSL error queue on every way out of a function, so
// no failure detail (which padding check failed, and so on) outlives the call.
class ErrorQueueGuard {
 public:
  ErrorQueueGuard() = default;
  ErrorQueueGuard(const ErrorQueueGuard&) = delete;
  ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
  ~ErrorQueueGuard() { ERR_clear_error(); }
};

// OpenSSL rejects NULL buffers in places even when the length is 0.
const unsigned char* BytesOf(absl::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

// Encrypted keys are refused rather than prompting on a terminal (the default
// PEM callback reads a passphrase from the tty).
int RefusePemPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) { return -1; }

// Only RSA (not RSA-PSS, which cannot do OAEP) of at least 2048 bits.
absl::Status CheckRsaKey(const EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA") != 1) return absl::InvalidArgumentError("key is not an RSA key");
  const int bits = EVP_PKEY_get_bits(key);
  if (bits < kMinModulusBits) {
    return absl::InvalidArgumentError(absl::StrCat(
        "RSA modulus of ", bits, " bits is below the minimum of ", kMinModulusBits, " bits"));
  }
  return absl::OkStatus();
}

// RSAES-OAEP with SHA-256 for both the label hash and MGF1. The label is
// handed to OpenSSL as an OPENSSL_malloc'd copy, which it takes ownership of
// on success.
bool ConfigureOaep(EVP_PKEY_CTX* ctx, absl::string_view label) {
  if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) <= 0) {
    return false;
  }
  if (label.empty()) return true;  // the default label is the empty string
  if (label.size() > static_cast<size_t>(INT_MAX)) return false;
  void* copy = OPENSSL_memdup(label.data(), label.size());
  if (copy == nullptr) return false;
  if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, static_cast<int>(label.size())) <= 0) {
    OPENSSL_free(copy);
    return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RsaOaepPrivateKey>> RsaOaepPrivateKey::Generate(int modulus_bits) {
  if (modulus_bits != 2048 && modulus_bits != 3072 && modulus_bits != 4096) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported RSA modulus size ", modulus_bits,
                                                   " bits (use 2048, 3072 or 4096)"));
  }
  ErrorQueueGuard clear_errors;
  // Public exponent 65537 (the OpenSSL default).
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(modulus_bits)));
  if (key == nullptr) return absl::InternalError("RSA key generation failed");
  return std::unique_ptr<RsaOaepPrivateKey>(new RsaOaepPrivateKey(std::move(key)));
}

absl::StatusOr<std::unique_ptr<RsaOaepPrivateKey>> RsaOaepPrivateKey::FromPkcs8Der(
    const SecretBytes& der) {
  ErrorQueueGuard clear_errors;
  if (der.empty() || der.size() > static_cast<size_t>(LONG_MAX)) {
    return absl::InvalidArgumentError("not a valid PKCS#8 private key");
  }
  // Strictly an unencrypted PrivateKeyInfo: d2i_AutoPrivateKey and
  // OSSL_DECODER would also take a PKCS#1 RSAPrivateKey.
  const unsigned char* p = der.data();
  Pkcs8PrivKeyInfoPtr info(d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(der.size())));
  if (info == nullptr) return absl::InvalidArgumentError("not a valid PKCS#8 private key");
  if (p != der.data() + der.size()) {
    return absl::InvalidArgumentError("trailing data after the PKCS#8 private key");
  }
  EvpPkeyPtr key(EVP_PKCS82PKEY(info.get()));
  if (key == nullptr) return absl::InvalidArgumentError("not a valid PKCS#8 private key");
  if (absl::Status s = CheckRsaKey(key.get()); !s.ok()) return s;
  return std::unique_ptr<RsaOaepPrivateKey>(new RsaOaepPrivateKey(std::move(key)));
}

absl::StatusOr<std::unique_ptr<RsaOaepPrivateKey>> RsaOaepPrivateKey::FromPem(
    const SecretBytes& pem) {
  ErrorQueueGuard clear_errors;
  if (pem.empty() || pem.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("not a valid PEM private key");
  }
  // A read-only memory BIO over the caller's secure buffer: no copy here.
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::InternalError("cannot allocate a BIO");
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, RefusePemPassphrase, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError("not a valid PEM private key");
  if (absl::Status s = CheckRsaKey(key.get()); !s.ok()) return s;
  return std::unique_ptr<RsaOaepPrivateKey>(new RsaOaepPrivateKey(std::move(key)));
}

int RsaOaepPrivateKey::modulus_bits() const { return EVP_PKEY_get_bits(key_.get()); }

absl::StatusOr<std::string> RsaOaepPrivateKey::PublicKeyDer() const {
  ErrorQueueGuard clear_errors;
  unsigned char* buf = nullptr;
  const int len = i2d_PUBKEY(key_.get(), &buf);
  if (len <= 0 || buf == nullptr) return absl::InternalError("cannot encode the RSA public key");
  std::string out(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
  OPENSSL_free(buf);
  return out;
}

absl::StatusOr<std::string> RsaOaepPrivateKey::PublicKeyPem() const {
  ErrorQueueGuard clear_errors;
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) {
    return absl::InternalError("cannot encode the RSA public key");
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) return absl::InternalError("cannot encode the RSA public key");
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<SecretBytes> RsaOaepPrivateKey::Decrypt(absl::string_view ciphertext,
                                                       absl::string_view label) const {
  // Every failure below, whatever its cause, returns DecryptionFailed() and
  // leaves the OpenSSL error queue empty.
  ErrorQueueGuard clear_errors;
  const int key_size = EVP_PKEY_get_size(key_.get());
  if (key_size <= 0) return DecryptionFailed();
  // RFC 8017 section 7.1.2 step 1: the ciphertext is exactly k bytes. The
  // length is public, so checking it first leaks nothing.
  if (ciphertext.size() != static_cast<size_t>(key_size)) return DecryptionFailed();

  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_decrypt_init(ctx.get()) <= 0 || !ConfigureOaep(ctx.get(), label)) {
    return DecryptionFailed();
  }
  // Decrypt into secure memory of the maximum size, then copy out the real
  // length; `buffer` is wiped when it goes out of scope.
  SecretBytes buffer(static_cast<size_t>(key_size));
  size_t out_len = buffer.size();
  if (EVP_PKEY_decrypt(ctx.get(), buffer.data(), &out_len, BytesOf(ciphertext),
                       ciphertext.size()) <= 0 ||
      out_len > buffer.size()) {
    return DecryptionFailed();
  }
  return SecretBytes::CopyOf(absl::MakeConstSpan(buffer.data(), out_len));
}

absl::StatusOr<std::string> RsaOaepEncrypt(absl::string_view public_key_der_or_pem,
                                           const SecretBytes& plaintext, absl::string_view label) {
  ErrorQueueGuard clear_errors;
  constexpr absl::string_view kBadKey = "not a valid SubjectPublicKeyInfo public key (DER or PEM)";
  if (public_key_der_or_pem.empty() ||
      public_key_der_or_pem.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(kBadKey);
  }
  EvpPkeyPtr key;
  if (public_key_der_or_pem[0] == 0x30) {  // DER: a SEQUENCE
    const unsigned char* p = BytesOf(public_key_der_or_pem);
    const unsigned char* const end = p + public_key_der_or_pem.size();
    key.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(public_key_der_or_pem.size())));
    if (key != nullptr && p != end) {
      return absl::InvalidArgumentError("trailing data after the public key");
    }
  } else {
    BioPtr bio(BIO_new_mem_buf(public_key_der_or_pem.data(),
                               static_cast<int>(public_key_der_or_pem.size())));
    if (bio == nullptr) return absl::InternalError("cannot allocate a BIO");
    key.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, RefusePemPassphrase, nullptr));
  }
  if (key == nullptr) return absl::InvalidArgumentError(kBadKey);
  if (absl::Status s = CheckRsaKey(key.get()); !s.ok()) return s;

  const size_t key_size = static_cast<size_t>(EVP_PKEY_get_size(key.get()));
  const size_t max_plaintext = key_size - 2 * kSha256Size - 2;
  if (plaintext.size() > max_plaintext) {
    return absl::InvalidArgumentError(absl::StrCat(
        "plaintext of ", plaintext.size(), " bytes is too long for RSA-OAEP-SHA256 with a ",
        EVP_PKEY_get_bits(key.get()), "-bit key (at most ", max_plaintext, ")"));
  }

  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (ctx == nullptr || EVP_PKEY_encrypt_init(ctx.get()) <= 0 || !ConfigureOaep(ctx.get(), label)) {
    return absl::InternalError("cannot set up RSA-OAEP encryption");
  }
  std::string out(key_size, '\0');
  size_t out_len = out.size();
  if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &out_len,
                       BytesOf(plaintext.view()), plaintext.size()) <= 0 ||
      out_len > out.size()) {
    return absl::InternalError("RSA-OAEP encryption failed");
  }
  out.resize(out_len);
  return out;
}

}  // namespace clavis::crypto
