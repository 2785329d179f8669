#include "crypto/random.h"

#include <openssl/rand.h>
#include <sodium.h>

#include <climits>

#include "crypto/internal/sodium_init.h"

namespace clavis::crypto {

std::string RandomBytes(size_t size) {
  internal::EnsureSodiumInitialized();
  std::string out(size, '\0');
  if (size > 0) randombytes_buf(out.data(), size);
  return out;
}

SecretBytes RandomSecret(size_t size) {
  internal::EnsureSodiumInitialized();
  SecretBytes out(size);
  if (size > 0) randombytes_buf(out.data(), size);
  return out;
}

void FillRandom(void* out, size_t size) {
  if (size == 0) return;
  if (size <= INT_MAX &&
      RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(size)) == 1) {
    return;
  }
  internal::EnsureSodiumInitialized();
  randombytes_buf(out, size);
}

}  // namespace clavis::crypto
