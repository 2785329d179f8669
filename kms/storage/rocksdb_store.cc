#include "kms/storage/rocksdb_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <system_error>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "kms/storage/store_util.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"
#include "rocksdb/iterator.h"
#include "rocksdb/listener.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/statistics.h"
#include "rocksdb/status.h"
#include "rocksdb/transaction_log.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {
namespace {

// Runs a callable when the scope ends, however it ends.
template <typename F>
class OnExit {
 public:
  explicit OnExit(F f) : f_(std::move(f)) {}
  ~OnExit() { f_(); }
  OnExit(const OnExit&) = delete;
  OnExit& operator=(const OnExit&) = delete;

 private:
  F f_;
};

using storage_internal::PrefixSuccessor;

rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
absl::string_view ToView(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

// Where an operator finds what to do about damaged storage.
constexpr char kCorruptionHelp[] =
    "the data cannot be trusted; stop clavisd and restore the latest backup (docs/BACKUP.md, "
    "\"Recovering from storage corruption\")";

// The RocksDB file a status message names ("/x/db/000012.sst" -> "000012.sst",
// also .log, MANIFEST-000005, OPTIONS-..., CURRENT), or "" if none.
std::string DamagedFile(absl::string_view message) {
  static constexpr absl::string_view kKinds[] = {".sst", ".log", ".blob"};
  for (absl::string_view kind : kKinds) {
    for (size_t at = message.find(kind); at != absl::string_view::npos;
         at = message.find(kind, at + 1)) {
      size_t begin = at;
      while (begin > 0 && absl::ascii_isdigit(message[begin - 1])) --begin;
      if (begin < at) return std::string(message.substr(begin, at + kind.size() - begin));
    }
  }
  for (absl::string_view prefix : {"MANIFEST-", "OPTIONS-"}) {
    if (size_t at = message.find(prefix); at != absl::string_view::npos) {
      size_t end = at + prefix.size();
      while (end < message.size() && absl::ascii_isdigit(message[end])) ++end;
      return std::string(message.substr(at, end - at));
    }
  }
  if (absl::StrContains(message, "CURRENT")) return "CURRENT";
  return "";
}

bool IsReadOnlyFileSystem(const rocksdb::Status& s) {
  return s.IsIOError() && absl::StrContains(s.ToString(), std::strerror(EROFS));
}

// RocksDB's Corruption status for a damaged WAL record says only "checksum
// mismatch"; its info LOG names the file ("/x/db/000004.log: dropping 32
// bytes; Corruption: ..."). The last such file named there, or "".
std::string DamagedFileFromInfoLog(const std::string& path) {
  std::ifstream in(path + "/LOG");
  std::string line;
  std::string found;
  while (std::getline(in, line)) {
    if (absl::StrContains(line, "Corruption") || absl::StrContains(line, ": dropping ")) {
      if (std::string file = DamagedFile(line); !file.empty()) found = std::move(file);
    }
  }
  return found;
}

// Maps a RocksDB status to an absl one whose message says where (the data
// directory) and during what the error happened. Messages carry RocksDB's
// text, which names files and offsets, never keys' values.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view path, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string detail = s.ToString();
  if (s.IsCorruption()) {
    const std::string file = DamagedFile(detail);
    return absl::DataLossError(
        absl::StrCat("storage corruption detected in ", path, " while ", what,
                     file.empty() ? "" : absl::StrCat(" (damaged file: ", file, ")"), ": ", detail,
                     "; ", kCorruptionHelp));
  }
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("storage full: no space left on the device of ", path, " while ", what,
                     "; writes resume by themselves once space is freed (reads go on): ", detail));
  }
  if (s.IsMemoryLimit()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memory limit reached in ", path, " while ", what, ": ", detail));
  }
  if (IsReadOnlyFileSystem(s)) {
    return absl::UnavailableError(
        absl::StrCat("storage read-only: ", path, " is on a read-only file system while ", what,
                     "; writes fail until it is writable again (reads go on): ", detail));
  }
  if (s.IsIOError()) {
    return absl::UnavailableError(
        absl::StrCat("I/O error in ", path, " while ", what, ": ", detail));
  }
  const std::string message = absl::StrCat("storage ", path, " failed while ", what, ": ", detail);
  if (s.IsShutdownInProgress() || s.IsBusy() || s.IsTryAgain() || s.IsIncomplete()) {
    return absl::UnavailableError(message);
  }
  if (s.IsTimedOut()) return absl::DeadlineExceededError(message);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (s.IsNotSupported()) return absl::UnimplementedError(message);
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsAborted()) return absl::AbortedError(message);
  return absl::InternalError(message);
}

// Turns off RocksDB's automatic recovery from a full disk: it waits for a
// write buffer's worth (64 MiB) of free space, and while it waits DB::Resume()
// answers Busy. RocksDbStore resumes by itself instead (MaybeResume).
class NoAutoRecovery : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/, rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }
};

// RocksDB reports a LOCK file held by another process ("While lock file") or
// by another DB object in this process ("lock hold by current process") as an
// IOError; only the message tells it apart from other I/O errors.
bool IsDirectoryLockedError(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string message = s.ToString();
  return absl::StrContains(message, "lock hold by current process") ||
         absl::StrContains(message, "While lock file");
}

