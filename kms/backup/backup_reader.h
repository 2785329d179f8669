// BackupReader: reads a backup file (docs/BACKUP.md, version 1) written by
// BackupWriter, treating it as hostile input: every length is checked
// before anything is allocated, every chunk is authenticated before any of
// its bytes are used, and the file must end exactly after its final chunk.
//
// Errors, each naming what is wrong and never any key or value bytes:
//  - InvalidArgument: not a backup file (magic), or a format version this
//    code does not read;
//  - FailedPrecondition: the root key cannot unwrap the backup key (another
//    root key, or a damaged header); the message names this root key and
//    the one the backup was made under (their descriptions, not secrets);
//  - DataLoss: truncated, damaged, altered, reordered or extended content.
// Entries returned before an error are not trustworthy as a whole: a caller
// that must not act on a partial backup (restore) keeps what it read
// provisional until Next returns false.
//
// Thread safety: none; one reader is used by one thread.
#ifndef CLAVIS_KMS_BACKUP_BACKUP_READER_H_
#define CLAVIS_KMS_BACKUP_BACKUP_READER_H_

#include <cstdint>
#include <istream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "crypto/aead.h"
#include "crypto/byte_io.h"
#include "kms/backup/backup_writer.h"
#include "kms/root/root_key_provider.h"

namespace clavis::kms {

class BackupReader {
 public:
  // Reads and checks the header from `in` and unwraps the backup key with
  // `root`. `in` must outlive the reader; `root` is only used here.
  static absl::StatusOr<std::unique_ptr<BackupReader>> Open(std::istream* in,
                                                            RootKeyProvider* root);

  const BackupHeader& header() const { return header_; }

  // The next entry, in the order written (the store's key order): true.
  // false once the end record was read, its entry count checked and the
  // input found to end there. Errors as above.
  absl::StatusOr<bool> Next(std::string* key, std::string* value);

  uint64_t entries() const { return entries_; }
  uint64_t chunks() const { return next_chunk_; }

 private:
  BackupReader(std::istream* in, std::unique_ptr<crypto::Aead> aead, BackupHeader header,
               std::string header_hash)
      : in_(in),
        aead_(std::move(aead)),
        header_(std::move(header)),
        header_hash_(std::move(header_hash)) {}

  // Reads, authenticates and decrypts the next chunk into plaintext_.
  absl::Status ReadChunk();

  std::istream* in_;
  std::unique_ptr<crypto::Aead> aead_;
  BackupHeader header_;
  std::string header_hash_;
  std::string plaintext_;                            // the current chunk
  crypto::ByteReader records_{absl::string_view()};  // over plaintext_
  uint64_t next_chunk_ = 0;
  uint64_t entries_ = 0;
  bool final_chunk_read_ = false;
  bool done_ = false;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_BACKUP_BACKUP_READER_H_
