// The server's name for the shared encryption context (crypto/encryption_context.h).
#ifndef CLAVIS_KMS_KEYS_ENCRYPTION_CONTEXT_H_
#define CLAVIS_KMS_KEYS_ENCRYPTION_CONTEXT_H_

#include "crypto/encryption_context.h"

namespace clavis::kms {

using crypto::CanonicalEncryptionContext;
using crypto::EncryptionContext;
using crypto::kMaxContextEntries;
using crypto::kMaxContextKeyLength;
using crypto::kMaxContextTotalBytes;
using crypto::kMaxContextValueLength;
using crypto::ValidateEncryptionContext;

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_ENCRYPTION_CONTEXT_H_
