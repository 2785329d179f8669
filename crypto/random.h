// The CSPRNG (libsodium randombytes: getrandom(2) on Linux).
#ifndef CLAVIS_CRYPTO_RANDOM_H_
#define CLAVIS_CRYPTO_RANDOM_H_

#include <string>

#include "crypto/secret_bytes.h"

namespace clavis::crypto {

// `size` random bytes for non-secret uses (nonces, ids).
std::string RandomBytes(size_t size);
// `size` random bytes in secure memory (keys).
SecretBytes RandomSecret(size_t size);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_RANDOM_H_
