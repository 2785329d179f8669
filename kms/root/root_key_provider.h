// RootKeyProvider: the root of trust. Everything Clavis stores that is secret
// (tenant master-key material) is wrapped under the root key, and the root
// key never leaves its provider: a key file (development), a passphrase
// stretched with Argon2id, or a PKCS#11 token (pkcs11_provider.h).
//
// Wrapped blobs are opaque to callers; each provider documents its own
// format in docs/FORMAT.md. `associated_data` binds a blob to where it is
// stored (e.g. the key's resource name and version) so a blob copied into
// another record does not unwrap.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_ROOT_ROOT_KEY_PROVIDER_H_
#define CLAVIS_KMS_ROOT_ROOT_KEY_PROVIDER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/secret_bytes.h"

namespace clavis::kms {

class RootKeyProvider {
 public:
  virtual ~RootKeyProvider() = default;

  // Wraps `plaintext` (key material, at most 4 KiB).
  virtual absl::StatusOr<std::string> Wrap(const crypto::SecretBytes& plaintext,
                                           absl::string_view associated_data) = 0;
  // Unwraps a blob produced by Wrap with the same associated data. A blob
  // from another root key, with other associated data, or altered in any
  // byte gives DataLoss("root key unwrap failed ...") naming no key bytes.
  virtual absl::StatusOr<crypto::SecretBytes> Unwrap(absl::string_view wrapped,
                                                     absl::string_view associated_data) = 0;

  // A short, non-secret description for logs and status: kind and a key
  // check value, e.g. "key-file:/var/lib/clavis/root.key kcv=3f9a1c0e".
  virtual std::string Describe() const = 0;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_ROOT_ROOT_KEY_PROVIDER_H_
