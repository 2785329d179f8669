// DataKeySource: where a RecordEncryptor gets data keys from. clavis::Client
// implements it over gRPC; tests use an in-memory fake, and a data-key cache
// can wrap any source.
//
// Contract of every implementation:
//  - GenerateDataKey returns a fresh 32-byte data key in plaintext together
//    with its ciphertext blob (docs/FORMAT.md "Ciphertext blob"), bound to
//    `key`, `segment` and `context`.
//  - DecryptDataKey returns the data key of a blob only if the blob was made
//    for exactly `key`, `segment` and `context`; anything else fails. This is
//    what lets a sealed record's header name its key and segment.
//  - Errors carry an absl::StatusCode a caller can act on (UNAVAILABLE:
//    retry later; FAILED_PRECONDITION: the key or segment is disabled;
//    INVALID_ARGUMENT: wrong blob or context; PERMISSION_DENIED) and never
//    key bytes or context values.
//
// Thread safety: implementations must be safe to call concurrently.
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_DATA_KEY_SOURCE_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_DATA_KEY_SOURCE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clavis/encryption_context.h"
#include "clavis/secret_bytes.h"

namespace clavis {

// A data key as issued by GenerateDataKey.
struct DataKey {
  SecretBytes plaintext;        // 32 bytes; wiped when the DataKey is destroyed
  std::string ciphertext_blob;  // the data key wrapped under its segment key; not secret
};

class DataKeySource {
 public:
  static constexpr size_t kDataKeySize = 32;

  virtual ~DataKeySource() = default;

  // `key` is a key's resource name, "tenants/{t}/keys/{k}"; `segment` a
  // segment label such as "acme/orders/2026-11".
  virtual absl::StatusOr<DataKey> GenerateDataKey(absl::string_view key, absl::string_view segment,
                                                  const EncryptionContext& context) = 0;

  // The plaintext data key of `ciphertext_blob`; fails unless the blob belongs
  // to `key` and `segment` and was bound to `context`.
  virtual absl::StatusOr<SecretBytes> DecryptDataKey(absl::string_view key,
                                                     absl::string_view segment,
                                                     absl::string_view ciphertext_blob,
                                                     const EncryptionContext& context) = 0;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_DATA_KEY_SOURCE_H_
