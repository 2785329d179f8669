// The CSPRNG (libsodium randombytes: getrandom(2) on Linux; OpenSSL's DRBG
// for FillRandom).
#ifndef CLAVIS_CRYPTO_RANDOM_H_
#define CLAVIS_CRYPTO_RANDOM_H_

#include <string>

#include "crypto/secret_bytes.h"

namespace clavis::crypto {

// `size` random bytes for non-secret uses (nonces, ids).
std::string RandomBytes(size_t size);
// `size` random bytes in secure memory (keys).
SecretBytes RandomSecret(size_t size);

// Fills `out` with `size` random bytes for non-secret uses on hot paths
// (one nonce per record): OpenSSL's per-thread DRBG (RAND_bytes), which needs
// no system call per call, unlike getrandom(2); falls back to libsodium if
// the DRBG ever fails.
void FillRandom(void* out, size_t size);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_RANDOM_H_
