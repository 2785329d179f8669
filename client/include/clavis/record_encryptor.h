// RecordEncryptor: encrypts application records ("sealed records",
// docs/FORMAT.md "Sealed record (v1)") with a fresh data key per record from
// a DataKeySource, usually a clavis::Client.
//
//   auto encryptor = clavis::RecordEncryptor::New(client, "tenants/acme/keys/crm");
//   absl::StatusOr<std::string> sealed =
//       (*encryptor)->Encrypt("acme/orders/2026-11", row_bytes, {{"customer", "42"}});
//   absl::StatusOr<std::string> row = (*encryptor)->Decrypt(*sealed, {{"customer", "42"}});
//
// A sealed record names its key and segment and carries the wrapped data key,
// so Decrypt needs only the record and the same encryption context. Records
// are AES-256-GCM encrypted under a key derived from the data key, and key
// committing: a record opens under exactly one data key.
//
// Thread safety: immutable after New; Encrypt and Decrypt may be called
// concurrently (if the DataKeySource allows it, as every implementation must).
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_RECORD_ENCRYPTOR_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_RECORD_ENCRYPTOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "clavis/data_key_source.h"
#include "clavis/encryption_context.h"

namespace clavis {

class RecordEncryptor {
 public:
  // The largest plaintext one record may hold (1 GiB). Larger data needs
  // streaming (a later format).
  static constexpr size_t kMaxPlaintextSize = size_t{1} << 30;

  // An encryptor for the key named `key` ("tenants/{t}/keys/{k}"), sharing
  // ownership of `source`. InvalidArgument if `source` is null or `key` is
  // empty or longer than 256 bytes.
  static absl::StatusOr<std::unique_ptr<RecordEncryptor>> New(std::shared_ptr<DataKeySource> source,
                                                              std::string key);

  // Seals `plaintext` under a new data key of `segment`, bound to `context`.
  // Fails with InvalidArgument for a segment outside 1..256 bytes, a context
  // beyond its limits or a plaintext over kMaxPlaintextSize, and otherwise
  // with the DataKeySource's status (e.g. FAILED_PRECONDITION for a disabled
  // key). On failure nothing is returned.
  absl::StatusOr<std::string> Encrypt(absl::string_view segment, absl::string_view plaintext,
                                      const EncryptionContext& context) const;

  // Opens a record sealed with this encryptor's key and the same `context`.
  // The record is treated as hostile. InvalidArgument: truncated, not a
  // sealed record, an unsupported format version or algorithm (named), an
  // oversized field, a record of another key, "sealed record does not match
  // its data key" (the key commitment failed), "decryption failed" (wrong
  // context or altered bytes). Errors of the DataKeySource pass through (e.g.
  // FAILED_PRECONDITION when the key is disabled). No partial plaintext.
  absl::StatusOr<std::string> Decrypt(absl::string_view sealed,
                                      const EncryptionContext& context) const;

  const std::string& key() const { return key_; }

 private:
  RecordEncryptor(std::shared_ptr<DataKeySource> source, std::string key);

  // Constant after construction.
  const std::shared_ptr<DataKeySource> source_;
  const std::string key_;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_RECORD_ENCRYPTOR_H_
