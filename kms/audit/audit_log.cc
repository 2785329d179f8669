#include "kms/audit/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/ed25519.h"
#include "crypto/kdf.h"
#include "kms/audit/internal/audit_format.h"
#include "kms/audit/internal/log_files.h"
#include "kms/audit/internal/record_codec.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {

using audit_internal::DecodedFrame;
using audit_internal::FrameResult;
using audit_internal::kFileHeaderSize;
using audit_internal::kHashSize;

struct AuditLog::OpenFile {
  OpenFile(int fd, uint32_t number) : fd(fd), number(number) {}
  ~OpenFile() { close(fd); }
  const int fd;
  const uint32_t number;
  uint64_t size = 0;  // guarded by AuditLog::mu_
};

namespace {

// absl::Mutex::AwaitWithTimeout on a std::condition_variable: waits until
// `ready()` or `timeout` has passed (an infinite or huge timeout waits for
// `ready()` alone) and returns `ready()`.
template <typename Predicate>
bool AwaitWithTimeout(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                      absl::Duration timeout, Predicate ready) {
  if (timeout >= absl::Hours(24 * 365 * 100)) {
    cv.wait(lock, ready);
    return true;
  }
  return cv.wait_for(lock, absl::ToChronoNanoseconds(std::max(timeout, absl::ZeroDuration())),
                     ready);
}

// What the newest complete record of a file says about the chain.
struct FileScan {
  bool has_records = false;
  uint64_t last_sequence = 0;
  std::string last_digest;
  bool ends_closed = false;       // last record is a closing checkpoint
  uint64_t after_checkpoint = 0;  // records after the file's last checkpoint
  uint64_t valid_bytes = 0;       // end of the last complete record
};

// Reads a file's records, checking digests and the chain inside the file.
// With `may_be_torn`, a torn record at the end stops the scan (valid_bytes
// marks where); any other defect is DataLoss.
absl::StatusOr<FileScan> ScanFile(const audit_internal::LogFileRef& ref, absl::string_view data,
                                  bool may_be_torn) {
  FileScan scan;
  uint64_t offset = kFileHeaderSize;
  while (offset < data.size()) {
    DecodedFrame frame;
    std::string why;
    FrameResult result =
        audit_internal::DecodeFrame(data.substr(offset), may_be_torn, &frame, &why);
    if (result == FrameResult::kTorn) break;
    if (result == FrameResult::kBad) {
      return absl::DataLossError(absl::StrCat("audit log ", ref.name, " is corrupt at byte offset ",
                                              offset, ": ", why, "; run VerifyAuditLog"));
    }
    if (scan.has_records &&
        (frame.record.sequence != scan.last_sequence + 1 || frame.prev_hash != scan.last_digest)) {
      return absl::DataLossError(absl::StrCat("audit log ", ref.name,
                                              " breaks its chain at byte offset ", offset,
                                              "; run VerifyAuditLog"));
    }
    scan.has_records = true;
    scan.last_sequence = frame.record.sequence;
    scan.last_digest = frame.digest;
    if (frame.record.kind == AuditRecordKind::kCheckpoint) {
      scan.after_checkpoint = 0;
      scan.ends_closed = frame.record.closing;
    } else {
      ++scan.after_checkpoint;
      scan.ends_closed = false;
    }
    offset += frame.size;
  }
  scan.valid_bytes = offset > data.size() ? data.size() : offset;
  if (!scan.has_records) scan.valid_bytes = kFileHeaderSize;
  return scan;
}

}  // namespace

AuditLog::AuditLog(AuditLogOptions options, std::string public_key,
                   crypto::HmacSha256Key context_hmac)
    : options_(std::move(options)),
      public_key_(std::move(public_key)),
      context_hmac_(std::move(context_hmac)) {}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(AuditLogOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("audit log directory is empty");
  absl::StatusOr<crypto::Ed25519KeyPair> pair =
      crypto::Ed25519KeyPair::FromSeed(options.signing_seed);
  if (!pair.ok()) return absl::InvalidArgumentError("audit signing seed must be 32 bytes");
  if (options.context_key.size() < 32) {
    return absl::InvalidArgumentError("audit context key must be at least 32 bytes");
  }
  if (options.max_file_bytes < 4096) {
    return absl::InvalidArgumentError("audit max_file_bytes must be at least 4096");
  }
  if (options.flush_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("audit flush_interval must be positive");
  }
  if (!options.now) options.now = [] { return absl::Now(); };
  if (mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create audit log directory ", options.dir, ": ",
                                            std::strerror(errno)));
  }
  const std::string lock_path = options.dir + "/LOCK";
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    close(lock_fd);
    return absl::UnavailableError(
        absl::StrCat("audit log ", options.dir, " is held by another writer"));
  }
  absl::StatusOr<crypto::HmacSha256Key> context_hmac =
      crypto::HmacSha256Key::New(options.context_key);
  if (!context_hmac.ok()) return context_hmac.status();
  std::unique_ptr<AuditLog> log(
      new AuditLog(std::move(options), pair->public_key, *std::move(context_hmac)));
  log->lock_fd_ = lock_fd;
  if (absl::Status s = log->Recover(); !s.ok()) {
    log->AbandonForTesting();  // releases the lock; nothing was written
    return s;
  }
  log->flusher_ = std::thread([raw = log.get()] { raw->FlushLoop(); });
  return log;
}

