// Encryption context: caller-chosen key/value pairs bound to a ciphertext as
// associated data (e.g. {"customer": "42", "table": "orders"}). The same map
// must be presented to decrypt. It is not secret but may hold personal data,
// so it is never logged in clear.
#ifndef CLAVIS_KMS_KEYS_ENCRYPTION_CONTEXT_H_
#define CLAVIS_KMS_KEYS_ENCRYPTION_CONTEXT_H_

#include <map>
#include <string>

#include "absl/status/status.h"

namespace clavis::kms {

using EncryptionContext = std::map<std::string, std::string>;

constexpr size_t kMaxContextEntries = 64;
constexpr size_t kMaxContextKeyLength = 256;
constexpr size_t kMaxContextValueLength = 1024;
constexpr size_t kMaxContextTotalBytes = 8192;

// InvalidArgument if the context breaks a limit above or has an empty key.
absl::Status ValidateEncryptionContext(const EncryptionContext& context);

// The canonical byte encoding (docs/FORMAT.md, "Encryption context"):
// u32 count, then per entry in bytewise key order u32 key length, key,
// u32 value length, value (big-endian). Equal maps encode equally.
// REQUIRES: ValidateEncryptionContext(context).ok().
std::string CanonicalEncryptionContext(const EncryptionContext& context);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_ENCRYPTION_CONTEXT_H_
