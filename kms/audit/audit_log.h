// AuditLog: the append-only, hash-chained, signed audit log of the key
// service (format: docs/FORMAT.md, "Audit log (v1)").
//
// Every record carries its sequence number and the digest of the record
// before it, so changing, removing, inserting or reordering records breaks
// the chain. Every `checkpoint_every_records` records, every
// `checkpoint_interval` and at Close() the log appends a checkpoint signed
// with Ed25519 that commits to the whole chain so far; the checkpoint written
// by Close() is marked closing and says the log ended cleanly. Verify a log
// with VerifyAuditLog (audit_verifier.h) and the signer's public key.
//
// Durability contract:
//  - Append() returns only after the record was handed to the OS with
//    write(2): it survives a kill of the process.
//  - A background thread fdatasyncs the current file every `flush_interval`
//    if anything was appended (group commit), so after a power loss at most
//    the records of the last flush interval are lost. With
//    `sync_every_record` every Append() syncs before returning.
//  - Close() writes the closing checkpoint and syncs.
//  - A write(2) that fails for lack of space (ResourceExhausted, "storage
//    full: ...") or on a read-only file system (Unavailable) is cut back off
//    the file (ftruncate) so it ends with the last whole record: that
//    Append fails, and later ones retry, so the log resumes by itself when
//    space returns. Any other failed write, a failed cut, or a failed sync
//    poisons the log: every later Append() returns the first error, because
//    the chain on disk may no longer match memory.
//
// Crash recovery (Open): the newest file is read and its records checked
// (digests, sequence, chain); a torn record at its end, as a crash while
// writing leaves, is truncated with a warning, and the chain continues from
// the last complete record. If the log did not end with a closing
// checkpoint, Open appends an alert record saying so and a checkpoint.
// Anything else that is wrong (a corrupt record in the middle) makes Open
// fail with DataLoss: run VerifyAuditLog to locate it. Older files are not
// re-read; that is the verifier's job.
//
// One writer per directory: Open takes an exclusive flock on `dir`/LOCK.
//
// Thread safety: all methods may be called concurrently. Append takes one
// mutex for sequence, chain and write(2); the fsync happens outside it.
#ifndef CLAVIS_KMS_AUDIT_AUDIT_LOG_H_
#define CLAVIS_KMS_AUDIT_AUDIT_LOG_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crypto/kdf.h"
#include "crypto/secret_bytes.h"
#include "kms/audit/audit_record.h"

namespace clavis::kms {

struct AuditLogOptions {
  // Created (mode 0700) if missing.
  std::string dir;
  // Ed25519 seed (32 bytes) that signs checkpoints.
  crypto::SecretBytes signing_seed;
  // HMAC-SHA256 key (at least 32 bytes) for HashContext. Keep it for the
  // life of the log: searching records by context needs it.
  crypto::SecretBytes context_key;
  // A new file is started before a record would grow the current one past
  // this size (a file always takes at least one record).
  uint64_t max_file_bytes = 64 << 20;
  // Checkpoint after this many records (0: never by count) ...
  uint64_t checkpoint_every_records = 1000;
  // ... or when this much time has passed since the last checkpoint and
  // records were appended since (zero or infinite: never by time).
  absl::Duration checkpoint_interval = absl::Seconds(60);
  absl::Duration flush_interval = absl::Milliseconds(100);
  bool sync_every_record = false;
  // Source of record times; null means absl::Now.
  std::function<absl::Time()> now;
};

class AuditLog {
 public:
  // Opens (creating or recovering) the log in options.dir. InvalidArgument
  // for bad options, DataLoss if the newest file is corrupt, Unavailable if
  // another writer holds the directory.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(AuditLogOptions options);

  // Close()s the log if it is still open (errors are logged).
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends a call or alert record and returns its sequence number. The log
  // sets `sequence` and `time_us`; `closing` and `public_key` must be unset.
  // InvalidArgument for a checkpoint kind, a field over kMaxAuditFieldBytes or
  // a context_hash that is not empty or 32 bytes; FailedPrecondition after
  // Close(); the sticky write error if the log is poisoned.
  absl::StatusOr<uint64_t> Append(const AuditRecord& record);

  // HMAC-SHA256(context_key, canonical_context): the value for
  // AuditRecord::context_hash. Pass the canonical encryption context bytes
  // (CanonicalEncryptionContext in kms/keys/encryption_context.h).
  absl::StatusOr<std::string> HashContext(absl::string_view canonical_context) const;

  // Appends a (non-closing) checkpoint now, if any record came after the last one.
  absl::Status Checkpoint();
  // fdatasync now.
  absl::Status Sync();
  // Stops the flusher, appends the closing checkpoint, syncs and closes the
  // file. Later calls return OK and do nothing.
  absl::Status Close();

  // The Ed25519 public key that verifies this log's checkpoints.
  const std::string& public_key() const { return public_key_; }
  // Sequence number of the last record written (0 for an empty log).
  uint64_t last_sequence() const;

  // Test only: stops as a killed process would, without a closing checkpoint
  // or a sync (the written records stay in the file).
  void AbandonForTesting();

 private:
  struct OpenFile;
  AuditLog(AuditLogOptions options, std::string public_key, crypto::HmacSha256Key context_hmac);

  absl::Status Recover();
  absl::Status StartFileLocked(uint32_t number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes a frame, first starting a new file if this one would grow too
  // big. Poisons the log on failure.
  absl::Status AppendFrameLocked(absl::string_view frame) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteCheckpointLocked(bool closing) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Stop(bool write_closing_checkpoint);
  void FlushLoop();
  int64_t NowMicros() const;

  // Constant after construction.
  const AuditLogOptions options_;
  const std::string public_key_;
  const crypto::HmacSha256Key context_hmac_;  // keyed with options_.context_key

  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  mutable std::mutex mu_;
  std::shared_ptr<OpenFile> file_ ABSL_GUARDED_BY(mu_);
  uint64_t last_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_digest_ ABSL_GUARDED_BY(mu_);
  uint64_t records_since_checkpoint_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_checkpoint_time_ ABSL_GUARDED_BY(mu_);
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::condition_variable stop_;  // notified when stopping_ is set
  absl::Status poisoned_ ABSL_GUARDED_BY(mu_);
  int lock_fd_ = -1;  // flock on dir/LOCK; released by Close()
  std::thread flusher_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_AUDIT_AUDIT_LOG_H_
