#include "client/src/sealed_record.h"

#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "client/src/fork_generation.h"
#include "client/src/sealed_record_format.h"
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

// What follows the header: nonce, ciphertext and tag (the ciphertext at
// most kMaxRecordPlaintextSize bytes).
absl::Status ReadBody(crypto::ByteReader& reader, absl::string_view* nonce,
                      absl::string_view* ciphertext_and_tag) {
  if (!reader.ReadBytes(kNonceSize, nonce)) return Truncated();
  if (reader.remaining() < kTagSize) return Truncated();
  if (reader.remaining() - kTagSize > kMaxRecordPlaintextSize) {
    return absl::InvalidArgumentError(absl::StrCat("sealed record ciphertext is larger than ",
                                                   kMaxRecordPlaintextSize, " bytes"));
  }
  *ciphertext_and_tag = reader.ReadRest();
  return absl::OkStatus();
}

// The associated data of a record's tag, `prefix` (header || canonical
// context) then the application's, handed to AES-GCM in one piece when it
// fits a stack buffer: each OpenSSL 3 update call has a fixed cost of a few
// per cent of a 1 KiB record (bench/sdk/README.md).
class JoinedAad {
 public:
  JoinedAad(absl::string_view prefix, absl::string_view rest) {
    if (rest.empty()) {
      pieces_[0] = prefix;
      count_ = 1;
    } else if (prefix.size() + rest.size() <= sizeof buffer_) {
      std::memcpy(buffer_, prefix.data(), prefix.size());
      std::memcpy(buffer_ + prefix.size(), rest.data(), rest.size());
      pieces_[0] = absl::string_view(buffer_, prefix.size() + rest.size());
      count_ = 1;
    } else {
      pieces_[0] = prefix;
      pieces_[1] = rest;
      count_ = 2;
    }
  }
  JoinedAad(const JoinedAad&) = delete;
  JoinedAad& operator=(const JoinedAad&) = delete;

  absl::Span<const absl::string_view> pieces() const { return {pieces_, count_}; }

 private:
  char buffer_[1024];
  absl::string_view pieces_[2];
  size_t count_ = 0;
};

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
  if (record.version != kSealedRecordVersion && record.version != kSealedRecordVersionV1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unsupported sealed record format version ", record.version, " (this SDK reads versions ",
        kSealedRecordVersionV1, " and ", kSealedRecordVersion, ")"));
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
  if (absl::Status s = ReadBody(reader, &record.nonce, &record.ciphertext_and_tag); !s.ok()) {
    return s;
  }
  return record;
}

absl::StatusOr<std::unique_ptr<RecordKeyMaterial>> RecordKeyMaterial::New(
    const crypto::SecretBytes& data_key, const SealedRecordFields& fields,
    absl::string_view canonical_context, std::string salt) {
  if (absl::Status s = ValidateSealedRecordFields(fields); !s.ok()) return s;
  if (data_key.size() != kDerivedKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("data key must be ", kDerivedKeySize, " bytes, not ", data_key.size()));
  }
  if (salt.empty()) salt = crypto::RandomBytes(kSaltSize);
  if (salt.size() != kSaltSize) {
    return absl::InvalidArgumentError(absl::StrCat("salt must be ", kSaltSize, " bytes"));
  }
  std::string info;
  crypto::ByteWriter w(&info);
  w.Bytes(kKdfLabel);
  w.U8(kAlgorithmAes256GcmHkdfSha256Committing);
  w.U16Prefixed(fields.key);
  w.U16Prefixed(fields.segment);
  absl::StatusOr<crypto::SecretBytes> okm =
      crypto::HkdfSha256(data_key, salt, info, kDerivedKeySize + kCommitmentSize);
  if (!okm.ok()) return okm.status();
  absl::StatusOr<std::unique_ptr<crypto::AesGcmKey>> aead =
      crypto::AesGcmKey::New(crypto::SecretBytes::CopyOf(okm->view().substr(0, kDerivedKeySize)));
  if (!aead.ok()) return aead.status();
  std::unique_ptr<RecordKeyMaterial> m(new RecordKeyMaterial());
  m->key_ = std::string(fields.key);
  m->segment_ = std::string(fields.segment);
  m->data_key_blob_ = std::string(fields.data_key_blob);
  m->salt_ = std::move(salt);
  m->commitment_ = std::string(okm->view().substr(kDerivedKeySize, kCommitmentSize));
  m->header_ = EncodeHeader(fields, m->salt_, m->commitment_);
  m->canonical_context_ = std::string(canonical_context);
  m->aad_prefix_ = absl::StrCat(m->header_, canonical_context);
  m->aead_ = std::move(*aead);
  crypto::FillRandom(m->nonce_prefix_, sizeof m->nonce_prefix_);
  m->fork_generation_ = ForkGeneration();
  return m;
}

