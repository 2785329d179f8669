#include "client/src/sealed_record.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/src/sealed_record_format.h"
#include "crypto/aead.h"
#include "crypto/byte_io.h"
#include "crypto/kdf.h"
#include "crypto/random.h"

namespace clavis::client_internal {
namespace {

absl::Status Truncated() { return absl::InvalidArgumentError("sealed record is truncated"); }

absl::Status CheckSize(absl::string_view what, size_t size, size_t max) {
  if (size == 0 || size > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("sealed record ", what, " of ", size, " bytes is outside 1..", max));
  }
  return absl::OkStatus();
}

// Reads a length prefix, checks it against 1..max before reading (so a huge
// claimed length is reported as oversized, not as truncated), then the bytes.
template <typename Int>
absl::Status ReadField(crypto::ByteReader& reader, bool (crypto::ByteReader::*read_len)(Int*),
                       absl::string_view what, size_t max, absl::string_view* out) {
  Int length = 0;
  if (!(reader.*read_len)(&length)) return Truncated();
  if (absl::Status s = CheckSize(what, length, max); !s.ok()) return s;
  if (!reader.ReadBytes(length, out)) return Truncated();
  return absl::OkStatus();
}

std::string EncodeHeader(const SealedRecordFields& fields, absl::string_view salt,
                         absl::string_view commitment) {
  std::string out;
  crypto::ByteWriter w(&out);
  w.Bytes(kSealedRecordMagic);
  w.U8(kSealedRecordVersion);
  w.U8(kAlgorithmAes256GcmHkdfSha256Committing);
  w.U16Prefixed(fields.key);
  w.U16Prefixed(fields.segment);
  w.U32Prefixed(fields.data_key_blob);
  w.Bytes(salt);
  w.Bytes(commitment);
  return out;
}

absl::StatusOr<std::unique_ptr<crypto::Aead>> RecordAead(crypto::SecretBytes key) {
  return crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, std::move(key));
}

}  // namespace

absl::Status ValidateSealedRecordFields(const SealedRecordFields& fields) {
  if (absl::Status s = CheckSize("key name", fields.key.size(), kMaxKeyNameSize); !s.ok()) return s;
  if (absl::Status s = CheckSize("segment", fields.segment.size(), kMaxSegmentSize); !s.ok()) {
    return s;
  }
  return CheckSize("data key blob", fields.data_key_blob.size(), kMaxDataKeyBlobSize);
}

absl::StatusOr<ParsedSealedRecord> ParseSealedRecord(absl::string_view sealed) {
  crypto::ByteReader reader(sealed);
  absl::string_view magic;
  if (!reader.ReadBytes(kSealedRecordMagic.size(), &magic)) {
    // A short prefix of the magic is a cut-off record; anything else is not one.
    if (absl::string_view(kSealedRecordMagic).substr(0, sealed.size()) == sealed) {
      return Truncated();
    }
    return absl::InvalidArgumentError("not a Clavis sealed record (wrong magic)");
  }
  if (magic != kSealedRecordMagic) {
    return absl::InvalidArgumentError("not a Clavis sealed record (wrong magic)");
  }
  ParsedSealedRecord record;
  if (!reader.ReadU8(&record.version)) return Truncated();
  if (record.version != kSealedRecordVersion) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported sealed record format version ",
                                                   record.version, " (this SDK reads version ",
                                                   kSealedRecordVersion, ")"));
  }
  if (!reader.ReadU8(&record.algorithm)) return Truncated();
  if (record.algorithm != kAlgorithmAes256GcmHkdfSha256Committing) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported sealed record algorithm ", record.algorithm));
  }
  SealedRecordFields& f = record.fields;
  if (absl::Status s = ReadField<uint16_t>(reader, &crypto::ByteReader::ReadU16, "key name",
                                           kMaxKeyNameSize, &f.key);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadField<uint16_t>(reader, &crypto::ByteReader::ReadU16, "segment",
                                           kMaxSegmentSize, &f.segment);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadField<uint32_t>(reader, &crypto::ByteReader::ReadU32, "data key blob",
                                           kMaxDataKeyBlobSize, &f.data_key_blob);
      !s.ok()) {
    return s;
  }
  if (!reader.ReadBytes(kSaltSize, &record.salt) ||
      !reader.ReadBytes(kCommitmentSize, &record.commitment)) {
    return Truncated();
  }
  record.header = sealed.substr(0, sealed.size() - reader.remaining());
  if (!reader.ReadBytes(kNonceSize, &record.nonce)) return Truncated();
  if (reader.remaining() < kTagSize) return Truncated();
  if (reader.remaining() - kTagSize > kMaxRecordPlaintextSize) {
    return absl::InvalidArgumentError(absl::StrCat("sealed record ciphertext is larger than ",
                                                   kMaxRecordPlaintextSize, " bytes"));
  }
  record.ciphertext_and_tag = reader.ReadRest();
  return record;
}

