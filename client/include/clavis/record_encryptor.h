// RecordEncryptor: encrypts application records ("sealed records",
// docs/FORMAT.md "Sealed record (v2)") with data keys from clavisd.
//
//   auto cache = clavis::DataKeyCache::New(client);           // recommended
//   auto encryptor = clavis::RecordEncryptor::New(*cache, "tenants/acme/keys/crm");
//   absl::StatusOr<std::string> sealed = (*encryptor)->Encrypt(
//       "acme/orders/2026-11", row_bytes, {{"table", "orders"}}, /*associated_data=*/"order 42");
//   absl::StatusOr<std::string> row =
//       (*encryptor)->Decrypt(*sealed, {{"table", "orders"}}, "order 42");
//
// With a DataKeyCache (clavis/data_key_cache.h) records of one segment and
// encryption context share a data key within the cache's limits, and most
// records cost no round trip; without one (New with a DataKeySource), every
// record gets its own data key from the source.
//
// A sealed record names its key and segment and carries the wrapped data key,
// so Decrypt needs only the record, the same encryption context and the same
// associated data. Records are AES-256-GCM encrypted under a key derived from
// the data key, and key committing: a record opens under exactly one data key.
//
// Encryption context vs associated data: both must be presented again to
// decrypt. The context is also bound to the data key by clavisd (policies
// and the audit log see it), so records with different contexts need
// different data keys; associated data (e.g. a record id, a column name) is
// bound only in the record, and records that differ only in it share keys.
// Neither is encrypted or stored in the record.
//
// Thread safety: immutable after New; every method may be called
// concurrently (if the DataKeySource allows it, as every implementation must).
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_RECORD_ENCRYPTOR_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_RECORD_ENCRYPTOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "clavis/data_key_cache.h"
#include "clavis/data_key_source.h"
#include "clavis/encryption_context.h"

namespace clavis {

// One record for DecryptMany.
struct RecordToDecrypt {
  absl::string_view sealed;
  EncryptionContext context;
  absl::string_view associated_data;
};

class RecordEncryptor {
 public:
  // The largest plaintext one record may hold (1 GiB). Larger data needs
  // streaming (a later format).
  static constexpr size_t kMaxPlaintextSize = size_t{1} << 30;

  // An encryptor for the key named `key` ("tenants/{t}/keys/{k}"), sharing
  // ownership of `source`, with a fresh data key for every record.
  // InvalidArgument if `source` is null or `key` is empty or longer than 256
  // bytes.
  static absl::StatusOr<std::unique_ptr<RecordEncryptor>> New(std::shared_ptr<DataKeySource> source,
                                                              std::string key);
  // The same, with data keys from `cache` (and its source).
  static absl::StatusOr<std::unique_ptr<RecordEncryptor>> New(std::shared_ptr<DataKeyCache> cache,
                                                              std::string key);

  // Seals `plaintext` under a data key of `segment`, bound to `context` and
  // `associated_data`. Fails with InvalidArgument for a segment outside
  // 1..256 bytes, a context beyond its limits or a plaintext over
  // kMaxPlaintextSize, and otherwise with the DataKeySource's status (e.g.
  // FAILED_PRECONDITION for a disabled key). On failure nothing is returned.
  absl::StatusOr<std::string> Encrypt(absl::string_view segment, absl::string_view plaintext,
                                      const EncryptionContext& context,
                                      absl::string_view associated_data = {}) const;

  // Opens a record sealed with this encryptor's key and the same `context`.
  // The record is treated as hostile. InvalidArgument: truncated, not a
  // sealed record, an unsupported format version or algorithm (named), an
  // oversized field, a record of another key, "sealed record does not match
  // its data key" (the key commitment failed), "decryption failed" (wrong
  // context or associated data, or altered bytes). Errors of the
  // DataKeySource pass through (e.g. FAILED_PRECONDITION when the key is
  // disabled). No partial plaintext. Reads format versions 1 and 2.
  absl::StatusOr<std::string> Decrypt(absl::string_view sealed, const EncryptionContext& context,
                                      absl::string_view associated_data = {}) const;

  // Decrypts many records, one result per record, in order, each failing on
  // its own. With a cache, the data keys it lacks are fetched together in
  // batch calls (clavis::Client: BatchDecrypt RPCs of up to
  // max_batch_items), so e.g. 10,000 records over 1,000 segments cost one
  // or two round trips, not 10,000.
  std::vector<absl::StatusOr<std::string>> DecryptMany(
      absl::Span<const RecordToDecrypt> records) const;

  const std::string& key() const { return key_; }

 private:
  RecordEncryptor(std::shared_ptr<DataKeySource> source, std::shared_ptr<DataKeyCache> cache,
                  std::string key);

  // Constant after construction. `cache_` may be null.
  const std::shared_ptr<DataKeySource> source_;
  const std::shared_ptr<DataKeyCache> cache_;
  const std::string key_;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_RECORD_ENCRYPTOR_H_
