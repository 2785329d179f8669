// AuditRecord: one entry of the tamper-evident audit log (docs/FORMAT.md,
// "Audit log (v1)"). A plain value type; the log assigns `sequence` and
// `time_us` when it appends a record.
//
// Encryption contexts may hold personal data, so a record never carries one
// in clear: `context_hash` is HMAC-SHA256 under the log's secret context key
// of the canonical context bytes (AuditLog::HashContext).
#ifndef CLAVIS_KMS_AUDIT_AUDIT_RECORD_H_
#define CLAVIS_KMS_AUDIT_AUDIT_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace clavis::kms {

enum class AuditRecordKind : uint8_t {
  kCall = 1,        // an API call and its outcome
  kAlert = 2,       // suspicious behaviour noticed by the service; see message
  kCheckpoint = 3,  // Ed25519-signed commitment to the chain so far (log-internal)
};

// "call", "alert", "checkpoint".
const char* AuditRecordKindName(AuditRecordKind kind);

struct AuditRecord {
  AuditRecordKind kind = AuditRecordKind::kCall;
  // Set by the log: 1 for the first record of a log, then +1 per record.
  uint64_t sequence = 0;
  // Set by the log: microseconds since the Unix epoch.
  int64_t time_us = 0;

  std::string request_id;
  std::string principal;  // who called, e.g. "spiffe://prod/svc/billing"
  std::string peer;       // transport address, e.g. "ipv4:10.0.0.7:51234"
  std::string action;     // e.g. "GenerateDataKey"
  std::string resource;   // key name, e.g. "tenants/t/keys/k"
  std::string segment;
  absl::StatusCode result_code = absl::StatusCode::kOk;
  std::string message;       // short result message, or the alert's description
  std::string context_hash;  // empty (no context) or 32 bytes

  // Checkpoint records only.
  bool closing = false;    // written by Close(): the log ended cleanly here
  std::string public_key;  // Ed25519 public key that signed the checkpoint
};

// Each text field of a call or alert record holds at most this many bytes.
inline constexpr size_t kMaxAuditFieldBytes = 4096;

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_AUDIT_AUDIT_RECORD_H_
