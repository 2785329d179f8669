#include "kms/audit/audit_verifier.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "kms/audit/internal/audit_format.h"
#include "kms/audit/internal/log_files.h"
#include "kms/audit/internal/record_codec.h"

namespace clavis::kms {
namespace {

using audit_internal::DecodedFrame;
using audit_internal::FrameResult;
using audit_internal::LogFileRef;

struct LocatedFrame {
  uint64_t offset;
  DecodedFrame frame;
};

// Walks the files in order, carrying the chain state from record to record.
class Walker {
 public:
  explicit Walker(absl::string_view public_key)
      : public_key_(public_key), last_digest_(audit_internal::kHashSize, '\0') {}

  AuditVerifyReport Run(const std::vector<LogFileRef>& files) {
    if (files.empty()) {
      Fail(AuditProblem::kNoLogFiles, "", 0, 0, "no audit-NNNNNN.log files in the directory");
      return std::move(report_);
    }
    for (size_t i = 0; i < files.size(); ++i) {
      if (!VerifyFile(files[i], i + 1, i + 1 == files.size())) return std::move(report_);
    }
    if (!last_closing_) {
      Fail(AuditProblem::kUnverifiedTail, files.back().name, end_offset_, report_.last_sequence + 1,
           absl::StrCat("unverified tail: ", report_.unverified_tail_records,
                        " records after the last checkpoint and no closing checkpoint; the log "
                        "was cut or the process crashed"));
    } else {
      report_.cleanly_closed = true;
    }
    return std::move(report_);
  }

 private:
  bool Fail(AuditProblem problem, const std::string& file, uint64_t offset, uint64_t sequence,
            std::string detail) {
    report_.problem = problem;
    report_.file = file;
    report_.offset = offset;
    report_.sequence = sequence;
    report_.detail = std::move(detail);
    return false;
  }

  bool VerifyFile(const LogFileRef& ref, uint32_t expected_number, bool newest) {
    if (ref.number != expected_number) {
      return Fail(
          AuditProblem::kMissingFile, audit_internal::LogFileName(expected_number), 0, 0,
          absl::StrCat("file is missing (deleted or renamed); the log continues with ", ref.name));
    }
    absl::StatusOr<std::string> data = audit_internal::ReadWholeFile(ref.path);
    if (!data.ok()) {
      return Fail(AuditProblem::kUnreadableFile, ref.name, 0, 0,
                  std::string(data.status().message()));
    }
    ++report_.files;
    end_offset_ = data->size();
    if (data->size() < audit_internal::kFileHeaderSize && newest &&
        absl::StartsWith(audit_internal::EncodeFileHeader(ref.number), *data)) {
      return Fail(AuditProblem::kTornRecord, ref.name, 0, report_.last_sequence + 1,
                  "the file ends inside its header (the writer crashed while starting it)");
    }
    if (absl::Status s = audit_internal::CheckFileHeader(*data, ref.number); !s.ok()) {
      return Fail(AuditProblem::kBadFileHeader, ref.name, 0, 0, std::string(s.message()));
    }

    // All frames of the file first, so a sequence gap can look ahead to tell
    // reordered records from deleted ones.
    std::vector<LocatedFrame> frames;
    uint64_t offset = audit_internal::kFileHeaderSize;
    FrameResult stop = FrameResult::kOk;
    std::string why;
    while (offset < data->size()) {
      LocatedFrame located{offset, {}};
      stop = audit_internal::DecodeFrame(absl::string_view(*data).substr(offset), newest,
                                         &located.frame, &why);
      if (stop != FrameResult::kOk) break;
      offset += located.frame.size;
      frames.push_back(std::move(located));
    }
    for (size_t j = 0; j < frames.size(); ++j) {
      if (!VerifyRecord(ref, frames, j)) return false;
    }
    if (stop == FrameResult::kTorn) {
      return Fail(
          AuditProblem::kTornRecord, ref.name, offset, report_.last_sequence + 1,
          absl::StrCat("torn final record: ", why, " (the writer crashed while appending); ",
                       report_.unverified_tail_records,
                       " records after the last checkpoint are unverified"));
    }
    if (stop == FrameResult::kBad) {
      return Fail(AuditProblem::kCorruptRecord, ref.name, offset, report_.last_sequence + 1, why);
    }
    return true;
  }