absl::Status AuditLog::Recover() {
  std::lock_guard<std::mutex> lock(mu_);
  last_digest_ = std::string(kHashSize, '\0');
  last_checkpoint_time_ = options_.now();
  absl::StatusOr<std::vector<audit_internal::LogFileRef>> files =
      audit_internal::ListLogFiles(options_.dir);
  if (!files.ok()) return files.status();
  if (files->empty()) return StartFileLocked(1);

  const audit_internal::LogFileRef& newest = files->back();
  absl::StatusOr<std::string> data = audit_internal::ReadWholeFile(newest.path);
  if (!data.ok()) return data.status();
  bool rewrite_header = false;
  FileScan scan;
  if (data->size() < kFileHeaderSize) {
    // A crash between creating the file and writing its header.
    if (!absl::StartsWith(audit_internal::EncodeFileHeader(newest.number), *data)) {
      return absl::DataLossError(absl::StrCat("audit log ", newest.name, " has a damaged header"));
    }
    rewrite_header = true;
  } else {
    if (absl::Status s = audit_internal::CheckFileHeader(*data, newest.number); !s.ok()) {
      return absl::DataLossError(absl::StrCat("audit log ", newest.name, ": ", s.message()));
    }
    absl::StatusOr<FileScan> scanned = ScanFile(newest, *data, /*may_be_torn=*/true);
    if (!scanned.ok()) return scanned.status();
    scan = *std::move(scanned);
  }

  bool clean = true;
  uint64_t torn_bytes = 0;
  if (scan.has_records) {
    torn_bytes = data->size() - scan.valid_bytes;
    clean = scan.ends_closed && torn_bytes == 0;
  } else if (files->size() > 1) {
    // The newest file holds no record yet: the chain head is in the one before.
    const audit_internal::LogFileRef& previous = (*files)[files->size() - 2];
    absl::StatusOr<std::string> prev_data = audit_internal::ReadWholeFile(previous.path);
    if (!prev_data.ok()) return prev_data.status();
    if (absl::Status s = audit_internal::CheckFileHeader(*prev_data, previous.number); !s.ok()) {
      return absl::DataLossError(absl::StrCat("audit log ", previous.name, ": ", s.message()));
    }
    absl::StatusOr<FileScan> prev_scan = ScanFile(previous, *prev_data, /*may_be_torn=*/false);
    if (!prev_scan.ok()) return prev_scan.status();
    scan = *std::move(prev_scan);
    if (!rewrite_header) torn_bytes = data->size() - kFileHeaderSize;
    clean = scan.ends_closed && torn_bytes == 0;
    scan.valid_bytes = kFileHeaderSize;
  } else if (!rewrite_header) {
    torn_bytes = data->size() - kFileHeaderSize;
    scan.valid_bytes = kFileHeaderSize;
  }
  if (scan.has_records) {
    last_sequence_ = scan.last_sequence;
    last_digest_ = scan.last_digest;
    records_since_checkpoint_ = scan.after_checkpoint;
  }

  int fd = open(newest.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open ", newest.path, ": ", std::strerror(errno)));
  }
  auto file = std::make_shared<OpenFile>(fd, newest.number);
  if (rewrite_header) {
    spdlog::warn("audit log {}: rewriting a header cut short by a crash", newest.name);
    if (ftruncate(fd, 0) != 0) return absl::InternalError("audit log truncate failed");
    if (absl::Status s =
            audit_internal::WriteFully(fd, audit_internal::EncodeFileHeader(newest.number));
        !s.ok()) {
      return s;
    }
    scan.valid_bytes = kFileHeaderSize;
  } else if (torn_bytes > 0) {
    spdlog::warn(
        "audit log {}: truncating a torn record of {} bytes at offset {} (crash while writing)",
        newest.name, torn_bytes, scan.valid_bytes);
    if (ftruncate(fd, static_cast<off_t>(scan.valid_bytes)) != 0) {
      return absl::InternalError(absl::StrCat("audit log truncate failed: ", std::strerror(errno)));
    }
  }
  if (absl::Status s = audit_internal::SyncFd(fd); !s.ok()) return s;
  file->size = scan.valid_bytes;
  file_ = std::move(file);

  if (!clean && last_sequence_ > 0) {
    spdlog::warn("audit log {}: did not end with a closing checkpoint; continuing the chain at {}",
                 options_.dir, last_sequence_ + 1);
    AuditRecord alert;
    alert.kind = AuditRecordKind::kAlert;
    alert.action = "AuditLogRecovered";
    alert.message =
        absl::StrCat("audit log reopened after an unclean shutdown: no closing checkpoint; ",
                     records_since_checkpoint_, " records after the last checkpoint; ", torn_bytes,
                     " torn bytes truncated");
    alert.sequence = last_sequence_ + 1;
    alert.time_us = NowMicros();
    absl::StatusOr<std::string> frame = audit_internal::EncodeEventFrame(alert, last_digest_);
    if (!frame.ok()) return frame.status();
    if (absl::Status s = AppendFrameLocked(*frame); !s.ok()) return s;
    last_sequence_ = alert.sequence;
    last_digest_ = frame->substr(frame->size() - kHashSize);
    ++records_since_checkpoint_;
    return WriteCheckpointLocked(/*closing=*/false);
  }
  return absl::OkStatus();
}

