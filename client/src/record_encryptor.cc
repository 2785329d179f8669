#include "clavis/record_encryptor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/src/canonical_context.h"
#include "client/src/sealed_record.h"
#include "client/src/sealed_record_format.h"

namespace clavis {

static_assert(RecordEncryptor::kMaxPlaintextSize == client_internal::kMaxRecordPlaintextSize);

absl::StatusOr<std::unique_ptr<RecordEncryptor>> RecordEncryptor::New(
    std::shared_ptr<DataKeySource> source, std::string key) {
  if (source == nullptr) return absl::InvalidArgumentError("data key source is null");
  if (key.empty() || key.size() > client_internal::kMaxKeyNameSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key name must be 1..", client_internal::kMaxKeyNameSize, " bytes, not ", key.size()));
  }
  return std::unique_ptr<RecordEncryptor>(new RecordEncryptor(std::move(source), std::move(key)));
}

RecordEncryptor::RecordEncryptor(std::shared_ptr<DataKeySource> source, std::string key)
    : source_(std::move(source)), key_(std::move(key)) {}

absl::StatusOr<std::string> RecordEncryptor::Encrypt(absl::string_view segment,
                                                     absl::string_view plaintext,
                                                     const EncryptionContext& context) const {
  // Checked before asking for a data key, so bad input costs no round trip.
  if (segment.empty() || segment.size() > client_internal::kMaxSegmentSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segment must be 1..", client_internal::kMaxSegmentSize, " bytes, not ", segment.size()));
  }
  if (plaintext.size() > kMaxPlaintextSize) {
    return absl::InvalidArgumentError(absl::StrCat("plaintext of ", plaintext.size(),
                                                   " bytes is larger than the ", kMaxPlaintextSize,
                                                   " bytes one record may hold"));
  }
  if (absl::Status s = client_internal::ValidateEncryptionContext(context); !s.ok()) return s;

  absl::StatusOr<DataKey> data_key = source_->GenerateDataKey(key_, segment, context);
  if (!data_key.ok()) return data_key.status();
  if (data_key->plaintext.size() != DataKeySource::kDataKeySize) {
    return absl::InternalError(absl::StrCat(
        "data key source returned a ", data_key->plaintext.size(), "-byte data key; expected 32"));
  }
  client_internal::SealedRecordFields fields{key_, segment, data_key->ciphertext_blob};
  return client_internal::SealRecord(data_key->plaintext, fields, plaintext,
                                     client_internal::CanonicalEncryptionContext(context));
}

absl::StatusOr<std::string> RecordEncryptor::Decrypt(absl::string_view sealed,
                                                     const EncryptionContext& context) const {
  absl::StatusOr<client_internal::ParsedSealedRecord> record =
      client_internal::ParseSealedRecord(sealed);
  if (!record.ok()) return record.status();
  if (record->fields.key != key_) {
    // Key names are not secret; naming both tells the operator what to fix.
    return absl::InvalidArgumentError(absl::StrCat("sealed record belongs to key \"",
                                                   record->fields.key, "\", not \"", key_, "\""));
  }
  if (absl::Status s = client_internal::ValidateEncryptionContext(context); !s.ok()) return s;

  // The source refuses a blob of another key or segment, so the header's
  // names are vouched for by the server, not just by the record.
  absl::StatusOr<SecretBytes> data_key = source_->DecryptDataKey(
      record->fields.key, record->fields.segment, record->fields.data_key_blob, context);
  if (!data_key.ok()) return data_key.status();
  if (data_key->size() != DataKeySource::kDataKeySize) {
    return absl::InternalError(absl::StrCat("data key source returned a ", data_key->size(),
                                            "-byte data key; expected 32"));
  }
  return client_internal::OpenRecord(*record, *data_key,
                                     client_internal::CanonicalEncryptionContext(context));
}

}  // namespace clavis