// mkdir -p with mode 0700 for every directory it creates: the data directory
// holds (wrapped) key material and is nobody else's business.
absl::Status CreateDirectories(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path target = std::filesystem::absolute(path, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad data directory ", path));
  std::filesystem::path current;
  for (const std::filesystem::path& part : target) {
    current /= part;
    // Existing components are left as they are (and mkdir on them could
    // fail with EACCES or EROFS instead of EEXIST).
    if (std::filesystem::exists(current, ec)) continue;
    if (::mkdir(current.c_str(), 0700) != 0 && errno != EEXIST) {
      const int err = errno;
      const std::string message =
          absl::StrCat("cannot create data directory ", current.string(), ": ", std::strerror(err));
      if (err == ENOSPC) return absl::ResourceExhaustedError(message);
      if (err == EACCES || err == EPERM || err == EROFS) {
        return absl::PermissionDeniedError(message);
      }
      if (err == EIO) return absl::UnavailableError(message);
      return absl::FailedPreconditionError(message);  // ENOENT, ENOTDIR, ELOOP...
    }
  }
  if (!std::filesystem::is_directory(target, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", path, " exists but is not a directory"));
  }
  return absl::OkStatus();
}

// RocksDB's info LOG (in the data directory, so on the disk that fills up)
// must never fail a write. RocksDB writes it through a WritableFileWriter,
// which remembers a failed write, and in 7.8 builds with assertions (as
// Debian's) the next LOG line then aborts the process (`Assertion
// sync_without_flush_called_' in WritableFileWriter::Append): any thread can
// write that line, a writer reporting its own error, a background flush, a
// close. So the LOG's file drops what it cannot write instead of failing,
// and the store warns (once per outage) that LOG lines are being lost.
class NeverFailingLogFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  NeverFailingLogFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::string name,
                      std::shared_ptr<std::atomic<bool>> failing)
      : rocksdb::FSWritableFileOwnerWrapper(std::move(file)),
        name_(std::move(name)),
        failing_(std::move(failing)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->Append(data, options, dbg), /*wrote=*/!data.empty());
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->Append(data, options, info, dbg), /*wrote=*/!data.empty());
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->PositionedAppend(data, offset, options, dbg),
                    /*wrote=*/!data.empty());
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->PositionedAppend(data, offset, options, info, dbg),
                    /*wrote=*/!data.empty());
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->Truncate(size, options, dbg));
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->Close(options, dbg));
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->Flush(options, dbg));
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->Sync(options, dbg));
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->Fsync(options, dbg));
  }
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->RangeSync(offset, nbytes, options, dbg));
  }
  rocksdb::IOStatus Allocate(uint64_t offset, uint64_t len, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    return Tolerate(target()->Allocate(offset, len, options, dbg));
  }

 private:
  // `wrote`: the call wrote bytes, so success means the LOG works again.
  rocksdb::IOStatus Tolerate(rocksdb::IOStatus s, bool wrote = false) {
    if (s.ok()) {
      if (wrote) failing_->store(false);
    } else if (!failing_->exchange(true)) {
      spdlog::warn("RocksDB info log {}: lines are dropped until it can be written again: {}",
                   name_, s.ToString());
    }
    return rocksdb::IOStatus::OK();
  }

  const std::string name_;
  const std::shared_ptr<std::atomic<bool>> failing_;
};

// The file system of the info LOG only (never of data files): the given one,
// with every writable file a NeverFailingLogFile, and loggers made over such
// a file (the default file system makes its own, out of this one's reach).
class InfoLogFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit InfoLogFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : rocksdb::FileSystemWrapper(base) {}
  const char* Name() const override { return "ClavisInfoLogFileSystem"; }

  // The Env whose file system this is; set before any logger is made.
  void set_env(rocksdb::Env* env) { env_ = env; }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, options, &file, dbg);
    if (s.ok()) *r = std::make_unique<NeverFailingLogFile>(std::move(file), f, failing_);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, options, &file, dbg);
    if (s.ok()) *r = std::make_unique<NeverFailingLogFile>(std::move(file), f, failing_);
    return s;
  }
  rocksdb::IOStatus NewLogger(const std::string& f, const rocksdb::IOOptions& /*options*/,
                              std::shared_ptr<rocksdb::Logger>* r,
                              rocksdb::IODebugContext* /*dbg*/) override {
    // RocksDB's own logger, writing through NewWritableFile above.
    return rocksdb::status_to_io_status(rocksdb::NewEnvLogger(f, env_, r));
  }

 private:
  rocksdb::Env* env_ = nullptr;
  const std::shared_ptr<std::atomic<bool>> failing_ = std::make_shared<std::atomic<bool>>(false);
};

// Discards every line: the info log when no LOG file could be made.
class DiscardingLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

