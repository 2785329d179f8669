// libsodium must be initialised once before use; sodium_init() is
// thread-safe and idempotent, this wrapper aborts if it fails (no safe
// randomness source means no safe way on).
#ifndef CLAVIS_CRYPTO_INTERNAL_SODIUM_INIT_H_
#define CLAVIS_CRYPTO_INTERNAL_SODIUM_INIT_H_

#include <sodium.h>

#include <cstdlib>

namespace clavis::crypto::internal {

inline void EnsureSodiumInitialized() {
  static const bool initialized = [] {
    if (sodium_init() < 0) std::abort();
    return true;
  }();
  (void)initialized;
}

}  // namespace clavis::crypto::internal

#endif  // CLAVIS_CRYPTO_INTERNAL_SODIUM_INIT_H_
