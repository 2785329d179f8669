// How a short-lived gRPC client process ends without racing OpenSSL.
#ifndef CLAVIS_CRYPTO_OPENSSL_PROCESS_H_
#define CLAVIS_CRYPTO_OPENSSL_PROCESS_H_

namespace clavis::crypto {

// Flushes stdout and stderr (C and C++ streams) and ends the process with
// `code` at once, without exit handlers or static destructors.
//
// Why: gRPC 1.51's background threads can still be ending, and freeing
// their per-thread OpenSSL state, when exit() runs OpenSSL's exit handler
// (OPENSSL_cleanup) on the main thread. That race corrupts the heap (a
// crash at exit) or leaves the threads' state half freed (what
// LeakSanitizer reported for clavisctl in CI; grpc/grpc#38539). A client
// that is done has nothing left to clean up that the OS does not reclaim,
// and ours holds no key material by then: secrets live in sodium_malloc
// memory wiped when its owner is destroyed, before this is called.
// Servers (clavisd, clavis-rotator) stop their gRPC servers first and end
// normally.
[[noreturn]] void ExitWithoutLibraryCleanUp(int code);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_OPENSSL_PROCESS_H_