rocksdb::Options MakeRocksOptions(const RocksDbStoreOptions& store_options,
                                  std::shared_ptr<rocksdb::Logger> info_log) {
  rocksdb::Options options;
  options.create_if_missing = store_options.create_if_missing;
  // Fail (DataLoss) rather than serve or silently skip damaged data.
  options.paranoid_checks = true;
  // A crash can only tear the WAL record of a write that was never
  // acknowledged (every write is synced), so tolerate an incomplete last
  // record but report any other WAL damage as corruption. The default
  // (point-in-time recovery) would silently drop every acknowledged write
  // after a damaged record.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  // Values are mostly ciphertext, which does not compress; storing them as
  // written also lets tests prove a purge by searching the files for them.
  options.compression = rocksdb::kNoCompression;
  options.bottommost_compression = rocksdb::kDisableCompressionOption;
  // Crypto-shredding depends on WAL files being deleted, not archived or
  // reused, as soon as their memtables are flushed.
  options.WAL_ttl_seconds = 0;
  options.WAL_size_limit_MB = 0;
  options.recycle_log_file_num = 0;
  // RocksDB flushes at close only data written without the WAL (none
  // here); the destructor flushes explicitly so that the next open has no
  // WAL to replay.
  options.avoid_flush_during_shutdown = false;
  // RocksDB's own info LOG, which must not abort the process when the disk
  // is full (see NeverFailingLogFile); made by OpenInfoLog.
  options.info_log = std::move(info_log);
  options.listeners.push_back(std::make_shared<NoAutoRecovery>());
  if (store_options.env != nullptr) options.env = store_options.env;
  return options;
}

// RocksDB's info LOG for the database in `path` (the file LOG there, rolled
// like RocksDB rolls its own), through an InfoLogFileSystem over the store's
// file system. `log_env` receives the Env the logger uses, which must
// outlive it. A logger that discards every line if no LOG can be made
// (RocksDB would then run without one, too).
std::shared_ptr<rocksdb::Logger> OpenInfoLog(const RocksDbStoreOptions& store_options,
                                             std::unique_ptr<rocksdb::Env>* log_env) {
  rocksdb::Env* base = store_options.env != nullptr ? store_options.env : rocksdb::Env::Default();
  auto fs = std::make_shared<InfoLogFileSystem>(base->GetFileSystem());
  *log_env = rocksdb::NewCompositeEnv(fs);
  fs->set_env(log_env->get());
  rocksdb::DBOptions options;
  options.env = log_env->get();
  // Bound the disk space of the info LOG files.
  options.max_log_file_size = 16 << 20;
  options.keep_log_file_num = 10;
  std::shared_ptr<rocksdb::Logger> logger;
  if (rocksdb::Status s = rocksdb::CreateLoggerFromOptions(store_options.path, options, &logger);
      !s.ok() || logger == nullptr) {
    spdlog::warn("RocksDB store {}: no info log: {}", store_options.path, s.ToString());
    return std::make_shared<DiscardingLogger>();
  }
  return logger;
}

}  // namespace

// Holds a set of lock stripes for its lifetime. The set is only known at run
// time, which the static thread-safety analysis cannot follow.
class RocksDbStore::StripeLocks {
 public:
  StripeLocks(std::array<std::mutex, kNumStripes>& stripes,
              std::vector<size_t> indices) ABSL_NO_THREAD_SAFETY_ANALYSIS
      : stripes_(stripes),
        indices_(std::move(indices)) {
    // One global order (ascending index) for every locker: no deadlock.
    std::sort(indices_.begin(), indices_.end());
    indices_.erase(std::unique(indices_.begin(), indices_.end()), indices_.end());
    for (size_t i : indices_) stripes_[i].lock();
  }
  ~StripeLocks() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (auto it = indices_.rbegin(); it != indices_.rend(); ++it) stripes_[*it].unlock();
  }
  StripeLocks(const StripeLocks&) = delete;
  StripeLocks& operator=(const StripeLocks&) = delete;

  static std::vector<size_t> ForBatch(const WriteBatch& batch) {
    std::vector<size_t> indices;
    indices.reserve(batch.preconditions().size() + batch.operations().size());
    for (const auto& precondition : batch.preconditions()) {
      indices.push_back(StripeOf(precondition.key));
    }
    for (const auto& operation : batch.operations()) indices.push_back(StripeOf(operation.key));
    return indices;
  }
  static std::vector<size_t> All() {
    std::vector<size_t> indices(kNumStripes);
    for (size_t i = 0; i < kNumStripes; ++i) indices[i] = i;
    return indices;
  }

 private:
  std::array<std::mutex, kNumStripes>& stripes_;
  std::vector<size_t> indices_;
};

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(
    const RocksDbStoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("RocksDbStore: empty data path");
  const std::string& path = options.path;
  std::error_code ec;
  if (options.create_if_missing) {
    if (absl::Status created = CreateDirectories(path); !created.ok()) return created;
  } else if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec)) {
    return absl::NotFoundError(
        absl::StrCat("no database in ", path, " (and create_if_missing is false)"));
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    spdlog::warn("data directory {} is accessible to other users (mode {:o}); expected 0700", path,
                 st.st_mode & 0777);
  }

  std::unique_ptr<rocksdb::Env> info_log_env;
  std::shared_ptr<rocksdb::Logger> info_log = OpenInfoLog(options, &info_log_env);
  rocksdb::Options rocks_options = MakeRocksOptions(options, info_log);
  // Write-group and sync counts for write_stats(); tickers are per-core
  // counters, histograms and timers (the costly part) stay off.
  rocks_options.statistics = rocksdb::CreateDBStatistics();
  rocks_options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocks_options, path, &raw_db);
  if (IsDirectoryLockedError(s)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data directory ", path,
        " is in use by another process (or another open store in this process): ", s.ToString()));
  }
  if (s.IsCorruption() && DamagedFile(s.ToString()).empty()) {
    info_log->Flush();
    if (const std::string file = DamagedFileFromInfoLog(path); !file.empty()) {
      return FromRocks(rocksdb::Status::Corruption(absl::StrCat("in ", file, ": ", s.getState())),
                       path, "opening the database (replaying the write-ahead log)");
    }
  }
  if (!s.ok()) return FromRocks(s, path, "opening the database");
  std::unique_ptr<rocksdb::DB> db(raw_db);
  if (options.verify_checksums_at_open) {
    const absl::Time start = absl::Now();
    if (rocksdb::Status verified = db->VerifyChecksum(); !verified.ok()) {
      return FromRocks(verified, path, "verifying the checksums of every data file at start-up");
    }
    spdlog::info("RocksDB store {}: every data file checksum verified in {}", path,
                 absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))));
  }
  spdlog::info("opened RocksDB store in {}", path);
  return std::unique_ptr<RocksDbStore>(
      new RocksDbStore(options, std::move(db), std::move(rocks_options.statistics),
                       std::move(info_log_env), std::move(info_log)));
}

