#include "kms/backup/backup_writer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/byte_io.h"
#include "crypto/kdf.h"
#include "crypto/random.h"
#include "kms/backup/backup_format.h"

namespace clavis::kms {
namespace backup_internal {

std::string ChunkNonce(uint64_t index) {
  std::string nonce;
  crypto::ByteWriter w(&nonce);
  w.U32(0);
  w.U64(index);
  return nonce;
}

std::string ChunkAssociatedData(absl::string_view header_hash, uint64_t index, uint8_t flags) {
  std::string aad(backup_format::kChunkLabel);
  crypto::ByteWriter w(&aad);
  w.Bytes(header_hash);
  w.U64(index);
  w.U8(flags);
  return aad;
}

std::string KeyWrapAssociatedData(absl::string_view backup_id) {
  return absl::StrCat(backup_format::kKeyWrapLabel, backup_id);
}

}  // namespace backup_internal

namespace {
constexpr size_t kMaxSourceSize = 1024;
}  // namespace

absl::StatusOr<std::unique_ptr<BackupWriter>> BackupWriter::New(RootKeyProvider* root,
                                                                std::string source,
                                                                absl::Time created,
                                                                BackupSink sink) {
  if (source.size() > kMaxSourceSize) {
    return absl::InvalidArgumentError("backup source description longer than 1024 bytes");
  }
  BackupHeader header;
  header.backup_id = crypto::RandomBytes(backup_format::kBackupIdSize);
  header.created = created;
  header.source = std::move(source);

  // A fresh key per backup: the chunk counter never repeats under it, so
  // counter nonces are safe.
  crypto::SecretBytes key = crypto::RandomSecret(backup_format::kBackupKeySize);
  auto wrapped = root->Wrap(key, backup_internal::KeyWrapAssociatedData(header.backup_id));
  if (!wrapped.ok()) return wrapped.status();
  if (wrapped->size() > 0xffff) return absl::InternalError("root-wrapped backup key too long");
  auto aead = crypto::Aead::New(crypto::AeadAlgorithm::kAes256Gcm, std::move(key));
  if (!aead.ok()) return aead.status();

  std::string body;
  crypto::ByteWriter b(&body);
  b.U8(backup_format::kAeadAes256Gcm);
  b.Bytes(header.backup_id);
  b.U64(static_cast<uint64_t>(absl::ToUnixMicros(created)));
  b.U16Prefixed(header.source);
  b.U16Prefixed(*wrapped);
  std::string bytes(backup_format::kMagic);
  crypto::ByteWriter h(&bytes);
  h.U8(backup_format::kVersion);
  h.U32Prefixed(body);

  std::unique_ptr<BackupWriter> writer(new BackupWriter(*std::move(aead), std::move(header),
                                                        crypto::Sha256(bytes), std::move(sink)));
  if (absl::Status s = writer->Write(bytes); !s.ok()) return s;
  return writer;
}

absl::Status BackupWriter::Write(absl::string_view bytes) {
  if (absl::Status s = sink_(bytes); !s.ok()) return s;
  bytes_written_ += bytes.size();
  return absl::OkStatus();
}

absl::Status BackupWriter::Add(absl::string_view key, absl::string_view value) {
  if (finished_) return absl::FailedPreconditionError("backup already finished");
  if (key.size() > backup_format::kMaxKeySize || value.size() > backup_format::kMaxValueSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "store entry too large for a backup (key ", key.size(), " bytes, value ", value.size(),
        " bytes; limits ", backup_format::kMaxKeySize, " and ", backup_format::kMaxValueSize, ")"));
  }
  const size_t record_size = 1 + 4 + key.size() + 4 + value.size();
  if (!pending_.empty() && pending_.size() + record_size > backup_format::kTargetChunkPlaintext) {
    if (absl::Status s = FlushChunk(/*final=*/false); !s.ok()) return s;
  }
  crypto::ByteWriter w(&pending_);
  w.U8(backup_format::kRecordEntry);
  w.U32Prefixed(key);
  w.U32Prefixed(value);
  ++entries_;
  return absl::OkStatus();
}

absl::Status BackupWriter::Finish() {
  if (finished_) return absl::FailedPreconditionError("backup already finished");
  // The end record must share the final chunk: keep the chunk within limits.
  if (pending_.size() + 9 > backup_format::kMaxChunkPlaintext) {
    if (absl::Status s = FlushChunk(/*final=*/false); !s.ok()) return s;
  }
  crypto::ByteWriter w(&pending_);
  w.U8(backup_format::kRecordEnd);
  w.U64(entries_);
  finished_ = true;
  return FlushChunk(/*final=*/true);
}

absl::Status BackupWriter::FlushChunk(bool final) {
  const uint8_t flags = final ? backup_format::kFlagFinal : 0;
  auto sealed = aead_->Seal(backup_internal::ChunkNonce(next_chunk_), pending_,
                            backup_internal::ChunkAssociatedData(header_hash_, next_chunk_, flags));
  if (!sealed.ok()) return sealed.status();
  std::string frame;
  crypto::ByteWriter w(&frame);
  w.U8(flags);
  w.U32(static_cast<uint32_t>(sealed->size()));
  if (absl::Status s = Write(frame); !s.ok()) return s;
  if (absl::Status s = Write(*sealed); !s.ok()) return s;
  ++next_chunk_;
  pending_.clear();
  return absl::OkStatus();
}

}  // namespace clavis::kms
