// Key bytes in the SDK's public API.
//
// The SDK hands data keys to the application only as clavis::SecretBytes:
// locked, guarded memory that is wiped on destruction, move-only, never
// printable, compared in constant time. It is the crypto layer's own type
// (crypto/secret_bytes.h, part of the clavis_crypto library that is installed
// with the SDK), re-exported here under the SDK's namespace. This is the only
// crypto header the public API exposes: AEAD, KDF and parsing stay private to
// the SDK's sources, so applications never build against server internals.
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_SECRET_BYTES_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_SECRET_BYTES_H_

#include "crypto/secret_bytes.h"

namespace clavis {

using SecretBytes = ::clavis::crypto::SecretBytes;
// Overwrites `size` bytes at `bytes` with zeros in a way the compiler cannot
// drop, e.g. to wipe a PEM private key after Client::Connect.
using ::clavis::crypto::SecureWipe;

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_SECRET_BYTES_H_