RocksDbStore::RocksDbStore(RocksDbStoreOptions options, std::unique_ptr<rocksdb::DB> db,
                           std::shared_ptr<rocksdb::Statistics> statistics,
                           std::unique_ptr<rocksdb::Env> info_log_env,
                           std::shared_ptr<rocksdb::Logger> info_log)
    : path_(options.path),
      options_(std::move(options)),
      statistics_(std::move(statistics)),
      info_log_env_(std::move(info_log_env)),
      info_log_(std::move(info_log)),
      db_(std::move(db)) {}

RocksDbWriteStats RocksDbStore::write_stats() const {
  RocksDbWriteStats stats;
  stats.writes = statistics_->getTickerCount(rocksdb::WRITE_DONE_BY_SELF) +
                 statistics_->getTickerCount(rocksdb::WRITE_DONE_BY_OTHER);
  stats.wal_syncs = statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  return stats;
}

RocksDbStore::~RocksDbStore() {
  const RocksDbWriteStats stats = write_stats();
  spdlog::info("RocksDB store {}: {} writes in {} WAL syncs since open ({:.2f} writes per sync)",
               path_, stats.writes, stats.wal_syncs,
               stats.wal_syncs == 0 ? 0.0 : static_cast<double>(stats.writes) / stats.wal_syncs);
  absl::MutexLock lock(&db_mu_);
  if (db_ == nullptr) return;  // A reopen after a write failure failed.
  if (write_failed_.load()) {
    // RocksDB is (or may be) in its error state, with a failed WAL writer
    // that must not be synced again (RocksDB asserts on it). Every
    // acknowledged write is durable already; the next open replays the WAL.
    if (rocksdb::Status s = db_->Close(); !s.ok()) {
      spdlog::warn("RocksDB store {}: close after a write failure: {}", path_, s.ToString());
    }
    return;
  }
  // Every write was synced already; this is belt and braces before Close,
  // which also waits for background flushes and compactions.
  if (rocksdb::Status s = db_->FlushWAL(/*sync=*/true); !s.ok()) {
    spdlog::error("RocksDB store {}: syncing the WAL at close failed: {}", path_, s.ToString());
  }
  // Move the memtable into a table file, which makes the WAL obsolete: the
  // next open then replays nothing (up to a whole memtable, 64 MiB, of WAL
  // otherwise), so a clean restart is fast whatever was written last. A
  // failure only costs that replay.
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  if (rocksdb::Status s = db_->Flush(flush_options); !s.ok()) {
    spdlog::warn("RocksDB store {}: flushing the memtable at close failed: {}", path_,
                 s.ToString());
  }
  if (rocksdb::Status s = db_->Close(); !s.ok()) {
    spdlog::error("RocksDB store {}: close failed: {}", path_, s.ToString());
  }
}

size_t RocksDbStore::StripeOf(absl::string_view key) {
  return absl::Hash<absl::string_view>{}(key) % kNumStripes;
}

absl::StatusOr<std::optional<std::string>> RocksDbStore::Get(absl::string_view key) {
  absl::ReaderMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return Closed();
  absl::ReaderMutexLock pin(&pin_mu_);
  return GetPinned(key);
}

