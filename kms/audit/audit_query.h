// Reading an audit log for people and tools (the CLI): iterate records with
// filters, export JSON Lines.
//
// These helpers parse every record with the verifier's bounds-checked
// decoder and skip a torn final record, but they do not check the chain or
// the signatures: run VerifyAuditLog first when the answer must be trusted.
//
// Thread safety: pure functions of the files; safe to call concurrently.
#ifndef CLAVIS_KMS_AUDIT_AUDIT_QUERY_H_
#define CLAVIS_KMS_AUDIT_AUDIT_QUERY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "kms/audit/audit_record.h"

namespace clavis::kms {

// Every set field must match exactly; unset fields match anything.
struct AuditFilter {
  std::optional<std::string> principal;
  std::optional<std::string> resource;
  std::optional<std::string> segment;
  std::optional<std::string> action;
  std::optional<std::string> context_hash;  // AuditLog::HashContext of a context
  std::optional<int64_t> from_time_us;      // inclusive
  std::optional<int64_t> to_time_us;        // exclusive
  bool include_checkpoints = false;

  bool Matches(const AuditRecord& record) const;
};

// Calls `visit` with each matching record in log order until it returns
// false. DataLoss (naming file and offset) at the first record that cannot
// be parsed; NotFound if `dir` does not exist.
absl::Status ForEachAuditRecord(const std::string& dir, const AuditFilter& filter,
                                const std::function<bool(const AuditRecord&)>& visit);

// One JSON object on one line (no newline), e.g.
// {"sequence":7,"time":"2027-01-15T08:00:00.000001Z","time_us":...,"kind":"call",
//  "request_id":"r1",...,"result":{"code":"NOT_FOUND","message":"..."},
//  "context_hash":"<64 hex digits>"}
// Bytes that are not valid UTF-8 become U+FFFD.
std::string AuditRecordToJson(const AuditRecord& record);

// Writes each matching record as a JSON line to `out`.
absl::Status ExportAuditJsonLines(const std::string& dir, const AuditFilter& filter,
                                  std::ostream* out);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_AUDIT_AUDIT_QUERY_H_