  bool VerifyRecord(const LogFileRef& ref, const std::vector<LocatedFrame>& frames, size_t j) {
    const DecodedFrame& f = frames[j].frame;
    const uint64_t offset = frames[j].offset;
    const uint64_t sequence = f.record.sequence;
    const uint64_t expected = report_.last_sequence + 1;
    if (sequence > expected) {
      for (size_t k = j + 1; k < frames.size(); ++k) {
        if (frames[k].frame.record.sequence == expected) {
          return Fail(AuditProblem::kReorderedRecord, ref.name, offset, expected,
                      absl::StrCat("record ", sequence, " comes before record ", expected,
                                   " (records reordered)"));
        }
      }
      return Fail(
          AuditProblem::kDeletedRecord, ref.name, offset, expected,
          absl::StrCat("sequence gap: expected ", expected, ", found ", sequence, "; records ",
                       expected, "..", sequence - 1, " are missing (deleted)"));
    }
    if (sequence < expected) {
      std::string what = (sequence == report_.last_sequence && f.digest == last_digest_)
                             ? absl::StrCat("a copy of record ", sequence, " (inserted duplicate)")
                             : absl::StrCat("record ", sequence, " appears again after record ",
                                            report_.last_sequence, " (inserted or replayed)");
      return Fail(AuditProblem::kInsertedRecord, ref.name, offset, expected, std::move(what));
    }
    if (f.prev_hash != last_digest_) {
      return Fail(AuditProblem::kChainBreak, ref.name, offset, expected,
                  expected == 1 ? std::string("the first record does not chain from 32 zero bytes")
                                : absl::StrCat("record does not chain to record ", expected - 1,
                                               ": one of them was replaced (digest recomputed)"));
    }
    if (f.record.kind == AuditRecordKind::kCheckpoint) {
      if (f.record.public_key != public_key_) {
        return Fail(AuditProblem::kWrongSigningKey, ref.name, offset, expected,
                    absl::StrCat("checkpoint names public key ",
                                 crypto::HexEncode(f.record.public_key.substr(0, 8)),
                                 "..., not the expected key ",
                                 crypto::HexEncode(public_key_.substr(0, 8)), "..."));
      }
      if (!crypto::Ed25519Verify(public_key_, f.signed_message, f.signature).ok()) {
        return Fail(AuditProblem::kBadSignature, ref.name, offset, expected,
                    "checkpoint signature does not verify under the expected public key");
      }
      ++report_.checkpoints;
      report_.unverified_tail_records = 0;
      last_closing_ = f.record.closing;
    } else {
      ++report_.unverified_tail_records;
      last_closing_ = false;
    }
    ++report_.records;
    report_.last_sequence = sequence;
    last_digest_ = f.digest;
    return true;
  }

  const std::string public_key_;
  AuditVerifyReport report_;
  std::string last_digest_;
  bool last_closing_ = false;
  uint64_t end_offset_ = 0;
};

}  // namespace

const char* AuditProblemName(AuditProblem problem) {
  switch (problem) {
    case AuditProblem::kNone:
      return "ok";
    case AuditProblem::kUnverifiedTail:
      return "unverified tail";
    case AuditProblem::kTornRecord:
      return "torn final record";
    case AuditProblem::kNoLogFiles:
      return "no log files";
    case AuditProblem::kMissingFile:
      return "missing file";
    case AuditProblem::kBadFileHeader:
      return "bad file header";
    case AuditProblem::kCorruptRecord:
      return "corrupt record";
    case AuditProblem::kChainBreak:
      return "chain break";
    case AuditProblem::kDeletedRecord:
      return "deleted record";
    case AuditProblem::kInsertedRecord:
      return "inserted record";
    case AuditProblem::kReorderedRecord:
      return "reordered records";
    case AuditProblem::kWrongSigningKey:
      return "wrong signing key";
    case AuditProblem::kBadSignature:
      return "bad checkpoint signature";
    case AuditProblem::kUnreadableFile:
      return "unreadable file";
  }
  return "unknown";
}

bool AuditVerifyReport::tampered() const {
  return problem != AuditProblem::kNone && problem != AuditProblem::kUnverifiedTail &&
         problem != AuditProblem::kTornRecord;
}

std::string AuditVerifyReport::ToString() const {
  if (ok()) {
    return absl::StrCat("OK: ", records, " records (", checkpoints, " checkpoints) in ", files,
                        " files, last sequence ", last_sequence, ", closed cleanly");
  }
  return absl::StrCat(file.empty() ? "log" : file, " offset ", offset, " (sequence ", sequence,
                      "): ", AuditProblemName(problem), ": ", detail);
}

absl::StatusOr<AuditVerifyReport> VerifyAuditLog(const std::string& dir,
                                                 absl::string_view expected_public_key) {
  if (expected_public_key.size() != crypto::Ed25519KeyPair::kPublicKeySize) {
    return absl::InvalidArgumentError("expected public key must be 32 bytes (Ed25519)");
  }
  absl::StatusOr<std::vector<LogFileRef>> files = audit_internal::ListLogFiles(dir);
  if (!files.ok()) return files.status();
  return Walker(expected_public_key).Run(*files);
}

}  // namespace clavis::kms