absl::StatusOr<std::optional<std::string>> RocksDbStore::GetPinned(absl::string_view key) {
  rocksdb::ReadOptions read_options;
  read_options.verify_checksums = true;
  std::string value;
  rocksdb::Status s = db_->Get(read_options, ToSlice(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) {
    return FromRocks(s, path_, absl::StrCat("reading key \"", absl::CHexEscape(key), "\""));
  }
  return value;
}

absl::Status RocksDbStore::Put(absl::string_view key, absl::string_view value) {
  if (absl::Status recovered = RecoverWrites(); !recovered.ok()) return recovered;
  absl::ReaderMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return Closed();
  if (read_only_) return LastWriteError();  // A reopen failed; see RecoverWrites.
  // The stripe keeps this write out of any Commit's check-then-write window.
  std::lock_guard<std::mutex> stripe(stripes_[StripeOf(key)]);
  rocksdb::WriteBatch batch;
  batch.Put(ToSlice(key), ToSlice(value));
  return WriteSynced(&batch, "writing a key");
}

absl::Status RocksDbStore::Delete(absl::string_view key) {
  if (absl::Status recovered = RecoverWrites(); !recovered.ok()) return recovered;
  absl::ReaderMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return Closed();
  if (read_only_) return LastWriteError();  // A reopen failed; see RecoverWrites.
  std::lock_guard<std::mutex> stripe(stripes_[StripeOf(key)]);
  rocksdb::WriteBatch batch;
  batch.Delete(ToSlice(key));
  return WriteSynced(&batch, "deleting a key");
}

absl::StatusOr<std::vector<KeyValue>> RocksDbStore::Scan(absl::string_view prefix,
                                                         absl::string_view start_after,
                                                         size_t limit) {
  absl::ReaderMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return Closed();
  absl::ReaderMutexLock pin(&pin_mu_);
  rocksdb::ReadOptions read_options;
  read_options.verify_checksums = true;
  // An iterator reads a point-in-time view fixed when it is created, so the
  // scan is consistent without an explicit snapshot. (An explicit snapshot
  // would also stop compactions from dropping old versions while it lives,
  // which a concurrent purge must be able to do.)
  const std::optional<std::string> upper = PrefixSuccessor(prefix);
  rocksdb::Slice upper_slice;
  if (upper.has_value()) {
    upper_slice = ToSlice(*upper);
    read_options.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
  it->Seek(ToSlice(std::max(prefix, start_after)));
  if (it->Valid() && ToView(it->key()) == start_after) it->Next();
  std::vector<KeyValue> result;
  for (; it->Valid(); it->Next()) {
    if (limit != 0 && result.size() == limit) break;
    const absl::string_view key = ToView(it->key());
    // Only reachable without an upper bound (prefix empty or all 0xff), where
    // every key from the prefix on starts with it anyway; kept as a guard.
    if (!absl::StartsWith(key, prefix)) break;
    result.push_back(KeyValue{std::string(key), std::string(ToView(it->value()))});
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(), path_,
                     absl::StrCat("scanning prefix \"", absl::CHexEscape(prefix), "\""));
  }
  return result;
}

absl::Status RocksDbStore::ExportSnapshot(const ExportVisitor& visit) {
  // db_mu_ first, as everywhere (see db_mu_): taken after the gate, it would
  // close a cycle with a purge (holding db_mu_ shared, waiting at the gate
  // for this export) and a recovery queued for db_mu_ exclusive, which
  // absl::Mutex lets no new reader pass.
  absl::ReaderMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return Closed();
  // Shared, like every reader: the iterator's view pins SST files, and a
  // purge must not declare them gone while it lives. A purge that starts
  // meanwhile therefore waits until the export ends (docs/BACKUP.md), at the
  // gate rather than on pin_mu_, where it would hold up every other reader.
  {
    std::unique_lock<std::mutex> gate(export_gate_mu_);
    export_gate_cv_.wait(gate, [this] { return purges_waiting_ == 0; });
    ++active_exports_;
  }
  OnExit leave_gate([this] {
    {
      std::lock_guard<std::mutex> gate(export_gate_mu_);
      --active_exports_;
    }
    export_gate_cv_.notify_all();
  });
  if (options_.export_gate_passed_hook) options_.export_gate_passed_hook();
  absl::ReaderMutexLock pin(&pin_mu_);
  rocksdb::ReadOptions read_options;
  read_options.verify_checksums = true;
  // A one-off full scan: keep it from evicting the hot entries of the
  // block cache.
  read_options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (absl::Status visited = visit(ToView(it->key()), ToView(it->value())); !visited.ok()) {
      return visited;
    }
  }
  return FromRocks(it->status(), path_, "exporting a snapshot");
}

absl::Status RocksDbStore::CheckPreconditions(const WriteBatch& batch) {
  const std::vector<WriteBatch::Precondition>& preconditions = batch.preconditions();
  if (preconditions.empty()) return absl::OkStatus();
  absl::ReaderMutexLock pin(&pin_mu_);
  if (preconditions.size() < kIteratorCheckThreshold) {
    for (const WriteBatch::Precondition& precondition : preconditions) {
      absl::StatusOr<std::optional<std::string>> current = GetPinned(precondition.key);
      if (!current.ok()) return current.status();
      if (*current != precondition.expected_value) {
        return storage_internal::PreconditionFailedError(precondition);
      }
    }
    return absl::OkStatus();
  }
  // Many keys (a re-wrap batch: neighbouring segments): one iterator walked
  // in key order costs far less than a point lookup per key, which searches
  // the memtable and every level from the top each time. The iterator's view
  // is fixed when it is made, after the caller took the stripes of every
  // key, so it sees the same values point lookups would.
  std::vector<const WriteBatch::Precondition*> sorted;
  sorted.reserve(preconditions.size());
  for (const WriteBatch::Precondition& precondition : preconditions)
    sorted.push_back(&precondition);
  auto by_key = [](const WriteBatch::Precondition* a, const WriteBatch::Precondition* b) {
    return a->key < b->key;
  };
  if (!std::is_sorted(sorted.begin(), sorted.end(), by_key)) {
    std::sort(sorted.begin(), sorted.end(), by_key);
  }
  rocksdb::ReadOptions read_options;
  read_options.verify_checksums = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options));
  bool positioned = false;
  for (const WriteBatch::Precondition* precondition : sorted) {
    const absl::string_view key = precondition->key;
    // Step forward a few entries before paying for a seek.
    for (int steps = 0; positioned && it->Valid() && ToView(it->key()) < key; ++steps) {
      if (steps == 8) {
        positioned = false;
        break;
      }
      it->Next();
    }
    if (!positioned) {
      it->Seek(ToSlice(key));
      positioned = true;
    }
    if (!it->status().ok()) {
      return FromRocks(it->status(), path_,
                       absl::StrCat("reading key \"", absl::CHexEscape(key), "\""));
    }
    const bool present = it->Valid() && ToView(it->key()) == key;
    const bool holds = precondition->expected_value.has_value()
                           ? present && ToView(it->value()) == *precondition->expected_value
                           : !present;
    if (!holds) return storage_internal::PreconditionFailedError(*precondition);
  }
  return absl::OkStatus();
}

