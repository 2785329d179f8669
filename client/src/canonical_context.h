// Validation and canonical encoding of an encryption context, as the server
// does it (docs/FORMAT.md "Encryption context"), so the SDK can bind a
// context into a sealed record. Written against the spec rather than shared
// with kms/, which the SDK must not depend on.
#ifndef CLAVIS_CLIENT_SRC_CANONICAL_CONTEXT_H_
#define CLAVIS_CLIENT_SRC_CANONICAL_CONTEXT_H_

#include <string>

#include "absl/status/status.h"
#include "clavis/encryption_context.h"

namespace clavis::client_internal {

// InvalidArgument naming the broken limit (never a key or value).
absl::Status ValidateEncryptionContext(const EncryptionContext& context);

// u32 count, then per entry in bytewise key order u32-prefixed key and value.
// REQUIRES: ValidateEncryptionContext(context).ok().
std::string CanonicalEncryptionContext(const EncryptionContext& context);

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_CANONICAL_CONTEXT_H_
