// BYOK import: unwrapping key material a customer wrapped for Clavis.
//
// The customer generates 256-bit key material in their own environment and
// wraps it to an RSA public key Clavis generated for the import (3072 or
// 4096 bits; the private half never leaves clavisd's secure memory), with one
// of the algorithms the major clouds offer:
//  - RSAES_OAEP_SHA_256: the material itself, RSAES-OAEP with SHA-256 and
//    MGF1-SHA-256, no label. `wrapped` is exactly one RSA block.
//  - RSA_AES_KEY_WRAP_SHA_256: a fresh AES-256 key wrapped as above, followed
//    by the material wrapped under that AES key with AES key wrap with
//    padding (RFC 5649, `openssl enc -id-aes256-wrap-pad`): one RSA block,
//    then 40 bytes.
// docs/BYOK.md shows the customer how to do either with the OpenSSL command
// line only; key_import_test.cc runs those commands from the document.
//
// Errors are InvalidArgument. Sizes are checked before anything is
// decrypted and say what was expected. Every failure of the decryption
// itself (bad OAEP padding, a wrong wrapping key, a failed AES key-wrap
// integrity check) gives the same message, so the import is no padding
// oracle. A wrap that does open but holds material of another size says so:
// only whoever made that wrap can get this answer, and it tells them
// nothing they did not know.
//
// The RPCs around it: GetImportParameters (ImportTokenStore) and
// ImportKeyMaterial (KeyLifecycle::ImportKeyMaterial); walkthrough in
// docs/BYOK.md.
#ifndef CLAVIS_KMS_KEYS_KEY_IMPORT_H_
#define CLAVIS_KMS_KEYS_KEY_IMPORT_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/rsa_oaep.h"
#include "crypto/secret_bytes.h"

namespace clavis::kms {

enum class ImportWrappingAlgorithm {
  kRsaesOaepSha256 = 1,
  kRsaAesKeyWrapSha256 = 2,
};

// "RSAES_OAEP_SHA_256" / "RSA_AES_KEY_WRAP_SHA_256".
absl::string_view ImportWrappingAlgorithmName(ImportWrappingAlgorithm algorithm);
// The inverse; InvalidArgument naming the accepted names otherwise.
absl::StatusOr<ImportWrappingAlgorithm> ParseImportWrappingAlgorithm(absl::string_view name);

// Wrapping key sizes offered for imports.
inline constexpr int kImportWrappingKeyBits3072 = 3072;
inline constexpr int kImportWrappingKeyBits4096 = 4096;
// Imported master-key material: AES-256.
inline constexpr size_t kImportedKeyMaterialSize = 32;

// OK if `wrapped` has the size `algorithm` makes with `wrapping_key` (sizes
// are public, so this check tells an attacker nothing); otherwise an
// InvalidArgument naming the expected size.
absl::Status CheckWrappedSize(const crypto::RsaOaepPrivateKey& wrapping_key,
                              ImportWrappingAlgorithm algorithm, absl::string_view wrapped);

// The 32-byte key material in `wrapped`, unwrapped with `wrapping_key`
// (CheckWrappedSize first).
absl::StatusOr<crypto::SecretBytes> UnwrapImportedKeyMaterial(
    const crypto::RsaOaepPrivateKey& wrapping_key, ImportWrappingAlgorithm algorithm,
    absl::string_view wrapped);

// Hex HMAC-SHA256(material, "clavis import fingerprint v1"): what a key
// version remembers of imported material after it is purged, so that only
// the same material can be imported into it again. One-way; reveals
// nothing of the material.
absl::StatusOr<std::string> ImportedMaterialFingerprint(const crypto::SecretBytes& material);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_KEY_IMPORT_H_
