#include "kms/backup/backup_restore.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "kms/backup/backup_reader.h"
#include "kms/storage/rocksdb_store.h"
#include "kms/storage/store.h"

namespace clavis::kms {
namespace {

// Entries per synced batch while writing the temporary store.
constexpr size_t kBatchEntries = 1000;
constexpr size_t kBatchBytes = 4 << 20;

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open ", dir, " to sync it"));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("cannot sync directory ", dir));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RestoreResult> RestoreBackup(const std::string& backup_path, RootKeyProvider* root,
                                            const std::string& db_path) {
  std::error_code ec;
  if (std::filesystem::exists(db_path, ec) || ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to restore into ", db_path,
                     ": it already exists (restore into a new, empty "
                     "data directory; a restore never overwrites or merges)"));
  }
  std::ifstream in(backup_path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read backup file ", backup_path));
  auto reader = BackupReader::Open(&in, root);
  if (!reader.ok()) return reader.status();

  // Left over by an interrupted restore: it never became the store.
  const std::string tmp = db_path + ".restore-tmp";
  std::filesystem::remove_all(tmp, ec);
  bool renamed = false;
  absl::Cleanup remove_tmp = [&] {
    if (!renamed) std::filesystem::remove_all(tmp, ec);
  };

  RestoreResult result;
  {
    RocksDbStoreOptions options;
    options.path = tmp;
    options.create_if_missing = true;
    auto store = RocksDbStore::Open(options);
    if (!store.ok()) return store.status();
    WriteBatch batch;
    size_t batch_entries = 0, batch_bytes = 0;
    auto commit = [&]() -> absl::Status {
      if (batch_entries == 0) return absl::OkStatus();
      absl::Status s = (*store)->Commit(batch);
      batch = WriteBatch();
      batch_entries = batch_bytes = 0;
      return s;
    };
    std::string key, value;
    while (true) {
      absl::StatusOr<bool> next = (*reader)->Next(&key, &value);
      if (!next.ok()) return next.status();
      if (!*next) break;
      batch_bytes += key.size() + value.size();
      batch.Put(key, std::move(value));
      value = std::string();
      if (++batch_entries == kBatchEntries || batch_bytes >= kBatchBytes) {
        if (absl::Status s = commit(); !s.ok()) return s;
      }
    }
    if (absl::Status s = commit(); !s.ok()) return s;
    result.header = (*reader)->header();
    result.entries = (*reader)->entries();
    result.chunks = (*reader)->chunks();
    // Closing flushes the memtable into synced SST files: the restored
    // store opens without a WAL to replay.
  }
  std::filesystem::rename(tmp, db_path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", tmp, " to ", db_path, ": ", ec.message()));
  }
  renamed = true;
  const std::string parent = std::filesystem::path(db_path).parent_path().string();
  if (absl::Status s = SyncDirectory(parent.empty() ? "." : parent); !s.ok()) return s;
  return result;
}

}  // namespace clavis::kms
