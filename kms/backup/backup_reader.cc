#include "kms/backup/backup_reader.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/kdf.h"
#include "kms/backup/backup_format.h"

namespace clavis::kms {
namespace {

namespace fmt = backup_format;

// Reads exactly n bytes, or fails (the stream ended first).
bool ReadExact(std::istream* in, size_t n, std::string* out) {
  out->resize(n);
  if (n == 0) return true;
  in->read(out->data(), static_cast<std::streamsize>(n));
  return static_cast<size_t>(in->gcount()) == n;
}

absl::Status Truncated(absl::string_view where) {
  return absl::DataLossError(absl::StrCat("backup file is truncated: it ends inside ", where));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BackupReader>> BackupReader::Open(std::istream* in,
                                                                 RootKeyProvider* root) {
  std::string magic;
  if (!ReadExact(in, fmt::kMagic.size(), &magic) || magic != fmt::kMagic) {
    return absl::InvalidArgumentError("not a Clavis backup file (it does not start with CLAVISBK)");
  }
  std::string prefix;  // version byte and header length
  if (!ReadExact(in, 5, &prefix)) return Truncated("the header");
  crypto::ByteReader p(prefix);
  uint8_t version = 0;
  uint32_t header_size = 0;
  p.ReadU8(&version);
  p.ReadU32(&header_size);
  if (version != fmt::kVersion) {
    return absl::InvalidArgumentError(absl::StrCat("backup format version ", version,
                                                   " is not supported: this clavisd reads version ",
                                                   fmt::kVersion, " (docs/BACKUP.md)"));
  }
  if (header_size == 0 || header_size > fmt::kMaxHeaderSize) {
    return absl::DataLossError(
        absl::StrCat("backup header is damaged: its length ", header_size, " is out of range"));
  }
  std::string body;
  if (!ReadExact(in, header_size, &body)) return Truncated("the header");

  crypto::ByteReader r(body);
  uint8_t aead_id = 0;
  absl::string_view backup_id, source, wrapped;
  uint64_t created_us = 0;
  if (!r.ReadU8(&aead_id) || !r.ReadBytes(fmt::kBackupIdSize, &backup_id) ||
      !r.ReadU64(&created_us) || !r.ReadU16Prefixed(&source) || !r.ReadU16Prefixed(&wrapped) ||
      r.remaining() != 0) {
    return absl::DataLossError("backup header is damaged: malformed fields");
  }
  if (aead_id != fmt::kAeadAes256Gcm) {
    return absl::DataLossError(
        absl::StrCat("backup header is damaged: unknown chunk algorithm ", aead_id));
  }
  BackupHeader header;
  header.backup_id = std::string(backup_id);
  header.created = absl::FromUnixMicros(static_cast<int64_t>(created_us));
  header.source = std::string(source);

  auto key = root->Unwrap(wrapped, backup_internal::KeyWrapAssociatedData(backup_id));
  if (!key.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot unwrap the backup key with this root key (", root->Describe(),
        "): the backup claims to be made by \"",
        // Not authenticated yet: escaped and cut short for the message.
        absl::CHexEscape(header.source.substr(0, 200)), "\"",
        "; restore with the root key it was made under (or the backup header is damaged)"));
  }
  auto aead = crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, *std::move(key));
  if (!aead.ok()) return aead.status();
  const std::string header_hash = crypto::Sha256(absl::StrCat(magic, prefix, body));
  return std::unique_ptr<BackupReader>(
      new BackupReader(in, *std::move(aead), std::move(header), header_hash));
}

absl::Status BackupReader::ReadChunk() {
  const uint64_t index = next_chunk_;
  std::string frame;
  if (!ReadExact(in_, 5, &frame)) {
    if (frame.empty() || in_->gcount() == 0) {
      return absl::DataLossError(absl::StrCat("backup file is truncated: it ends after chunk ",
                                              index, " without its final chunk"));
    }
    return Truncated(absl::StrCat("chunk ", index));
  }
  crypto::ByteReader f(frame);
  uint8_t flags = 0;
  uint32_t sealed_size = 0;
  f.ReadU8(&flags);
  f.ReadU32(&sealed_size);
  if ((flags & ~fmt::kFlagFinal) != 0) {
    return absl::DataLossError(
        absl::StrCat("backup chunk ", index, " is damaged: unknown flags ", flags));
  }
  if (sealed_size < fmt::kTagSize || sealed_size > fmt::kMaxChunkPlaintext + fmt::kTagSize) {
    return absl::DataLossError(absl::StrCat("backup chunk ", index, " is damaged: its length ",
                                            sealed_size, " is out of range"));
  }
  std::string sealed;
  if (!ReadExact(in_, sealed_size, &sealed)) return Truncated(absl::StrCat("chunk ", index));
  auto plaintext = aead_->Open(backup_internal::ChunkNonce(index), sealed,
                               backup_internal::ChunkAssociatedData(header_hash_, index, flags));
  if (!plaintext.ok()) {
    return absl::DataLossError(absl::StrCat(
        "backup chunk ", index,
        " failed authentication: the file is damaged or was altered (changed bytes, or chunks "
        "dropped, reordered or taken from another backup)"));
  }
  plaintext_ = *std::move(plaintext);
  records_ = crypto::ByteReader(plaintext_);
  final_chunk_read_ = (flags & fmt::kFlagFinal) != 0;
  ++next_chunk_;
  return absl::OkStatus();
}

absl::StatusOr<bool> BackupReader::Next(std::string* key, std::string* value) {
  if (done_) return false;
  while (records_.remaining() == 0) {
    if (final_chunk_read_) {
      return absl::DataLossError("backup is damaged: its final chunk has no end record");
    }
    if (absl::Status s = ReadChunk(); !s.ok()) return s;
  }
  const uint64_t chunk = next_chunk_ - 1;
  auto malformed = [chunk](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("backup chunk ", chunk, " holds a malformed ", what));
  };
  uint8_t type = 0;
  records_.ReadU8(&type);
  if (type == fmt::kRecordEntry) {
    absl::string_view k, v;
    if (!records_.ReadU32Prefixed(&k) || !records_.ReadU32Prefixed(&v)) return malformed("entry");
    if (k.size() > fmt::kMaxKeySize || v.size() > fmt::kMaxValueSize) return malformed("entry");
    key->assign(k.data(), k.size());
    value->assign(v.data(), v.size());
    ++entries_;
    return true;
  }
  if (type != fmt::kRecordEnd) return malformed("record (unknown type)");
  uint64_t count = 0;
  if (!records_.ReadU64(&count) || records_.remaining() != 0 || !final_chunk_read_) {
    return malformed("end record");
  }
  if (count != entries_) {
    return absl::DataLossError(absl::StrCat("backup is damaged: its end record counts ", count,
                                            " entries but it holds ", entries_));
  }
  if (in_->peek() != std::char_traits<char>::eof()) {
    return absl::DataLossError("backup file has data after its final chunk");
  }
  done_ = true;
  return false;
}

}  // namespace clavis::kms
