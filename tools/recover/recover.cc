#include "tools/recover/recover.h"

#include "client/src/sealed_record.h"

namespace clavis::recover {

absl::StatusOr<crypto::SecretBytes> Recover(const kms::OfflineRecovery& recovery, InputKind kind,
                                            absl::string_view input,
                                            const kms::EncryptionContext& context,
                                            absl::string_view associated_data) {
  if (kind == InputKind::kBlob) return recovery.DecryptBlob(input, context);
  // The SDK's own format code opens the record: one implementation of the
  // format (docs/FORMAT.md), on- and offline.
  auto record = client_internal::ParseSealedRecord(input);
  if (!record.ok()) return record.status();
  auto data_key = recovery.DecryptBlob(record->fields.data_key_blob, context);
  if (!data_key.ok()) return data_key.status();
  auto plaintext = client_internal::OpenRecord(
      *record, *data_key, kms::CanonicalEncryptionContext(context), associated_data);
  if (!plaintext.ok()) return plaintext.status();
  crypto::SecretBytes out = crypto::SecretBytes::CopyOf(*plaintext);
  crypto::SecureWipe(plaintext->data(), plaintext->size());
  return out;
}

}  // namespace clavis::recover
