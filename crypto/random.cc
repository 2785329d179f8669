#include "crypto/random.h"

#include <sodium.h>

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

}  // namespace clavis::crypto
