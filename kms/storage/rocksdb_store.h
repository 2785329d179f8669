// RocksDbStore: the embedded, single-node Store backend, one RocksDB database
// in a local directory.
//
// Durability: every write is made with WriteOptions::sync, so the write-ahead
// log is fsynced before Put/Delete/Commit return. Concurrent writers are not
// serialized by this class (except writers of the same keys, see below):
// RocksDB batches them into write groups that share one fsync (group commit).
//
// Compare-and-set: Commit checks its preconditions with reads and then writes,
// so the check and the write must not be separated by another write of the
// same keys. Every write therefore holds the lock stripes (a fixed array of
// mutexes, chosen by key hash) of all the keys it reads or writes, taken in
// ascending stripe order so they cannot deadlock. Writes of unrelated keys
// usually hash to different stripes and go through in parallel.
//
// Crypto-shredding: CommitAndPurge writes the batch and range deletions in one
// atomic RocksDB batch, then flushes the memtable (which makes every older WAL
// file obsolete), force-compacts the touched key range down to the bottommost
// level (which rewrites every SST file holding a value of a touched key, so
// the old values are dropped), and deletes the obsolete files before
// returning. It then checks that every SST file that overlapped the range and
// every non-empty WAL file that existed after the commit is gone from the
// directory, and fails (Internal, "purge incomplete") if not. What is and is
// not guaranteed:
//  - guaranteed: after an OK return no file in the data directory holds an
//    old value of a touched key (data files, WAL, and the MANIFEST, which only
//    records key boundaries, never values);
//  - not guaranteed: that the freed disk blocks are overwritten. Deleting a
//    file unlinks it; the filesystem, SSD wear levelling, or snapshots and
//    backups below it may still keep the bytes, so someone holding a raw
//    disk image and the (still live) root key could unwrap a destroyed key.
//    Closing that gap takes encryption below this layer (e.g. full-disk
//    encryption) or rotating the root key. Process memory (block cache,
//    freed memtables) is not scrubbed either.
//  - Compression is off, so the values are stored as written: they are mostly
//    ciphertext (incompressible), and it keeps the purge verifiable by
//    searching the files for the raw bytes.
//
// Errors: RocksDB statuses map to absl ones in one place (FromRocks):
//  - Corruption -> DataLoss("storage corruption detected in <dir> ...
//    damaged file: 000012.sst ..."), naming the damaged file when RocksDB
//    does and pointing to the recovery (docs/BACKUP.md, "Recovering from
//    storage corruption"). Reads verify block checksums, so damaged data is
//    reported, never served.
//  - No space -> ResourceExhausted("storage full: ...").
//  - A read-only file system -> Unavailable("storage read-only: ...").
//  - Other I/O errors -> Unavailable.
// Messages name the data directory and the operation, never a value.
//
// Write faults and resumption: a write that fails with an I/O error (disk
// full, read-only) puts RocksDB in its error state, in which reads go on but
// every write fails. RocksDB's own recovery from a full disk waits for a
// write buffer's worth (64 MiB) of free space, polls every 5 s and cannot
// recover from a failed WAL write at all; and DB::Resume() after a failed
// WAL write aborts the process in RocksDB 7.8 builds with assertions (as
// Debian's). So this class turns RocksDB's recovery off and recovers
// itself: the first write after a failure, and then at most one write per
// kResumeInterval, checks that the directory takes a small synced file
// (ProbeWritable) and if so closes and reopens the database (replaying the
// WAL, whose torn last record, the failed write, was never acknowledged,
// into memory without flushing it, so the reopen needs little space). If
// that reopen fails it opens the database read-only, so reads go on, and
// retries later. Meanwhile writes fail fast with the first error. So
// writes resume on their own once there is room, without a restart.
// RocksDB's info LOG (in the data directory, so on the same disk) drops the
// lines it cannot write: RocksDB's own LOG writer remembers a failed write
// and asserts on the next line (any thread's: the writer reporting its
// error, a background flush, the close), which aborted the process.
//
// Thread safety: all methods may be called concurrently. The destructor must
// not run concurrently with any other method.
#ifndef CLAVIS_KMS_STORAGE_ROCKSDB_STORE_H_
#define CLAVIS_KMS_STORAGE_ROCKSDB_STORE_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kms/storage/store.h"

namespace rocksdb {
class DB;
class Env;
class Logger;
class Status;
class Statistics;
class WriteBatch;
}  // namespace rocksdb

