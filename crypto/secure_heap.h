// OpenSSL's secure heap: where OpenSSL keeps the private parts of keys it
// generates or parses (RSA primes and exponents among them) once it is
// initialised: a locked (mlock) arena with guard pages, cleared on free.
// clavisd turns it on at start-up so the RSA wrapping keys of BYOK imports
// stay out of swap and core dumps.
#ifndef CLAVIS_CRYPTO_SECURE_HEAP_H_
#define CLAVIS_CRYPTO_SECURE_HEAP_H_

#include <cstddef>

#include "absl/status/status.h"

namespace clavis::crypto {

// Initialises the secure heap with `bytes` (a power of two). OK when it is
// on and locked; FailedPrecondition when it is on but could not be locked
// (RLIMIT_MEMLOCK too low: raise LimitMEMLOCK), Internal when it failed.
// Call once, before any key is made. When the arena is full, OpenSSL falls
// back to the ordinary heap.
absl::Status InitSecureHeap(size_t bytes);

// Bytes of the secure heap in use (0 when it is off).
size_t SecureHeapUsed();

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_SECURE_HEAP_H_
