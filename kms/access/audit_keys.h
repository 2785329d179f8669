// The audit log's own keys: the Ed25519 seed that signs checkpoints and the
// HMAC key that hashes encryption contexts. Generated on first start, kept
// in the Store wrapped by the root key (like master keys), so they survive
// restarts and a stolen database alone does not reveal them.
//
// The signing public key is not secret; clavisd writes it to
// <data_dir>/audit-signing.pub (base64) for `clavisctl audit verify`, and
// prints it at start-up so an operator can pin it elsewhere.
#ifndef CLAVIS_KMS_ACCESS_AUDIT_KEYS_H_
#define CLAVIS_KMS_ACCESS_AUDIT_KEYS_H_

#include "absl/status/statusor.h"
#include "crypto/secret_bytes.h"
#include "kms/root/root_key_provider.h"
#include "kms/storage/store.h"

namespace clavis::kms::access {

struct AuditKeys {
  crypto::SecretBytes signing_seed;  // 32 bytes
  crypto::SecretBytes context_key;   // 32 bytes
};

// Store key "m\0audit-keys": root-wrapped seed || context key (64 bytes),
// associated data "clavis audit keys v1".
absl::StatusOr<AuditKeys> LoadOrCreateAuditKeys(Store* store, RootKeyProvider* root);

}  // namespace clavis::kms::access

#endif  // CLAVIS_KMS_ACCESS_AUDIT_KEYS_H_
