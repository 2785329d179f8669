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
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "clavis/encryption_context.h"
#include "clavis/secret_bytes.h"

namespace clavis {

// A data key as issued by GenerateDataKey.
struct DataKey {
  SecretBytes plaintext;        // 32 bytes; wiped when the DataKey is destroyed
  std::string ciphertext_blob;  // the data key wrapped under its segment key; not secret
};

// One data key to decrypt (BatchDecryptDataKeys).
struct DataKeyRequest {
  std::string key;      // tenants/{t}/keys/{k}
  std::string segment;  // the segment the blob must belong to
  std::string ciphertext_blob;
  EncryptionContext context;
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

  // Many DecryptDataKey calls at once, one result per request, in order,
  // each failing on its own. clavis::Client sends them as BatchDecrypt RPCs
  // (as few as the server's batch limit allows); the default calls
  // DecryptDataKey in a loop.
  virtual std::vector<absl::StatusOr<SecretBytes>> BatchDecryptDataKeys(
      absl::Span<const DataKeyRequest> requests);

  // The 32-byte key of blind index `index` over `segment` of `key` (the
  // DeriveBlindIndexKey RPC, docs/FORMAT.md "Blind index key"): the same on
  // every call until the segment is destroyed. The default is
  // UNIMPLEMENTED.
  virtual absl::StatusOr<SecretBytes> DeriveBlindIndexKey(absl::string_view key,
                                                          absl::string_view segment,
                                                          absl::string_view index);
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_DATA_KEY_SOURCE_H_
