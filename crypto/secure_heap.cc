#include "crypto/secure_heap.h"

#include <openssl/crypto.h>

namespace clavis::crypto {

absl::Status InitSecureHeap(size_t bytes) {
  if (CRYPTO_secure_malloc_initialized()) return absl::OkStatus();
  // Allocations of at least 16 bytes each; OpenSSL rounds up to this.
  switch (CRYPTO_secure_malloc_init(bytes, 16)) {
    case 1:
      return absl::OkStatus();
    case 2:
      return absl::FailedPreconditionError(
          "OpenSSL secure heap is on but could not be locked in memory (mlock failed; raise "
          "RLIMIT_MEMLOCK, e.g. LimitMEMLOCK= in the systemd unit)");
    default:
      return absl::InternalError("OpenSSL secure heap could not be initialised");
  }
}

size_t SecureHeapUsed() { return CRYPTO_secure_malloc_initialized() ? CRYPTO_secure_used() : 0; }

}  // namespace clavis::crypto
