#include "crypto/kdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstdlib>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/internal/ssl_unique_ptr.h"

namespace clavis::crypto {
namespace {

using internal::EvpKdfCtxPtr;
using internal::EvpMacCtxPtr;
using internal::EvpMacPtr;

constexpr size_t kSha256Size = 32;
constexpr size_t kMaxHkdfOutput = 255 * kSha256Size;  // RFC 5869: L <= 255 * HashLen
constexpr size_t kMinTagSize = 16;                    // RFC 2104 section 5: >= HashLen / 2
// Early OpenSSL 3.0 releases keep the HKDF info in a fixed 1024-byte buffer
// (later 3.0.x allow 32 KiB); the lower bound is enforced here so behaviour
// does not depend on the patch level installed.
constexpr size_t kMaxHkdfInfo = 1024;

class ErrorQueueGuard {
 public:
  ErrorQueueGuard() = default;
  ErrorQueueGuard(const ErrorQueueGuard&) = delete;
  ErrorQueueGuard& operator=(const ErrorQueueGuard&) = delete;
  ~ErrorQueueGuard() { ERR_clear_error(); }
};

// OpenSSL refuses a NULL buffer even with length 0 (an empty HMAC key, an
// empty HKDF input), so empty inputs point at a dummy byte instead.
unsigned char kDummyByte = 0;

void* BufferFor(const void* data, size_t size) {
  return size == 0 ? &kDummyByte : const_cast<void*>(data);
}
void* BufferFor(absl::string_view s) { return BufferFor(s.data(), s.size()); }

// OpenSSL 3 looks algorithms up by name (a locked store and a property
// query) on every fetch, which cost more than hashing a short message did on
// clavisd's hot paths (every audit record HMACs its context). So each
// algorithm is fetched once per process; fetched objects are immutable and
// may be shared by threads. They live until the process ends.
const EVP_MD* Sha256Digest() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  return md;
}

// An HMAC context with its digest set and no key, only ever copied: setting
// the digest by name fetches it again each time, a copy does not.
const EVP_MAC_CTX* HmacSha256Template() {
  static const EVP_MAC_CTX* const ctx = [] {
    EvpMacPtr mac(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr));
    if (mac == nullptr) return static_cast<EVP_MAC_CTX*>(nullptr);
    EVP_MAC_CTX* made = EVP_MAC_CTX_new(mac.get());
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end(),
    };
    if (made != nullptr && EVP_MAC_CTX_set_params(made, params) != 1) {
      EVP_MAC_CTX_free(made);
      made = nullptr;
    }
    return made;
  }();
  return ctx;
}

const EVP_KDF* HkdfAlgorithm() {
  static const EVP_KDF* const kdf = EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr);
  return kdf;
}

// Computes the full HMAC-SHA256 of `message` under `key` into `out`.
absl::Status ComputeHmacSha256(const SecretBytes& key, absl::string_view message,
                               unsigned char (&out)[kSha256Size]) {
  ErrorQueueGuard clear_errors;
  const EVP_MAC_CTX* hmac = HmacSha256Template();
  if (hmac == nullptr) return absl::InternalError("HMAC is not available");
  EvpMacCtxPtr ctx(EVP_MAC_CTX_dup(hmac));
  if (ctx == nullptr) return absl::InternalError("cannot allocate an HMAC context");
  size_t out_len = 0;
  if (EVP_MAC_init(ctx.get(), static_cast<const unsigned char*>(BufferFor(key.data(), key.size())),
                   key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), static_cast<const unsigned char*>(BufferFor(message)),
                     message.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out, &out_len, sizeof(out)) != 1 || out_len != kSha256Size) {
    OPENSSL_cleanse(out, sizeof(out));
    return absl::InternalError("HMAC-SHA256 failed");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& input_key_material,
                                       absl::string_view salt, absl::string_view info,
                                       size_t output_size) {
  if (output_size == 0 || output_size > kMaxHkdfOutput) {
    return absl::InvalidArgumentError(absl::StrCat("HKDF-SHA256 output size must be 1 to ",
                                                   kMaxHkdfOutput, " bytes, got ", output_size));
  }
  if (info.size() > kMaxHkdfInfo) {
    return absl::InvalidArgumentError(
        absl::StrCat("HKDF-SHA256 info is limited to ", kMaxHkdfInfo, " bytes"));
  }
  ErrorQueueGuard clear_errors;
  const EVP_KDF* kdf = HkdfAlgorithm();
  if (kdf == nullptr) return absl::InternalError("HKDF is not available");
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(const_cast<EVP_KDF*>(kdf)));
  if (ctx == nullptr) return absl::InternalError("cannot allocate an HKDF context");

  // RFC 5869 section 2.2: no salt means HashLen zero bytes. Passed explicitly
  // rather than relying on how the library treats an empty salt.
  static const unsigned char kZeroSalt[kSha256Size] = {};
  const void* salt_data = salt.empty() ? static_cast<const void*>(kZeroSalt) : salt.data();
  const size_t salt_size = salt.empty() ? sizeof(kZeroSalt) : salt.size();

  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_KEY, BufferFor(input_key_material.data(), input_key_material.size()),
          input_key_material.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, BufferFor(salt_data, salt_size),
                                        salt_size),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, BufferFor(info), info.size()),
      OSSL_PARAM_construct_end(),
  };
  SecretBytes out(output_size);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return absl::InternalError("HKDF-SHA256 failed");
  }
  return out;
}

