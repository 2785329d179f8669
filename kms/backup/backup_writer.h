// BackupWriter: encodes a stream of store entries as a backup file
// (docs/BACKUP.md, version 1), encrypted and authenticated chunk by chunk
// under a fresh random backup key that is itself wrapped by the root key.
//
// Whoever reads the file needs the same root of trust to unwrap the backup
// key, exactly as for the data directory. Chunk i is sealed with AES-256-GCM
// under nonce (0^32 || i) and associated data binding it to the header, its
// index and whether it is the final chunk, so a changed, dropped, reordered,
// duplicated or truncated chunk fails to open (BackupReader).
//
// Usage: New (writes the header to the sink), Add each entry, Finish (writes
// the final chunk). Nothing written before Finish succeeds is a valid backup.
//
// Thread safety: none; one writer is used by one thread.
#ifndef CLAVIS_KMS_BACKUP_BACKUP_WRITER_H_
#define CLAVIS_KMS_BACKUP_BACKUP_WRITER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crypto/aead.h"
#include "kms/root/root_key_provider.h"

namespace clavis::kms {

// Receives the bytes of the backup file, in order.
using BackupSink = std::function<absl::Status(absl::string_view bytes)>;

// What the header of a backup says (not secret; informational fields are
// authenticated by every chunk).
struct BackupHeader {
  std::string backup_id;  // 16 random bytes
  absl::Time created;
  // Who made it, e.g. "clavisd 0.9.0; root key key-file:... kcv=3f9a1c0e":
  // lets a restore with the wrong root key say which one it needs.
  std::string source;
};

class BackupWriter {
 public:
  // Draws a backup key and id, wraps the key with `root` (which must outlive
  // the writer) and writes the header to `sink`. `source` is at most 1024
  // bytes (InvalidArgument). Errors of `root` or `sink` are returned.
  static absl::StatusOr<std::unique_ptr<BackupWriter>> New(RootKeyProvider* root,
                                                           std::string source, absl::Time created,
                                                           BackupSink sink);

  // Appends one entry. InvalidArgument if the key or value exceeds the
  // format's limits (backup_format.h); sink errors are returned.
  absl::Status Add(absl::string_view key, absl::string_view value);
  // Writes the end record and the final chunk. Nothing may be added after.
  absl::Status Finish();

  const BackupHeader& header() const { return header_; }
  uint64_t entries() const { return entries_; }
  uint64_t bytes_written() const { return bytes_written_; }

 private:
  BackupWriter(std::unique_ptr<crypto::Aead> aead, BackupHeader header, std::string header_hash,
               BackupSink sink)
      : aead_(std::move(aead)),
        header_(std::move(header)),
        header_hash_(std::move(header_hash)),
        sink_(std::move(sink)) {}

  // Seals the pending plaintext as the next chunk and writes its frame.
  absl::Status FlushChunk(bool final);
  absl::Status Write(absl::string_view bytes);

  std::unique_ptr<crypto::Aead> aead_;
  BackupHeader header_;
  std::string header_hash_;  // SHA-256 of the header bytes
  BackupSink sink_;
  std::string pending_;  // plaintext of the chunk being filled
  uint64_t next_chunk_ = 0;
  uint64_t entries_ = 0;
  uint64_t bytes_written_ = 0;
  bool finished_ = false;
};

namespace backup_internal {
// The chunk nonce and associated data of docs/BACKUP.md (shared with the
// reader so both sides compute them one way).
std::string ChunkNonce(uint64_t index);
std::string ChunkAssociatedData(absl::string_view header_hash, uint64_t index, uint8_t flags);
std::string KeyWrapAssociatedData(absl::string_view backup_id);
}  // namespace backup_internal

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_BACKUP_BACKUP_WRITER_H_
