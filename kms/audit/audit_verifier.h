// VerifyAuditLog: checks a whole audit log directory offline (format:
// docs/FORMAT.md, "Audit log (v1)") against the public key that is expected
// to have signed its checkpoints, and names the FIRST problem precisely.
//
// What a clean result proves: every record is intact, in order, none is
// missing or added, every checkpoint was signed by the expected key, and the
// log ends with the closing checkpoint of Close(). Records after the last
// checkpoint are only hash-chained, not signed: anyone can cut them off or
// rewrite them consistently, so a log without a closing checkpoint is never
// reported clean (kUnverifiedTail). The chain cannot show a log cut back to
// an earlier closing checkpoint (a previous clean shutdown); compare
// last_sequence with a value kept elsewhere (a monitoring system) for that.
//
// Input is treated as hostile: garbage, huge length fields and truncated
// files give a problem report, never a crash.
//
// Thread safety: a pure function of the files; safe to call concurrently
// (with a writer appending, the newest record may be reported torn).
#ifndef CLAVIS_KMS_AUDIT_AUDIT_VERIFIER_H_
#define CLAVIS_KMS_AUDIT_AUDIT_VERIFIER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::kms {

enum class AuditProblem {
  kNone,
  // Incomplete, not altered: the log was cut or the writer crashed.
  kUnverifiedTail,  // records (maybe 0) after the last checkpoint, no closing checkpoint
  kTornRecord,      // the newest file ends inside a record
  // Altered or damaged.
  kNoLogFiles,
  kMissingFile,      // a file number is missing (file deleted)
  kBadFileHeader,    // wrong magic/version/number, or a file that is not a log
  kCorruptRecord,    // frame or digest mismatch: a byte of the record changed
  kChainBreak,       // right sequence, but it does not chain to the record before
  kDeletedRecord,    // sequence gap
  kInsertedRecord,   // a sequence number seen before (a copy or replay)
  kReorderedRecord,  // a later record before an earlier one
  kWrongSigningKey,  // a checkpoint names another public key
  kBadSignature,     // a checkpoint signature does not verify
  kUnreadableFile,   // I/O error or an oversized file
};

const char* AuditProblemName(AuditProblem problem);

struct AuditVerifyReport {
  // Counts over the records verified before the first problem (all of them
  // when there is none).
  uint64_t records = 0;  // including checkpoints
  uint64_t checkpoints = 0;
  uint64_t last_sequence = 0;
  uint64_t files = 0;
  bool cleanly_closed = false;
  uint64_t unverified_tail_records = 0;  // records after the last checkpoint

  // The first problem, if any. `sequence` is the sequence number the record
  // at `offset` should have had (for a corrupt record its own cannot be
  // trusted); 0 for file-level problems.
  AuditProblem problem = AuditProblem::kNone;
  std::string file;
  uint64_t offset = 0;
  uint64_t sequence = 0;
  std::string detail;

  bool ok() const { return problem == AuditProblem::kNone; }
  // True for problems that mean the log was changed or damaged, false for
  // kNone, kUnverifiedTail and kTornRecord (a cut log or a crash).
  bool tampered() const;
  // One line for humans: "OK: 120 records ..." or
  // "audit-000002.log offset 4711 (sequence 57): deleted record: ...".
  std::string ToString() const;
};

// Verifies the log in `dir`. Returns a report (problems included) unless the
// arguments are wrong: InvalidArgument if expected_public_key is not 32
// bytes, NotFound if `dir` does not exist.
absl::StatusOr<AuditVerifyReport> VerifyAuditLog(const std::string& dir,
                                                 absl::string_view expected_public_key);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_AUDIT_AUDIT_VERIFIER_H_
