// Password-based key derivation: Argon2id (libsodium crypto_pwhash), for the
// passphrase root-key provider.
#ifndef CLAVIS_CRYPTO_PASSWORD_KDF_H_
#define CLAVIS_CRYPTO_PASSWORD_KDF_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::crypto {

struct Argon2idParams {
  static constexpr size_t kSaltSize = 16;
  uint64_t ops_limit = 3;                   // passes over memory
  uint64_t mem_limit_bytes = 256ull << 20;  // 256 MiB
};

// Derives `output_size` bytes from `passphrase` and a 16-byte `salt`.
// InvalidArgument for a wrong salt size or parameters below libsodium's
// minimums; ResourceExhausted if the memory cannot be had.
absl::StatusOr<SecretBytes> Argon2id(const SecretBytes& passphrase, absl::string_view salt,
                                     const Argon2idParams& params, size_t output_size);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_PASSWORD_KDF_H_
