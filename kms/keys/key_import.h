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
// With the OpenSSL command line only (key_import_test.cc runs exactly this):
//   openssl rand 32 > material.bin
//   # RSAES_OAEP_SHA_256
//   openssl pkeyutl -encrypt -pubin -inkey wrapping.pem -in material.bin -out wrapped.bin \
//     -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
//   # RSA_AES_KEY_WRAP_SHA_256
//   openssl rand 32 > aes.bin
//   openssl pkeyutl -encrypt -pubin -inkey wrapping.pem -in aes.bin -out aes.wrapped \
//     -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
//   openssl enc -id-aes256-wrap-pad -K "$(od -An -tx1 aes.bin | tr -d ' \n')" -iv A65959A6 \
//     -in material.bin -out material.wrapped
//   cat aes.wrapped material.wrapped > wrapped.bin
//
// Errors are InvalidArgument. Sizes are checked before anything is
// decrypted and say what was expected. Every failure after that — bad OAEP
// padding, a wrong wrapping key, a failed AES key-wrap integrity check —
// gives the same message, so the import is no padding oracle.
//
// (The GetImportParameters / ImportKeyMaterial RPCs that use this come with
// the rest of BYOK import.)
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

// The 32-byte key material in `wrapped`, unwrapped with `wrapping_key`.
absl::StatusOr<crypto::SecretBytes> UnwrapImportedKeyMaterial(
    const crypto::RsaOaepPrivateKey& wrapping_key, ImportWrappingAlgorithm algorithm,
    absl::string_view wrapped);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_KEY_IMPORT_H_