namespace clavis::kms {

struct RocksDbStoreOptions {
  // The data directory. Created with mode 0700 (with any missing parents) if
  // it does not exist and create_if_missing is set. It must be used by one
  // RocksDbStore at a time: RocksDB locks it (file LOCK), and a second Open,
  // from this process or another, fails with FailedPrecondition.
  std::string path;
  // If false, opening a directory that holds no database is NotFound.
  bool create_if_missing = true;
  // Read every data file whole at Open and check every block checksum
  // (DB::VerifyChecksum), so damage anywhere fails Open with DataLoss
  // instead of surfacing later on the one read that touches it. Costs one
  // sequential read of the store (measured in docs/clavisd.md). Open always
  // checks the WAL it replays and the files' metadata either way.
  bool verify_checksums_at_open = false;
  // Test seam: the RocksDB environment (file system) to use; nullptr is the
  // default one. Must outlive the store.
  rocksdb::Env* env = nullptr;
  // Test seam: called by ExportSnapshot once it has passed the export gate
  // (holding db_mu_ shared), before it reads anything.
  std::function<void()> export_gate_passed_hook;
};

// How well concurrent writes shared WAL syncs (group commit) since the store
// was opened, from RocksDB's statistics tickers.
struct RocksDbWriteStats {
  uint64_t writes = 0;     // writes that went through the WAL (every one synced)
  uint64_t wal_syncs = 0;  // WAL fsyncs they took; writes / wal_syncs: writes per sync
};

class RocksDbStore : public Store {
 public:
  // Opens (or creates) the database. Errors: InvalidArgument for an empty
  // path; NotFound if there is no database and !create_if_missing;
  // FailedPrecondition if the directory is in use by another store; DataLoss
  // if RocksDB detects corruption while opening (a damaged WAL record other
  // than a torn last one, damaged metadata or table file footers, or with
  // verify_checksums_at_open any damaged block); Unavailable or
  // ResourceExhausted for I/O errors (a read-only directory: Unavailable).
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const RocksDbStoreOptions& options);

  // Syncs the WAL and closes the database, releasing the directory lock.
  // Errors are logged, not returned: every write was already durable. Logs
  // (info) "RocksDB store <path>: <W> writes in <S> WAL syncs since open
  // (<W/S> writes per sync)", which bench/storage reads.
  ~RocksDbStore() override;

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override;
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  absl::Status Delete(absl::string_view key) override;
  absl::StatusOr<std::vector<KeyValue>> Scan(absl::string_view prefix,
                                             absl::string_view start_after, size_t limit) override;
  absl::Status Commit(const WriteBatch& batch) override;
  absl::Status CommitAndPurge(const WriteBatch& batch,
                              const std::vector<std::string>& delete_prefixes) override;
  // One iterator (an implicit point-in-time view) walked from the first key
  // to the last, with checksums verified, holding pin_mu_ shared throughout:
  // a concurrent purge waits for it at the export gate, not on pin_mu_, so
  // other readers are not held up meanwhile (see export_gate_mu_).
  absl::Status ExportSnapshot(const ExportVisitor& visit) override;

  const std::string& path() const { return path_; }
  // Counters since Open (cheap; any thread).
  RocksDbWriteStats write_stats() const;

 private:
  static constexpr size_t kNumStripes = 256;
  // At most one DB::Resume() attempt this often while writes fail.
  static constexpr absl::Duration kResumeInterval = absl::Seconds(1);
  static constexpr size_t kProbeBytes = 256 << 10;
  // From this many preconditions on, Commit checks them with one iterator.
  static constexpr size_t kIteratorCheckThreshold = 16;
  class StripeLocks;

  RocksDbStore(RocksDbStoreOptions options, std::unique_ptr<rocksdb::DB> db,
               std::shared_ptr<rocksdb::Statistics> statistics,
               std::unique_ptr<rocksdb::Env> info_log_env,
               std::shared_ptr<rocksdb::Logger> info_log);