absl::Status RocksDbStore::WriteSynced(rocksdb::WriteBatch* batch, absl::string_view what) {
  rocksdb::WriteOptions write_options;
  // Durable on return: the WAL is fsynced. Concurrent synced writers are
  // grouped by RocksDB and share one fsync.
  write_options.sync = true;
  return WriteError(db_->Write(write_options, batch), what);
}

absl::Status RocksDbStore::WriteError(const rocksdb::Status& s, absl::string_view what) {
  absl::Status mapped = FromRocks(s, path_, what);
  if (s.IsIOError()) {
    absl::MutexLock lock(&error_mu_);
    if (!write_failed_.load()) {
      spdlog::error("RocksDB store {}: writes fail until this is fixed: {}", path_,
                    std::string(mapped.message()));
    }
    last_write_error_ = mapped;
    write_failed_.store(true);
  }
  return mapped;
}

absl::Status RocksDbStore::Closed() const {
  return absl::UnavailableError(absl::StrCat(
      "storage ", path_,
      " is closed: reopening it after a write failure failed (see the log); retry, or restart "
      "clavisd"));
}

absl::Status RocksDbStore::ProbeWritable() {
  // Room for a WAL record and a small table file; goes through RocksDB's
  // file system, so it sees what RocksDB would.
  rocksdb::Env* env = options_.env != nullptr ? options_.env : rocksdb::Env::Default();
  const std::string probe = path_ + "/clavis-write-probe.tmp";
  std::unique_ptr<rocksdb::WritableFile> file;
  rocksdb::Status s = env->NewWritableFile(probe, &file, rocksdb::EnvOptions());
  if (s.ok()) s = file->Append(std::string(kProbeBytes, '\0'));
  if (s.ok()) s = file->Sync();
  if (file != nullptr) {
    rocksdb::Status closed = file->Close();
    if (s.ok()) s = closed;
  }
  env->DeleteFile(probe).PermitUncheckedError();
  return FromRocks(s, path_, "checking whether the data directory is writable again");
}

absl::Status RocksDbStore::LastWriteError() {
  absl::MutexLock lock(&error_mu_);
  return last_write_error_;
}

absl::Status RocksDbStore::ClearWriteError() {
  absl::MutexLock lock(&error_mu_);
  absl::Status cleared = std::move(last_write_error_);
  last_write_error_ = absl::OkStatus();
  write_failed_.store(false);
  return cleared;
}

absl::Status RocksDbStore::RecoverWrites() {
  if (!write_failed_.load()) return absl::OkStatus();
  absl::MutexLock lock(&resume_mu_);
  if (!write_failed_.load()) return absl::OkStatus();  // Another writer recovered.
  const absl::Time now = absl::Now();
  if (now - last_resume_attempt_ < kResumeInterval) return LastWriteError();
  last_resume_attempt_ = now;

  // Not DB::Resume(): after a failed WAL write it syncs the failed WAL
  // writer again, which RocksDB 7.8 (Debian's build keeps assertions on)
  // aborts the process for. Closing and reopening the database clears any
  // error state (the reopen replays the WAL, dropping the torn record of the
  // write that failed, which was never acknowledged). Reopen only once the
  // directory takes writes again. The probe (a synced write) runs before
  // db_mu_ is taken, so that reads go on meanwhile; only the close and
  // reopen hold it exclusively.
  if (absl::Status writable = ProbeWritable(); !writable.ok()) {
    absl::MutexLock error_lock(&error_mu_);
    if (last_write_error_.ok()) last_write_error_ = writable;
    return last_write_error_;
  }
  // Waits for every call in flight to finish with the database.
  absl::MutexLock exclusive(&db_mu_);
  if (db_ != nullptr) {
    if (rocksdb::Status closed = db_->Close(); !closed.ok()) {
      spdlog::warn("RocksDB store {}: close after a write failure: {}", path_, closed.ToString());
    }
    db_.reset();
  }
  rocksdb::Options rocks_options = MakeRocksOptions(options_, info_log_);
  rocks_options.statistics = statistics_;
  // Keep the replayed WAL's memtable in memory instead of flushing it to a
  // new table file at open, which would need up to a memtable (64 MiB) of
  // free space where the probe checked only kProbeBytes. The WAL files stay
  // until a later flush makes them obsolete (a purge flushes first, so it
  // still sees and removes them): durability is unchanged.
  rocks_options.avoid_flush_during_recovery = true;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status opened = rocksdb::DB::Open(rocks_options, path_, &raw_db);
  if (!opened.ok()) {
    absl::Status failed = FromRocks(opened, path_, "reopening the database after a write failure");
    spdlog::error("RocksDB store {}: {}", path_, std::string(failed.message()));
    {
      absl::MutexLock error_lock(&error_mu_);
      last_write_error_ = failed;
    }
    // Reads go on: open read-only (replays the WAL in memory, writes
    // nothing); writes keep failing with `failed` and the next attempt
    // retries the read-write open.
    raw_db = nullptr;
    if (rocksdb::Status read_only = rocksdb::DB::OpenForReadOnly(rocks_options, path_, &raw_db);
        read_only.ok()) {
      db_.reset(raw_db);
      read_only_ = true;
      spdlog::warn("RocksDB store {}: reopened read-only; writes fail until a reopen succeeds",
                   path_);
    } else {
      spdlog::error("RocksDB store {}: reopening read-only failed too: {}", path_,
                    read_only.ToString());
    }
    return failed;
  }
  db_.reset(raw_db);
  read_only_ = false;
  spdlog::warn("RocksDB store {}: reopened; writes resumed after: {}", path_,
               std::string(ClearWriteError().message()));
  return absl::OkStatus();
}