absl::Status AuditLog::StartFileLocked(uint32_t number) {
  if (number > audit_internal::kMaxFileNumber) {
    return absl::ResourceExhaustedError("audit log has used all file numbers");
  }
  const std::string path = absl::StrCat(options_.dir, "/", audit_internal::LogFileName(number));
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  auto file = std::make_shared<OpenFile>(fd, number);
  if (absl::Status s = audit_internal::WriteFully(fd, audit_internal::EncodeFileHeader(number));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = audit_internal::SyncFd(fd); !s.ok()) return s;
  if (absl::Status s = audit_internal::SyncDir(options_.dir); !s.ok()) return s;
  file->size = kFileHeaderSize;
  file_ = std::move(file);
  return absl::OkStatus();
}

absl::Status AuditLog::AppendFrameLocked(absl::string_view frame) {
  if (file_->size + frame.size() > options_.max_file_bytes && file_->size > kFileHeaderSize) {
    // The full file is synced before its successor exists, so a power loss
    // never leaves a hole in the middle of the chain.
    absl::Status s = audit_internal::SyncFd(file_->fd);
    if (s.ok()) s = StartFileLocked(file_->number + 1);
    if (!s.ok()) {
      poisoned_ = s;
      return s;
    }
  }
  absl::Status s = audit_internal::WriteFully(file_->fd, frame);
  if (!s.ok() && (absl::IsResourceExhausted(s) || absl::IsUnavailable(s))) {
    // Disk full or read-only: nothing or part of the frame reached the
    // file. Cut the part off so the file ends with the last whole record
    // and the chain on disk matches memory again; then the record is just
    // not written, and the next Append retries (the log resumes when space
    // returns). If the cut fails, the log is poisoned below.
    if (::ftruncate(file_->fd, static_cast<off_t>(file_->size)) == 0) {
      spdlog::error("audit log {}: {}; record not written, appends resume when space returns",
                    options_.dir, s.ToString());
      return s;
    }
  }
  if (s.ok()) {
    file_->size += frame.size();
    dirty_ = true;
    if (options_.sync_every_record) s = audit_internal::SyncFd(file_->fd);
  }
  if (!s.ok()) {
    spdlog::error("audit log {}: {}; refusing further appends", options_.dir, s.ToString());
    poisoned_ = s;
  }
  return s;
}