absl::StatusOr<std::string> HmacSha256(const SecretBytes& key, absl::string_view message) {
  unsigned char tag[kSha256Size];
  if (absl::Status s = ComputeHmacSha256(key, message, tag); !s.ok()) return s;
  std::string out(reinterpret_cast<const char*>(tag), sizeof(tag));
  OPENSSL_cleanse(tag, sizeof(tag));
  return out;
}

// The keyed context, and finished contexts kept for reuse: re-initialising
// one with no key restores the keyed state without allocating, where a copy
// allocates three digest contexts.
struct HmacSha256Key::Keyed {
  EvpMacCtxPtr ctx;
  // A plain std::mutex, as in aes_gcm_key.h: taken twice per message, and
  // ThreadSanitizer sees it (Debian's Abseil is not instrumented).
  mutable std::mutex mu;
  mutable std::vector<EvpMacCtxPtr> spare;  // guarded by mu
};

absl::StatusOr<HmacSha256Key> HmacSha256Key::New(const SecretBytes& key) {
  ErrorQueueGuard clear_errors;
  const EVP_MAC_CTX* hmac = HmacSha256Template();
  if (hmac == nullptr) return absl::InternalError("HMAC is not available");
  auto keyed = std::make_shared<Keyed>();
  keyed->ctx.reset(EVP_MAC_CTX_dup(hmac));
  if (keyed->ctx == nullptr ||
      EVP_MAC_init(keyed->ctx.get(),
                   static_cast<const unsigned char*>(BufferFor(key.data(), key.size())), key.size(),
                   nullptr) != 1) {
    return absl::InternalError("cannot key HMAC-SHA256");
  }
  return HmacSha256Key(std::move(keyed));
}

absl::StatusOr<std::string> HmacSha256Key::Compute(absl::string_view message) const {
  // Enough for the threads of a busy server; more are freed after use.
  constexpr size_t kMaxSpare = 64;
  ErrorQueueGuard clear_errors;
  EvpMacCtxPtr ctx;
  {
    std::lock_guard<std::mutex> lock(keyed_->mu);
    if (!keyed_->spare.empty()) {
      ctx = std::move(keyed_->spare.back());
      keyed_->spare.pop_back();
    }
  }
  if (ctx == nullptr) ctx.reset(EVP_MAC_CTX_dup(keyed_->ctx.get()));
  unsigned char tag[kSha256Size];
  size_t out_len = 0;
  // No key: back to the keyed state (a reused context) or stay in it (a copy).
  if (ctx == nullptr || EVP_MAC_init(ctx.get(), nullptr, 0, nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), static_cast<const unsigned char*>(BufferFor(message)),
                     message.size()) != 1 ||
      EVP_MAC_final(ctx.get(), tag, &out_len, sizeof(tag)) != 1 || out_len != kSha256Size) {
    OPENSSL_cleanse(tag, sizeof(tag));
    return absl::InternalError("HMAC-SHA256 failed");
  }
  std::string out(reinterpret_cast<const char*>(tag), sizeof(tag));
  OPENSSL_cleanse(tag, sizeof(tag));
  std::lock_guard<std::mutex> lock(keyed_->mu);
  if (keyed_->spare.size() < kMaxSpare) keyed_->spare.push_back(std::move(ctx));
  return out;
}

absl::Status VerifyHmacSha256(const SecretBytes& key, absl::string_view message,
                              absl::string_view tag) {
  if (tag.size() < kMinTagSize || tag.size() > kSha256Size) {
    return absl::InvalidArgumentError(absl::StrCat("HMAC-SHA256 tag must be ", kMinTagSize, " to ",
                                                   kSha256Size, " bytes, got ", tag.size()));
  }
  unsigned char expected[kSha256Size];
  if (absl::Status s = ComputeHmacSha256(key, message, expected); !s.ok()) return s;
  // Constant time over the (public) tag length: a truncated tag is the
  // leftmost bytes of the full one.
  const bool match = CRYPTO_memcmp(expected, tag.data(), tag.size()) == 0;
  OPENSSL_cleanse(expected, sizeof(expected));
  if (!match) return absl::InvalidArgumentError("MAC verification failed");
  return absl::OkStatus();
}

std::string Sha256(absl::string_view data) {
  ErrorQueueGuard clear_errors;
  // One digest context per thread, re-initialised per call: a new context
  // per call cost more than hashing an audit record did.
  thread_local const internal::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  unsigned char digest[kSha256Size];
  unsigned int digest_len = 0;
  if (Sha256Digest() == nullptr || ctx == nullptr ||
      EVP_DigestInit_ex2(ctx.get(), Sha256Digest(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), BufferFor(data), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &digest_len) != 1 || digest_len != kSha256Size) {
    // Only a broken OpenSSL installation gets here, and this function has no
    // error channel: carrying on with a wrong fingerprint would be worse.
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

}  // namespace clavis::crypto
