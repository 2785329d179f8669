#include "kms/root/root_key_wrapping.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace clavis::kms {
namespace {

// AES-256-GCM nonce size; fixed by format version 0x01.
constexpr size_t kNonceSize = 12;
constexpr size_t kMinBlobSize = 1 + kNonceSize + crypto::Aead::kTagSize;

// One message for every unwrap failure: which check failed is not the
// caller's business, and a uniform answer is no oracle.
absl::Status UnwrapFailed() {
  return absl::DataLossError(
      "root key unwrap failed: wrong root key, or the stored record was altered");
}

std::string FullAssociatedData(absl::string_view associated_data) {
  return absl::StrCat(kRootWrapDomainLabel, associated_data);
}

}  // namespace

absl::StatusOr<std::string> RootKeyCheckValue(const crypto::SecretBytes& root_key) {
  absl::StatusOr<std::string> tag = crypto::HmacSha256(root_key, kKeyCheckValueMessage);
  if (!tag.ok()) {
    return absl::InternalError(
        absl::StrCat("computing the root key check value failed: ", tag.status().message()));
  }
  if (tag->size() < kKeyCheckValueBytes) {
    crypto::SecureWipe(tag->data(), tag->size());
    return absl::InternalError("computing the root key check value failed: short HMAC");
  }
  std::string kcv = crypto::HexEncode(absl::string_view(*tag).substr(0, kKeyCheckValueBytes));
  // The full tag is a complete key-verification oracle; keep only the prefix.
  crypto::SecureWipe(tag->data(), tag->size());
  return kcv;
}

absl::StatusOr<RootKeyWrapper> RootKeyWrapper::New(crypto::SecretBytes root_key) {
  if (root_key.size() != kRootKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("a root key must be ", kRootKeySize, " bytes, got ", root_key.size()));
  }
  absl::StatusOr<std::string> kcv = RootKeyCheckValue(root_key);
  if (!kcv.ok()) return kcv.status();
  // Moving the key into the AEAD leaves exactly one copy of it in memory.
  absl::StatusOr<std::unique_ptr<crypto::Aead>> aead =
      crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, std::move(root_key));
  if (!aead.ok()) {
    return absl::InternalError(absl::StrCat("setting up AES-256-GCM under the root key failed: ",
                                            aead.status().message()));
  }
  return RootKeyWrapper(*std::move(aead), *std::move(kcv));
}

absl::StatusOr<std::string> RootKeyWrapper::Wrap(const crypto::SecretBytes& plaintext,
                                                 absl::string_view associated_data) const {
  if (plaintext.empty()) {
    // An empty "key" would unwrap to an empty key later: always a caller bug.
    return absl::InvalidArgumentError("root key wrap: nothing to wrap (empty plaintext)");
  }
  if (plaintext.size() > kMaxRootWrapPlaintextSize) {
    return absl::InvalidArgumentError(absl::StrCat("root key wrap: plaintext is ", plaintext.size(),
                                                   " bytes, at most ", kMaxRootWrapPlaintextSize,
                                                   " allowed"));
  }
  const std::string nonce = crypto::RandomBytes(kNonceSize);
  absl::StatusOr<std::string> sealed =
      aead_->Seal(nonce, plaintext.view(), FullAssociatedData(associated_data));
  if (!sealed.ok()) {
    return absl::InternalError(absl::StrCat("root key wrap failed: ", sealed.status().message()));
  }
  std::string blob;
  blob.reserve(1 + nonce.size() + sealed->size());
  blob.push_back(static_cast<char>(kRootWrapVersion));
  blob.append(nonce);
  blob.append(*sealed);
  return blob;
}

absl::StatusOr<crypto::SecretBytes> RootKeyWrapper::Unwrap(
    absl::string_view wrapped, absl::string_view associated_data) const {
  if (wrapped.size() < kMinBlobSize) return UnwrapFailed();
  if (static_cast<uint8_t>(wrapped[0]) != kRootWrapVersion) return UnwrapFailed();
  const absl::string_view nonce = wrapped.substr(1, kNonceSize);
  const absl::string_view ciphertext_and_tag = wrapped.substr(1 + kNonceSize);
  absl::StatusOr<crypto::SecretBytes> plaintext =
      aead_->OpenSecret(nonce, ciphertext_and_tag, FullAssociatedData(associated_data));
  if (!plaintext.ok()) return UnwrapFailed();
  return plaintext;
}

}  // namespace clavis::kms