namespace {

void AppendOperations(const WriteBatch& batch, rocksdb::WriteBatch* out) {
  for (const WriteBatch::Operation& operation : batch.operations()) {
    if (operation.value.has_value()) {
      out->Put(ToSlice(operation.key), ToSlice(*operation.value));
    } else {
      out->Delete(ToSlice(operation.key));
    }
  }
}

}  // namespace

absl::Status RocksDbStore::Commit(const WriteBatch& batch) {
  if (batch.preconditions().empty() && batch.empty()) return absl::OkStatus();
  if (absl::Status recovered = RecoverWrites(); !recovered.ok()) return recovered;
  absl::ReaderMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return Closed();
  if (read_only_) return LastWriteError();  // A reopen failed; see RecoverWrites.
  StripeLocks locks(stripes_, StripeLocks::ForBatch(batch));
  if (absl::Status checked = CheckPreconditions(batch); !checked.ok()) return checked;
  if (batch.empty()) return absl::OkStatus();
  rocksdb::WriteBatch rocks_batch;
  AppendOperations(batch, &rocks_batch);
  return WriteSynced(&rocks_batch, "committing a batch");
}

absl::Status RocksDbStore::AppendPrefixDeletion(const std::string& prefix,
                                                rocksdb::WriteBatch* out) {
  if (std::optional<std::string> end = PrefixSuccessor(prefix); end.has_value()) {
    out->DeleteRange(ToSlice(prefix), ToSlice(*end));
    return absl::OkStatus();
  }
  // No finite upper bound: the keys under the prefix are exactly the keys
  // >= prefix, so delete up to just past the current last key.
  absl::ReaderMutexLock pin(&pin_mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->SeekToLast();
  if (!it->status().ok()) return FromRocks(it->status(), path_, "finding the last key");
  if (it->Valid() && ToView(it->key()) >= absl::string_view(prefix)) {
    std::string end(ToView(it->key()));
    end.push_back('\0');  // The successor of the last key.
    out->DeleteRange(ToSlice(prefix), ToSlice(end));
  }
  return absl::OkStatus();
}

absl::Status RocksDbStore::CommitAndPurge(const WriteBatch& batch,
                                          const std::vector<std::string>& delete_prefixes) {
  // The key range to purge: [begin, end), or [begin, infinity) if unbounded
  // (only a prefix that is empty or all 0xff is).
  std::optional<std::string> begin;
  std::optional<std::string> end;
  bool unbounded = false;
  auto touch = [&](absl::string_view first, std::optional<std::string> past_last) {
    if (!begin.has_value() || first < *begin) begin = std::string(first);
    if (!past_last.has_value()) {
      unbounded = true;
    } else if (!end.has_value() || *past_last > *end) {
      end = std::move(past_last);
    }
  };
  for (const WriteBatch::Operation& operation : batch.operations()) {
    touch(operation.key, absl::StrCat(operation.key, absl::string_view("\0", 1)));
  }
  for (const std::string& prefix : delete_prefixes) touch(prefix, PrefixSuccessor(prefix));

  if (absl::Status recovered = RecoverWrites(); !recovered.ok()) return recovered;
  absl::ReaderMutexLock db_lock(&db_mu_);
  if (db_ == nullptr) return Closed();
  if (read_only_) return LastWriteError();  // A reopen failed; see RecoverWrites.

  {
    // An unbounded prefix deletion reads the last key, so it needs every
    // writer excluded; otherwise the batch's own stripes are enough, since a
    // range deletion needs no read.
    StripeLocks locks(stripes_, unbounded ? StripeLocks::All() : StripeLocks::ForBatch(batch));
    if (absl::Status checked = CheckPreconditions(batch); !checked.ok()) return checked;
    rocksdb::WriteBatch rocks_batch;
    AppendOperations(batch, &rocks_batch);
    for (const std::string& prefix : delete_prefixes) {
      if (absl::Status s = AppendPrefixDeletion(prefix, &rocks_batch); !s.ok()) return s;
    }
    if (rocks_batch.Count() > 0) {
      if (absl::Status written = WriteSynced(&rocks_batch, "committing a purge batch");
          !written.ok()) {
        return written;
      }
    }
  }

  if (!begin.has_value()) return absl::OkStatus();  // Nothing touched, nothing to purge.
  if (unbounded) end.reset();
  if (absl::Status purged = PurgeRange(*begin, end); !purged.ok()) {
    return absl::Status(
        purged.code(),
        absl::StrCat("the batch was committed but purging the old values failed (calling "
                     "CommitAndPurge again over the same prefixes and keys finishes it): ",
                     purged.message()));
  }
  return absl::OkStatus();
}

absl::Status RocksDbStore::PurgeRange(const std::string& begin,
                                      const std::optional<std::string>& end) {
  // Files that may hold old values, to check at the end that they are gone.
  // First every WAL file holding any record now: the flush below obsoletes
  // all of them. (An empty current WAL is not switched by a flush and may
  // stay, but holds nothing.)
  std::vector<std::string> doomed;
  rocksdb::VectorLogPtr wal_files;
  if (rocksdb::Status s = db_->GetSortedWalFiles(wal_files); !s.ok()) {
    return FromRocks(s, path_, "listing WAL files");
  }
  for (const auto& wal : wal_files) {
    if (wal->SizeFileBytes() > 0 || wal->Type() == rocksdb::kArchivedLogFile) {
      doomed.push_back(absl::StrCat(path_, wal->PathName()));
    }
  }

  // Move the memtable, which holds the new tombstones and maybe old values,
  // into an SST file. That makes every WAL file written before it obsolete.
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  if (rocksdb::Status s = db_->Flush(flush_options); !s.ok()) {
    return WriteError(s, "flushing the memtable for a purge");
  }
  if (rocksdb::Status s = db_->FlushWAL(/*sync=*/true); !s.ok()) {
    return WriteError(s, "syncing the WAL for a purge");
  }

  // Then every SST file overlapping the range, the flush output included.
  std::vector<rocksdb::LiveFileMetaData> sst_files;
  db_->GetLiveFilesMetaData(&sst_files);
  for (const rocksdb::LiveFileMetaData& file : sst_files) {
    const bool overlaps = file.largestkey >= begin && (!end.has_value() || file.smallestkey < *end);
    if (overlaps) doomed.push_back(absl::StrCat(file.db_path, file.name));
  }

  // Rewrite every SST overlapping the range down to the bottommost level.
  // Tombstones meet the values they cover and both are dropped; kForce also
  // rewrites bottommost files and rules out trivial moves that would keep a
  // file, old values and all. Exclusive: no automatic compaction interleaves.
  rocksdb::CompactRangeOptions compact_options;
  compact_options.exclusive_manual_compaction = true;
  compact_options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  compact_options.change_level = false;
  const rocksdb::Slice begin_slice = ToSlice(begin);
  rocksdb::Slice end_slice;
  if (end.has_value()) end_slice = ToSlice(*end);
  if (rocksdb::Status s =
          db_->CompactRange(compact_options, &begin_slice, end.has_value() ? &end_slice : nullptr);
      !s.ok()) {
    return WriteError(s, "compacting the purged range");
  }

  // Obsolete files are deleted by background jobs as they finish, and not
  // while any read view pins them. Take out every reader, then make RocksDB
  // delete all obsolete files now, in this thread: re-enabling file
  // deletions runs a full obsolete-file scan and purge. Disable/Enable are
  // counted, so this pair leaves any other holder's disable in force.
  // First wait until no export holds pin_mu_ (see export_gate_mu_); new
  // exports wait while this purge is pending.
  {
    std::unique_lock<std::mutex> gate(export_gate_mu_);
    ++purges_waiting_;
    export_gate_cv_.wait(gate, [this] { return active_exports_ == 0; });
  }
  OnExit leave_gate([this] {
    {
      std::lock_guard<std::mutex> gate(export_gate_mu_);
      --purges_waiting_;
    }
    export_gate_cv_.notify_all();
  });
  {
    absl::MutexLock pin(&pin_mu_);
    if (rocksdb::Status s = db_->DisableFileDeletions(); !s.ok()) {
      return FromRocks(s, path_, "purging obsolete files");
    }
    if (rocksdb::Status s = db_->EnableFileDeletions(/*force=*/false); !s.ok()) {
      return FromRocks(s, path_, "purging obsolete files");
    }
  }

  std::vector<std::string> remaining;
  for (const std::string& file : doomed) {
    std::error_code ec;
    if (std::filesystem::exists(file, ec) || ec) remaining.push_back(file);
  }
  if (!remaining.empty()) {
    return absl::InternalError(absl::StrCat(
        "purge incomplete in ", path_,
        ": files that may hold old values still exist: ", absl::StrJoin(remaining, ", ")));
  }
  spdlog::debug("RocksDB store {}: purged {} files", path_, doomed.size());
  return absl::OkStatus();
}

}  // namespace clavis::kms