absl::Status AuditLog::WriteCheckpointLocked(bool closing) {
  const uint64_t sequence = last_sequence_ + 1;
  const absl::Time now = options_.now();
  absl::StatusOr<std::string> frame = audit_internal::EncodeCheckpointFrame(
      sequence, last_digest_, absl::ToUnixMicros(now), closing, public_key_, options_.signing_seed);
  if (!frame.ok()) return frame.status();
  if (absl::Status s = AppendFrameLocked(*frame); !s.ok()) return s;
  last_sequence_ = sequence;
  last_digest_ = frame->substr(frame->size() - kHashSize);
  records_since_checkpoint_ = 0;
  last_checkpoint_time_ = now;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> AuditLog::Append(const AuditRecord& record) {
  if (record.closing || !record.public_key.empty()) {
    return absl::InvalidArgumentError("closing and public_key belong to checkpoint records");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::FailedPreconditionError("audit log is closed");
  if (!poisoned_.ok()) return poisoned_;
  AuditRecord stamped = record;
  stamped.sequence = last_sequence_ + 1;
  stamped.time_us = NowMicros();
  absl::StatusOr<std::string> frame = audit_internal::EncodeEventFrame(stamped, last_digest_);
  if (!frame.ok()) return frame.status();
  if (absl::Status s = AppendFrameLocked(*frame); !s.ok()) return s;
  last_sequence_ = stamped.sequence;
  last_digest_ = frame->substr(frame->size() - kHashSize);
  ++records_since_checkpoint_;
  if (options_.checkpoint_every_records > 0 &&
      records_since_checkpoint_ >= options_.checkpoint_every_records) {
    // The record itself is written; a failed checkpoint poisons the log and
    // surfaces on the next call.
    if (absl::Status s = WriteCheckpointLocked(false); !s.ok()) {
      spdlog::error("audit log {}: checkpoint failed: {}", options_.dir, s.ToString());
    }
  }
  return stamped.sequence;
}

absl::StatusOr<std::string> AuditLog::HashContext(absl::string_view canonical_context) const {
  return context_hmac_.Compute(canonical_context);
}

absl::Status AuditLog::Checkpoint() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::FailedPreconditionError("audit log is closed");
  if (!poisoned_.ok()) return poisoned_;
  if (records_since_checkpoint_ == 0) return absl::OkStatus();
  return WriteCheckpointLocked(false);
}

absl::Status AuditLog::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return absl::FailedPreconditionError("audit log is closed");
  if (!poisoned_.ok()) return poisoned_;
  absl::Status s = audit_internal::SyncFd(file_->fd);
  if (!s.ok()) poisoned_ = s;
  return s;
}

uint64_t AuditLog::last_sequence() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_sequence_;
}

absl::Status AuditLog::Close() { return Stop(/*write_closing_checkpoint=*/true); }

void AuditLog::AbandonForTesting() { Stop(/*write_closing_checkpoint=*/false).IgnoreError(); }

absl::Status AuditLog::Stop(bool write_closing_checkpoint) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Only the first caller stops the log; later ones have nothing to do.
    if (stopping_) return absl::OkStatus();
    stopping_ = true;
  }
  stop_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::lock_guard<std::mutex> lock(mu_);
  absl::Status status = poisoned_;
  if (file_ != nullptr && write_closing_checkpoint && status.ok()) {
    status = WriteCheckpointLocked(/*closing=*/true);
    if (status.ok()) status = audit_internal::SyncFd(file_->fd);
  }
  file_.reset();
  if (lock_fd_ >= 0) {
    close(lock_fd_);  // releases the flock
    lock_fd_ = -1;
  }
  return status;
}

AuditLog::~AuditLog() {
  if (absl::Status s = Close(); !s.ok()) {
    spdlog::error("audit log {}: close failed: {}", options_.dir, s.ToString());
  }
}

void AuditLog::FlushLoop() {
  const bool timed_checkpoints = options_.checkpoint_interval > absl::ZeroDuration() &&
                                 options_.checkpoint_interval != absl::InfiniteDuration();
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    AwaitWithTimeout(stop_, lock, options_.flush_interval, [this] { return stopping_; });
    if (stopping_) break;
    if (!poisoned_.ok()) continue;
    if (timed_checkpoints && records_since_checkpoint_ > 0 &&
        options_.now() - last_checkpoint_time_ >= options_.checkpoint_interval) {
      if (absl::Status s = WriteCheckpointLocked(false); !s.ok()) {
        spdlog::error("audit log {}: checkpoint failed: {}", options_.dir, s.ToString());
      }
    }
    if (dirty_) {
      // Group commit: one fdatasync for everything appended since the last
      // one, outside the mutex so appends go on meanwhile. The shared_ptr
      // keeps the descriptor open across a concurrent rotation.
      dirty_ = false;
      std::shared_ptr<OpenFile> file = file_;
      lock.unlock();
      absl::Status s = audit_internal::SyncFd(file->fd);
      lock.lock();
      if (!s.ok() && poisoned_.ok()) {
        spdlog::error("audit log {}: {}; refusing further appends", options_.dir, s.ToString());
        poisoned_ = s;
      }
    }
  }
}

int64_t AuditLog::NowMicros() const { return absl::ToUnixMicros(options_.now()); }

}  // namespace clavis::kms