  // Get without taking pin_mu_; the caller holds it (shared is enough).
  absl::StatusOr<std::optional<std::string>> GetPinned(absl::string_view key)
      ABSL_SHARED_LOCKS_REQUIRED(pin_mu_);
  // Returns Aborted for the first precondition of `batch` that does not hold.
  // The caller holds the stripes of every precondition key.
  absl::Status CheckPreconditions(const WriteBatch& batch);
  // Appends a deletion of every key under `prefix` to `out`. For a prefix
  // without a finite upper bound (empty or all 0xff) it reads the last key,
  // so the caller must hold every stripe to keep a larger key from appearing.
  absl::Status AppendPrefixDeletion(const std::string& prefix, rocksdb::WriteBatch* out);
  // db_->Write with sync, mapped to an absl status. Resumes the database
  // first if an earlier write failed (see the class comment).
  absl::Status WriteSynced(rocksdb::WriteBatch* batch, absl::string_view what);
  // Maps `s` and, if it is an I/O error, remembers that RocksDB may now be in
  // its background-error state, for MaybeResume.
  absl::Status WriteError(const rocksdb::Status& s, absl::string_view what);
  // If a write failed since writes last worked, and no attempt was made in
  // the last kResumeInterval: DB::Resume(), or if RocksDB deems the error
  // fatal and the directory takes writes again (ProbeWritable), closes and
  // reopens the database. OK if writes may go ahead; otherwise the error to
  // return for them (the last failure). Called before any lock is taken.
  absl::Status RecoverWrites() ABSL_LOCKS_EXCLUDED(resume_mu_, db_mu_);
  // Writes, syncs and deletes a kProbeBytes file in the data directory.
  absl::Status ProbeWritable();
  // The error for calls while db_ is null (a reopen failed).
  absl::Status Closed() const;
  absl::Status LastWriteError() ABSL_LOCKS_EXCLUDED(error_mu_);
  // Clears the write-failure state; returns the error it held.
  absl::Status ClearWriteError() ABSL_LOCKS_EXCLUDED(error_mu_);
  // The purge step of CommitAndPurge, after the commit: drops every stored
  // old version of the keys in [begin, end) (end nullopt: unbounded) from the
  // files and checks that the files that held them are gone.
  absl::Status PurgeRange(const std::string& begin, const std::optional<std::string>& end);

  static size_t StripeOf(absl::string_view key);

  const std::string path_;
  const RocksDbStoreOptions options_;
  // Tickers only (no histograms or timers), for write_stats(); kept across
  // reopens.
  const std::shared_ptr<rocksdb::Statistics> statistics_;
  // RocksDB's info LOG (the file LOG in path_), kept across reopens, and the
  // Env it writes through. A failed write to it drops the line instead of
  // leaving RocksDB's writer in an error state that aborts the process on
  // the next line (see the class comment). Declared before db_: they
  // outlive it.
  const std::unique_ptr<rocksdb::Env> info_log_env_;
  const std::shared_ptr<rocksdb::Logger> info_log_;

  // Every public method holds db_mu_ shared while it uses db_ (taken first,
  // before any other lock of this class and before the export gate: a
  // waiting RecoverWrites blocks new shared holders, so waiting at the gate
  // and then for db_mu_ could deadlock with a purge); RecoverWrites holds it exclusively
  // to close and reopen the database, which replaces db_ (read-only if the
  // read-write reopen failed; null if that failed too: calls then return
  // Closed()). Not annotated GUARDED_BY:
  // the private helpers run under their caller's shared hold.
  absl::Mutex db_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  // db_ was opened read-only because the read-write reopen failed: reads go
  // on, writes fail with the last write error until a reopen succeeds.
  // Written under db_mu_ exclusive.
  bool read_only_ = false;

  // See the class comment. Stripe i guards no data, it serializes the
  // read-check-write sequences on keys that hash to i. std::mutex, not
  // absl::Mutex: a large batch takes most of them at once, and absl's
  // deadlock detector (on in some builds) costs time per lock held.
  std::array<std::mutex, kNumStripes> stripes_;

  // Readers (Get, Scan, precondition checks) hold this shared while they use
  // a RocksDB read view, which pins the SST files it was made from. The purge
  // step holds it exclusively while it deletes obsolete files, so no reader
  // can be pinning a file that still holds a purged value. Writers don't take
  // it: writes pin no files.
  absl::Mutex pin_mu_;

  // Keeps a purge from queueing on pin_mu_ while an export holds it shared:
  // absl::Mutex favours a waiting writer, so a queued purge would block
  // every new reader (and, through CheckPreconditions, every Commit's
  // stripes) until the whole export ended. A purge instead waits here until
  // no export is running, and only then takes pin_mu_; an export that
  // starts while a purge waits waits for that purge to finish, so neither
  // starves the other. Leaf lock: held only to update the counters.
  std::mutex export_gate_mu_;
  std::condition_variable export_gate_cv_;
  int active_exports_ = 0;  // Guarded by export_gate_mu_.
  int purges_waiting_ = 0;  // Guarded by export_gate_mu_.

  // Write-failure state (see the class comment). write_failed_ is read
  // without the mutex on every write (the common case: false).
  std::atomic<bool> write_failed_{false};
  // Serializes recovery attempts; taken before db_mu_.
  absl::Mutex resume_mu_;
  absl::Time last_resume_attempt_ ABSL_GUARDED_BY(resume_mu_) = absl::InfinitePast();
  // Leaf lock: writers set the error under db_mu_ shared.
  absl::Mutex error_mu_;
  absl::Status last_write_error_ ABSL_GUARDED_BY(error_mu_);
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_STORAGE_ROCKSDB_STORE_H_
