// Encryption context: caller-chosen key/value pairs bound to a ciphertext as
// associated data (e.g. {"customer": "42", "table": "orders"}). The same map
// must be presented to decrypt. It is not secret but may hold personal data,
// so it is never logged in clear and never named in an error.
//
// One implementation for the server (kms/) and the SDK (client/), so both
// sides validate and encode a context identically (docs/FORMAT.md
// "Encryption context (canonical encoding, v1)").
#ifndef CLAVIS_CRYPTO_ENCRYPTION_CONTEXT_H_
#define CLAVIS_CRYPTO_ENCRYPTION_CONTEXT_H_

#include <cstddef>
#include <map>
#include <string>

#include "absl/status/status.h"

namespace clavis::crypto {

// An ordered map, so that equal contexts encode equally byte for byte.
using EncryptionContext = std::map<std::string, std::string>;

inline constexpr size_t kMaxContextEntries = 64;
inline constexpr size_t kMaxContextKeyLength = 256;
inline constexpr size_t kMaxContextValueLength = 1024;
inline constexpr size_t kMaxContextTotalBytes = 8192;

// InvalidArgument naming the broken limit (never a key or value) if the
// context breaks a limit above or has an empty key.
absl::Status ValidateEncryptionContext(const EncryptionContext& context);

// The canonical byte encoding: u32 count, then per entry in bytewise key
// order u32 key length, key, u32 value length, value (big-endian). Equal maps
// encode equally, and the encoding is self-delimiting.
// REQUIRES: ValidateEncryptionContext(context).ok().
std::string CanonicalEncryptionContext(const EncryptionContext& context);

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_ENCRYPTION_CONTEXT_H_
