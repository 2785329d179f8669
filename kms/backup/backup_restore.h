// RestoreBackup: turns a backup file (docs/BACKUP.md) back into a RocksDB
// store, offline, for a clavisd that is not running.
//
// All or nothing: entries are written into a temporary store beside the
// target (`<db_path>.restore-tmp`), every chunk is authenticated before its
// entries are used, and only once the whole file has been read and checked
// (end record, entry count, nothing after the final chunk) is the temporary
// store closed (flushed and synced) and renamed to `db_path` (then the parent
// directory is synced). On any error the temporary store is removed and
// `db_path` was never created.
//
// Thread safety: one restore per target at a time (the caller's job: the
// target's directory is not locked before the rename).
#ifndef CLAVIS_KMS_BACKUP_BACKUP_RESTORE_H_
#define CLAVIS_KMS_BACKUP_BACKUP_RESTORE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "kms/backup/backup_writer.h"
#include "kms/root/root_key_provider.h"

namespace clavis::kms {

struct RestoreResult {
  BackupHeader header;
  uint64_t entries = 0;
  uint64_t chunks = 0;
};

// Restores `backup_path` into a new RocksDB store at `db_path`, unwrapping
// the backup key with `root`. Errors: FailedPrecondition if `db_path`
// already exists (a restore never overwrites or merges); NotFound if the
// backup file cannot be opened; BackupReader's errors for a bad file or
// the wrong root key; storage errors writing the new store.
absl::StatusOr<RestoreResult> RestoreBackup(const std::string& backup_path, RootKeyProvider* root,
                                            const std::string& db_path);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_BACKUP_BACKUP_RESTORE_H_
