// BackupMaker: an online, consistent, encrypted backup of a whole Store
// (every tenant), for the Operations.CreateBackup RPC.
//
// Prepare() exports the store from one point-in-time view
// (Store::ExportSnapshot) through a BackupWriter into a spool file, then
// returns it ready to stream. Spooling first keeps the store's view (which
// holds off crypto-shredding purges, see store.h) as short as the local
// disk allows, however slow the client who downloads it; and the caller
// knows the backup is complete, and its size, before sending the first byte.
//
// The spool file is created in `spool_dir` (the data directory: same
// filesystem permissions) and unlinked at once, so it never has a name and
// disappears when the PreparedBackup is destroyed or the process dies. It
// holds exactly the encrypted backup file, never plaintext.
//
// One backup at a time per maker: from Prepare until its PreparedBackup is
// destroyed (the spool file is gone), another Prepare fails at once with
// ResourceExhausted. That bounds the spool space and the store exports to
// one backup's worth, whoever asks.
//
// Thread safety: Prepare may be called concurrently; each PreparedBackup is
// used by one thread.
#ifndef CLAVIS_KMS_BACKUP_BACKUP_MAKER_H_
#define CLAVIS_KMS_BACKUP_BACKUP_MAKER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kms/backup/backup_writer.h"
#include "kms/keys/clock.h"
#include "kms/root/root_key_provider.h"
#include "kms/storage/store.h"

namespace clavis::kms {

// A finished backup waiting in its spool file.
class PreparedBackup {
 public:
  ~PreparedBackup();  // closes (and so deletes) the spool file; frees the maker
  PreparedBackup(const PreparedBackup&) = delete;
  PreparedBackup& operator=(const PreparedBackup&) = delete;

  const BackupHeader& header() const { return header_; }
  uint64_t entries() const { return entries_; }
  uint64_t size() const { return size_; }  // bytes of the backup file

  // Hands the whole backup file to `emit` in order, in pieces of at most
  // `piece_size` bytes. Stops at (and returns) the first error of `emit`;
  // Unavailable if the spool cannot be read.
  absl::Status Stream(const std::function<absl::Status(absl::string_view)>& emit,
                      size_t piece_size = 1 << 20) const;

 private:
  friend class BackupMaker;
  PreparedBackup(int fd, BackupHeader header, uint64_t entries, uint64_t size,
                 std::atomic<bool>* running)
      : fd_(fd), header_(std::move(header)), entries_(entries), size_(size), running_(running) {}

  int fd_;
  BackupHeader header_;
  uint64_t entries_;
  uint64_t size_;
  std::atomic<bool>* running_;  // The maker's; cleared by the destructor.
};

class BackupMaker {
 public:
  // All pointers must outlive the maker, and the maker every PreparedBackup
  // it made. `source` goes into every backup's header (who made it and under
  // which root key; docs/BACKUP.md).
  BackupMaker(Store* store, RootKeyProvider* root, const Clock* clock, std::string spool_dir,
              std::string source);

  // Exports the store into a new spooled backup. `cancelled` (if set) is
  // polled for every entry exported; once it returns true the export stops
  // and Prepare returns Cancelled, leaving nothing behind. Errors:
  // ResourceExhausted("a backup is already running; ...") while another
  // backup of this maker is alive (see above), Cancelled, the store's
  // (DataLoss for corruption found on the way, ...), the root key's, and
  // ResourceExhausted/Unavailable if the spool cannot be written.
  absl::StatusOr<std::unique_ptr<PreparedBackup>> Prepare(
      const std::function<bool()>& cancelled = nullptr);

 private:
  Store* const store_;
  RootKeyProvider* const root_;
  const Clock* const clock_;
  const std::string spool_dir_;
  const std::string source_;
  // True from a Prepare that got through until its PreparedBackup (or its
  // failure) is gone.
  std::atomic<bool> running_{false};
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_BACKUP_BACKUP_MAKER_H_
