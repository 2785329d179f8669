// Process-wide OpenSSL set-up for Clavis' executables.
#ifndef CLAVIS_CRYPTO_OPENSSL_PROCESS_H_
#define CLAVIS_CRYPTO_OPENSSL_PROCESS_H_

#include "absl/status/status.h"

namespace clavis::crypto {

// Initialises OpenSSL without its exit-time clean-up handler. Call it first
// in main(), before anything touches OpenSSL (gRPC's TLS included): only the
// first initialisation decides whether the handler is registered.
//
// Why: gRPC's background threads (1.51, before upstream's fix in 1.83) can
// still be ending, and freeing their per-thread OpenSSL state, when exit()
// runs OPENSSL_cleanup on the main thread. That race corrupts the heap
// (double free, crash at exit) or leaks the threads' error state (what
// LeakSanitizer reported for clavisctl). Without the handler, per-thread
// state is freed by each thread's own exit and the OS reclaims the rest;
// key material never depends on it (ours is in sodium_malloc memory, wiped
// when its owner is destroyed; OpenSSL's secure heap is cleared on free).
absl::Status InitOpenSslForProcess();

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_OPENSSL_PROCESS_H_
