#include "clavis/record_encryptor.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/src/data_key_cache_core.h"
#include "client/src/sealed_record.h"
#include "client/src/sealed_record_format.h"
#include "crypto/encryption_context.h"

namespace clavis {
namespace {

using client_internal::ParsedSealedRecord;

absl::Status CheckKeyName(absl::string_view key) {
  if (key.empty() || key.size() > client_internal::kMaxKeyNameSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key name must be 1..", client_internal::kMaxKeyNameSize, " bytes, not ", key.size()));
  }
  return absl::OkStatus();
}

// A record parsed and checked, ready for its data key.
struct PreparedRecord {
  ParsedSealedRecord record;
  std::string canonical_context;
};

}  // namespace

static_assert(RecordEncryptor::kMaxPlaintextSize == client_internal::kMaxRecordPlaintextSize);

absl::StatusOr<std::unique_ptr<RecordEncryptor>> RecordEncryptor::New(
    std::shared_ptr<DataKeySource> source, std::string key) {
  if (source == nullptr) return absl::InvalidArgumentError("data key source is null");
  if (absl::Status s = CheckKeyName(key); !s.ok()) return s;
  return std::unique_ptr<RecordEncryptor>(
      new RecordEncryptor(std::move(source), nullptr, std::move(key)));
}

absl::StatusOr<std::unique_ptr<RecordEncryptor>> RecordEncryptor::New(
    std::shared_ptr<DataKeyCache> cache, std::string key) {
  if (cache == nullptr) return absl::InvalidArgumentError("data key cache is null");
  if (absl::Status s = CheckKeyName(key); !s.ok()) return s;
  std::shared_ptr<DataKeySource> source = cache->source();
  return std::unique_ptr<RecordEncryptor>(
      new RecordEncryptor(std::move(source), std::move(cache), std::move(key)));
}

RecordEncryptor::RecordEncryptor(std::shared_ptr<DataKeySource> source,
                                 std::shared_ptr<DataKeyCache> cache, std::string key)
    : source_(std::move(source)), cache_(std::move(cache)), key_(std::move(key)) {}

absl::StatusOr<std::string> RecordEncryptor::Encrypt(absl::string_view segment,
                                                     absl::string_view plaintext,
                                                     const EncryptionContext& context,
                                                     absl::string_view associated_data) const {
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
  if (absl::Status s = crypto::ValidateEncryptionContext(context); !s.ok()) return s;

  if (cache_ != nullptr) {
    absl::StatusOr<std::shared_ptr<const client_internal::CacheEntry>> entry =
        cache_->core().AcquireForEncryption(key_, segment, context, plaintext.size());
    if (!entry.ok()) return entry.status();
    return (*entry)->material->Seal(plaintext, associated_data);
  }
  const std::string canonical = crypto::CanonicalEncryptionContext(context);
  absl::StatusOr<DataKey> data_key = source_->GenerateDataKey(key_, segment, context);
  if (!data_key.ok()) return data_key.status();
  if (data_key->plaintext.size() != DataKeySource::kDataKeySize) {
    return absl::InternalError(absl::StrCat(
        "data key source returned a ", data_key->plaintext.size(), "-byte data key; expected 32"));
  }
  client_internal::SealedRecordFields fields{key_, segment, data_key->ciphertext_blob};
  return client_internal::SealRecord(data_key->plaintext, fields, plaintext, canonical,
                                     associated_data);
}

absl::StatusOr<std::string> RecordEncryptor::Decrypt(absl::string_view sealed,
                                                     const EncryptionContext& context,
                                                     absl::string_view associated_data) const {
  if (cache_ == nullptr) {
    RecordToDecrypt one{sealed, context, associated_data};
    return std::move(DecryptMany(absl::MakeConstSpan(&one, 1))[0]);
  }
  // The usual case first: a record of the data key this thread opened last
  // (consecutive records of one segment and context), recognised by its
  // header bytes without parsing, validating the context (the entry's was
  // validated) or looking anything up.
  if (std::shared_ptr<const client_internal::CacheEntry> last =
          cache_->core().LastDecryptionEntryFor(sealed, context);
      last != nullptr && last->key == key_) {
    return last->material->OpenOwnRecord(sealed, associated_data);
  }
  // The cached path of one record, without DecryptMany's bookkeeping.
  absl::StatusOr<ParsedSealedRecord> record = client_internal::ParseSealedRecord(sealed);
  if (!record.ok()) return record.status();
  if (record->fields.key != key_) {
    return absl::InvalidArgumentError(absl::StrCat("sealed record belongs to key \"",
                                                   record->fields.key, "\", not \"", key_, "\""));
  }
  if (absl::Status s = crypto::ValidateEncryptionContext(context); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const client_internal::CacheEntry>> entry =
      cache_->core().LookupOneForDecryption(
          client_internal::DecryptLookup{record->fields.key,
                                         record->fields.segment,
                                         record->fields.data_key_blob,
                                         &context,
                                         {},
                                         record->salt});
  if (!entry.ok()) return entry.status();
  // The entry is bound to exactly this context (compared above).
  const client_internal::RecordKeyMaterial& material = *(*entry)->material;
  // Open takes the record if it is the material's own (same header: the
  // usual case, checked once); a record with another salt (v1) derives its
  // own key.
  return material.Matches(*record)
             ? material.Open(*record, associated_data)
             : client_internal::OpenRecord(*record, (*entry)->secret, material.canonical_context(),
                                           associated_data);
}

std::vector<absl::StatusOr<std::string>> RecordEncryptor::DecryptMany(
    absl::Span<const RecordToDecrypt> records) const {
  std::vector<absl::StatusOr<std::string>> results(records.size(),
                                                   absl::Status(absl::StatusCode::kInternal, ""));
  // Parse and check everything first: bad records cost no round trip.
  std::vector<std::optional<PreparedRecord>> prepared(records.size());
  std::vector<size_t> ready;  // indexes of records that need their data key
  for (size_t i = 0; i < records.size(); ++i) {
    absl::StatusOr<ParsedSealedRecord> record =
        client_internal::ParseSealedRecord(records[i].sealed);
    if (!record.ok()) {
      results[i] = record.status();
      continue;
    }
    if (record->fields.key != key_) {
      // Key names are not secret; naming both tells the operator what to fix.
      results[i] = absl::InvalidArgumentError(absl::StrCat(
          "sealed record belongs to key \"", record->fields.key, "\", not \"", key_, "\""));
      continue;
    }
    if (absl::Status s = crypto::ValidateEncryptionContext(records[i].context); !s.ok()) {
      results[i] = s;
      continue;
    }
    prepared[i] = PreparedRecord{*record, crypto::CanonicalEncryptionContext(records[i].context)};
    ready.push_back(i);
  }
  if (ready.empty()) return results;

  // The source refuses a blob of another key or segment, so the header's
  // names are vouched for by the server, not just by the record.
  if (cache_ != nullptr) {
    std::vector<client_internal::DecryptLookup> lookups;
    lookups.reserve(ready.size());
    for (size_t i : ready) {
      const ParsedSealedRecord& r = prepared[i]->record;
      lookups.push_back(client_internal::DecryptLookup{r.fields.key, r.fields.segment,
                                                       r.fields.data_key_blob, &records[i].context,
                                                       prepared[i]->canonical_context, r.salt});
    }
    auto entries = cache_->core().LookupForDecryption(lookups);
    for (size_t n = 0; n < ready.size(); ++n) {
      const size_t i = ready[n];
      if (!entries[n].ok()) {
        results[i] = entries[n].status();
        continue;
      }
      const client_internal::CacheEntry& entry = **entries[n];
      const ParsedSealedRecord& r = prepared[i]->record;
      // The usual case: the record was sealed with this key's salt. A v1
      // record (one salt per record) derives its own record key.
      results[i] = entry.material->Matches(r) ? entry.material->Open(r, records[i].associated_data)
                                              : client_internal::OpenRecord(
                                                    r, entry.secret, prepared[i]->canonical_context,
                                                    records[i].associated_data);
    }
    return results;
  }

  std::vector<DataKeyRequest> requests;
  requests.reserve(ready.size());
  for (size_t i : ready) {
    const ParsedSealedRecord& r = prepared[i]->record;
    requests.push_back(DataKeyRequest{std::string(r.fields.key), std::string(r.fields.segment),
                                      std::string(r.fields.data_key_blob), records[i].context});
  }
  std::vector<absl::StatusOr<SecretBytes>> keys;
  if (requests.size() == 1) {
    keys.push_back(source_->DecryptDataKey(requests[0].key, requests[0].segment,
                                           requests[0].ciphertext_blob, requests[0].context));
  } else {
    keys = source_->BatchDecryptDataKeys(requests);
  }
  for (size_t n = 0; n < ready.size(); ++n) {
    const size_t i = ready[n];
    if (n >= keys.size()) {
      results[i] = absl::InternalError("data key source answered too few items");
    } else if (!keys[n].ok()) {
      results[i] = keys[n].status();
    } else if (keys[n]->size() != DataKeySource::kDataKeySize) {
      results[i] = absl::InternalError(absl::StrCat("data key source returned a ", keys[n]->size(),
                                                    "-byte data key; expected 32"));
    } else {
      results[i] =
          client_internal::OpenRecord(prepared[i]->record, *keys[n], prepared[i]->canonical_context,
                                      records[i].associated_data);
    }
  }
  return results;
}

}  // namespace clavis