absl::StatusOr<RecordKeys> DeriveRecordKeys(const crypto::SecretBytes& data_key,
                                            absl::string_view salt, uint8_t algorithm,
                                            const SealedRecordFields& fields) {
  std::string info;
  crypto::ByteWriter w(&info);
  w.Bytes(kKdfLabel);
  w.U8(algorithm);
  w.U16Prefixed(fields.key);
  w.U16Prefixed(fields.segment);
  absl::StatusOr<crypto::SecretBytes> okm =
      crypto::HkdfSha256(data_key, salt, info, kDerivedKeySize + kCommitmentSize);
  if (!okm.ok()) return okm.status();
  RecordKeys keys;
  keys.encryption_key = crypto::SecretBytes::CopyOf(okm->view().substr(0, kDerivedKeySize));
  keys.commitment = std::string(okm->view().substr(kDerivedKeySize, kCommitmentSize));
  return keys;
}

absl::StatusOr<std::string> SealRecord(const crypto::SecretBytes& data_key,
                                       const SealedRecordFields& fields,
                                       absl::string_view plaintext,
                                       absl::string_view canonical_context) {
  if (absl::Status s = ValidateSealedRecordFields(fields); !s.ok()) return s;
  if (plaintext.size() > kMaxRecordPlaintextSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("plaintext is larger than ", kMaxRecordPlaintextSize, " bytes"));
  }
  // A fresh salt gives every record its own encryption key, even if a data
  // key is ever used for more than one record (the data-key cache).
  const std::string salt = crypto::RandomBytes(kSaltSize);
  absl::StatusOr<RecordKeys> keys =
      DeriveRecordKeys(data_key, salt, kAlgorithmAes256GcmHkdfSha256Committing, fields);
  if (!keys.ok()) return keys.status();
  std::string record = EncodeHeader(fields, salt, keys->commitment);
  absl::StatusOr<std::unique_ptr<crypto::Aead>> aead = RecordAead(std::move(keys->encryption_key));
  if (!aead.ok()) return aead.status();
  const std::string nonce = crypto::RandomBytes(kNonceSize);
  absl::StatusOr<std::string> sealed =
      (*aead)->Seal(nonce, plaintext, absl::StrCat(record, canonical_context));
  if (!sealed.ok()) return sealed.status();
  record.append(nonce);
  record.append(*sealed);
  return record;
}

absl::StatusOr<std::string> OpenRecord(const ParsedSealedRecord& record,
                                       const crypto::SecretBytes& data_key,
                                       absl::string_view canonical_context) {
  absl::StatusOr<RecordKeys> keys =
      DeriveRecordKeys(data_key, record.salt, record.algorithm, record.fields);
  if (!keys.ok()) return keys.status();
  // Checked before decrypting: without it, a record crafted to be valid
  // under two data keys (AES-GCM is not key committing) could open to a
  // different plaintext for a different reader.
  if (!crypto::ConstantTimeEquals(keys->commitment, record.commitment)) {
    return absl::InvalidArgumentError("sealed record does not match its data key");
  }
  absl::StatusOr<std::unique_ptr<crypto::Aead>> aead = RecordAead(std::move(keys->encryption_key));
  if (!aead.ok()) return aead.status();
  absl::StatusOr<std::string> plaintext = (*aead)->Open(
      record.nonce, record.ciphertext_and_tag, absl::StrCat(record.header, canonical_context));
  if (!plaintext.ok()) return absl::InvalidArgumentError("decryption failed");
  return plaintext;
}

}  // namespace clavis::client_internal
