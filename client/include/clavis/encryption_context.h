// Encryption context: application-chosen key/value pairs bound to a data key
// and to a sealed record as associated data, e.g. {"customer": "42",
// "table": "orders"}. The same map must be given to decrypt; any other map
// fails. It is not secret but may hold personal data, so the SDK never puts
// its keys or values into errors or logs.
//
// Limits (the server's, checked by the SDK before any call): at most 64
// entries, keys 1..256 bytes, values 0..1024 bytes, keys and values 8 KiB in
// all. Bound in the canonical encoding of docs/FORMAT.md "Encryption context".
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_ENCRYPTION_CONTEXT_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_ENCRYPTION_CONTEXT_H_

#include <map>
#include <string>

namespace clavis {

// An ordered map, so that equal contexts are equal byte for byte.
using EncryptionContext = std::map<std::string, std::string>;

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_ENCRYPTION_CONTEXT_H_
