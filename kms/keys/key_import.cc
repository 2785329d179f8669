#include "kms/keys/key_import.h"

#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/kdf.h"
#include "crypto/key_wrap.h"

namespace clavis::kms {
namespace {

constexpr absl::string_view kOaepName = "RSAES_OAEP_SHA_256";
constexpr absl::string_view kRsaAesName = "RSA_AES_KEY_WRAP_SHA_256";
// RFC 5649 output for 32 bytes of material: 8-byte integrity block + 32.
constexpr size_t kWrappedMaterialSize = kImportedKeyMaterialSize + 8;
constexpr size_t kEphemeralAesKeySize = 32;

// The one message for every failure after the size checks (no oracle).
absl::Status Unwrappable() {
  return absl::InvalidArgumentError(
      "wrapped key material could not be unwrapped: it was not wrapped for this import's "
      "wrapping key with this algorithm, or it was altered");
}

}  // namespace

absl::string_view ImportWrappingAlgorithmName(ImportWrappingAlgorithm algorithm) {
  switch (algorithm) {
    case ImportWrappingAlgorithm::kRsaesOaepSha256:
      return kOaepName;
    case ImportWrappingAlgorithm::kRsaAesKeyWrapSha256:
      return kRsaAesName;
  }
  return "UNKNOWN";
}

absl::StatusOr<ImportWrappingAlgorithm> ParseImportWrappingAlgorithm(absl::string_view name) {
  if (name == kOaepName) return ImportWrappingAlgorithm::kRsaesOaepSha256;
  if (name == kRsaAesName) return ImportWrappingAlgorithm::kRsaAesKeyWrapSha256;
  return absl::InvalidArgumentError(absl::StrCat("unknown wrapping algorithm \"", name, "\"; use ",
                                                 kOaepName, " or ", kRsaAesName));
}

absl::Status CheckWrappedSize(const crypto::RsaOaepPrivateKey& wrapping_key,
                              ImportWrappingAlgorithm algorithm, absl::string_view wrapped) {
  const size_t rsa_block = static_cast<size_t>(wrapping_key.modulus_bits()) / 8;
  const size_t expected = algorithm == ImportWrappingAlgorithm::kRsaesOaepSha256
                              ? rsa_block
                              : rsa_block + kWrappedMaterialSize;
  if (wrapped.size() != expected) {
    // Sizes are public (they follow from the public key and the algorithm),
    // so saying what was expected reveals nothing.
    const bool other_algorithm = algorithm == ImportWrappingAlgorithm::kRsaesOaepSha256
                                     ? wrapped.size() == rsa_block + kWrappedMaterialSize
                                     : wrapped.size() == rsa_block;
    return absl::InvalidArgumentError(absl::StrCat(
        "wrapped key material is ", wrapped.size(), " bytes; ",
        ImportWrappingAlgorithmName(algorithm), " with a ", wrapping_key.modulus_bits(),
        "-bit wrapping key takes ", expected, " (for 32 bytes of AES-256 key material)",
        other_algorithm ? absl::StrCat("; ", wrapped.size(), " bytes is what ",
                                       ImportWrappingAlgorithmName(
                                           algorithm == ImportWrappingAlgorithm::kRsaesOaepSha256
                                               ? ImportWrappingAlgorithm::kRsaAesKeyWrapSha256
                                               : ImportWrappingAlgorithm::kRsaesOaepSha256),
                                       " makes: was it wrapped with the other algorithm?")
                        : ""));
  }
  return absl::OkStatus();
}

absl::StatusOr<crypto::SecretBytes> UnwrapImportedKeyMaterial(
    const crypto::RsaOaepPrivateKey& wrapping_key, ImportWrappingAlgorithm algorithm,
    absl::string_view wrapped) {
  if (auto s = CheckWrappedSize(wrapping_key, algorithm, wrapped); !s.ok()) return s;
  const size_t rsa_block = static_cast<size_t>(wrapping_key.modulus_bits()) / 8;
  if (algorithm == ImportWrappingAlgorithm::kRsaesOaepSha256) {
    absl::StatusOr<crypto::SecretBytes> material = wrapping_key.Decrypt(wrapped);
    if (!material.ok()) return Unwrappable();
    if (material->size() != kImportedKeyMaterialSize) {
      return absl::InvalidArgumentError(absl::StrCat("key material must be ",
                                                     kImportedKeyMaterialSize,
                                                     " bytes (AES-256), not ", material->size()));
    }
    return material;
  }
  absl::StatusOr<crypto::SecretBytes> aes_key = wrapping_key.Decrypt(wrapped.substr(0, rsa_block));
  if (!aes_key.ok()) return Unwrappable();
  if (aes_key->size() != kEphemeralAesKeySize) {
    return absl::InvalidArgumentError(absl::StrCat("the RSA-wrapped AES key must be ",
                                                   kEphemeralAesKeySize, " bytes (AES-256), not ",
                                                   aes_key->size()));
  }
  absl::StatusOr<crypto::SecretBytes> material =
      crypto::AesKeyUnwrapPad(*aes_key, wrapped.substr(rsa_block));
  if (!material.ok()) return Unwrappable();
  // 40 wrapped bytes can only unwrap to 25..32 bytes; only 32 is AES-256.
  if (material->size() != kImportedKeyMaterialSize) {
    return absl::InvalidArgumentError(absl::StrCat("key material must be ",
                                                   kImportedKeyMaterialSize,
                                                   " bytes (AES-256), not ", material->size()));
  }
  return material;
}

absl::StatusOr<std::string> ImportedMaterialFingerprint(const crypto::SecretBytes& material) {
  auto mac = crypto::HmacSha256(material, "clavis import fingerprint v1");
  if (!mac.ok()) return mac.status();
  return crypto::HexEncode(*mac);
}

}  // namespace clavis::kms