absl::StatusOr<std::string> RecordKeyMaterial::Seal(absl::string_view plaintext,
                                                    absl::string_view associated_data) const {
  if (plaintext.size() > kMaxRecordPlaintextSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("plaintext is larger than ", kMaxRecordPlaintextSize, " bytes"));
  }
  std::string record;
  record.reserve(header_.size() + kNonceSize + plaintext.size() + kTagSize);
  record.append(header_);
  const uint64_t n = records_sealed_.fetch_add(1, std::memory_order_relaxed);
  if (n >= kMaxRecordsPerSalt) {
    return absl::FailedPreconditionError(
        "this data key has sealed 2^32 records; a new data key is needed");
  }
  if (!SealableHere()) {
    return absl::FailedPreconditionError(
        "this data key was inherited through fork(); a child process must get its own");
  }
  // nonce = 4-byte random prefix || u64 record counter: unique for this
  // material's key, with no randomness drawn per record.
  char nonce[kNonceSize];
  std::memcpy(nonce, nonce_prefix_, sizeof nonce_prefix_);
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<char>((n >> (56 - 8 * i)) & 0xff);
  record.append(nonce, kNonceSize);
  const absl::string_view nonce_view(nonce, kNonceSize);
  const JoinedAad aad(aad_prefix_, associated_data);
  if (absl::Status s = aead_->SealAppend(nonce_view, plaintext, aad.pieces(), &record); !s.ok()) {
    return s;
  }
  return record;
}

bool RecordKeyMaterial::SealableHere() const { return fork_generation_ == ForkGeneration(); }

bool RecordKeyMaterial::Matches(const ParsedSealedRecord& record) const {
  // A record with this material's very header (the usual case) matches.
  if (record.header == header_) return true;
  return record.algorithm == kAlgorithmAes256GcmHkdfSha256Committing && record.salt == salt_ &&
         record.fields.key == key_ && record.fields.segment == segment_ &&
         record.fields.data_key_blob == data_key_blob_;
}

absl::StatusOr<std::string> RecordKeyMaterial::Open(const ParsedSealedRecord& record,
                                                    absl::string_view associated_data) const {
  const bool same_header = record.header == header_;
  if (!same_header && !Matches(record)) {
    return absl::InternalError("record key material used for a record it was not made for");
  }
  // Checked before decrypting: without it, a record crafted to be valid
  // under two data keys (AES-GCM is not key committing) could open to a
  // different plaintext for a different reader.
  // (A record with this material's very header carries its commitment; the
  // commitment is public — every record has it — so that plain comparison
  // suffices.)
  if (!same_header && !crypto::ConstantTimeEquals(commitment_, record.commitment)) {
    return absl::InvalidArgumentError("sealed record does not match its data key");
  }
  // The usual case is a record of this very header, whose associated data
  // prefix is encoded already. Otherwise (the version byte aside, every
  // header field was just compared) the record's own header is bound.
  if (same_header) return OpenBody(record.nonce, record.ciphertext_and_tag, associated_data);
  const absl::string_view aad[] = {record.header, canonical_context_, associated_data};
  absl::StatusOr<std::string> plaintext = aead_->Open(record.nonce, record.ciphertext_and_tag, aad);
  if (!plaintext.ok()) return absl::InvalidArgumentError("decryption failed");
  return plaintext;
}

absl::StatusOr<std::string> RecordKeyMaterial::OpenOwnRecord(
    absl::string_view sealed, absl::string_view associated_data) const {
  if (sealed.size() < header_.size()) {
    return absl::InternalError("record key material used for a record it was not made for");
  }
  crypto::ByteReader reader(sealed.substr(header_.size()));
  absl::string_view nonce, ciphertext_and_tag;
  if (absl::Status s = ReadBody(reader, &nonce, &ciphertext_and_tag); !s.ok()) return s;
  return OpenBody(nonce, ciphertext_and_tag, associated_data);
}

absl::StatusOr<std::string> RecordKeyMaterial::OpenBody(absl::string_view nonce,
                                                        absl::string_view ciphertext_and_tag,
                                                        absl::string_view associated_data) const {
  const JoinedAad aad(aad_prefix_, associated_data);
  absl::StatusOr<std::string> plaintext = aead_->Open(nonce, ciphertext_and_tag, aad.pieces());
  if (!plaintext.ok()) return absl::InvalidArgumentError("decryption failed");
  return plaintext;
}

absl::StatusOr<std::string> SealRecord(const crypto::SecretBytes& data_key,
                                       const SealedRecordFields& fields,
                                       absl::string_view plaintext,
                                       absl::string_view canonical_context,
                                       absl::string_view associated_data) {
  absl::StatusOr<std::unique_ptr<RecordKeyMaterial>> material =
      RecordKeyMaterial::New(data_key, fields, canonical_context);
  if (!material.ok()) return material.status();
  return (*material)->Seal(plaintext, associated_data);
}

absl::StatusOr<std::string> OpenRecord(const ParsedSealedRecord& record,
                                       const crypto::SecretBytes& data_key,
                                       absl::string_view canonical_context,
                                       absl::string_view associated_data) {
  absl::StatusOr<std::unique_ptr<RecordKeyMaterial>> material =
      RecordKeyMaterial::New(data_key, record.fields, canonical_context, std::string(record.salt));
  if (!material.ok()) return material.status();
  return (*material)->Open(record, associated_data);
}

}  // namespace clavis::client_internal
