// AuditTrail: what every RPC leaves behind. One call record per call (per
// item for batch calls), allowed or denied, appended to the tamper-evident
// AuditLog before the answer is sent; plus alert records when the
// AnomalyDetector flags a principal, and for lock-outs and
// separation-of-duties overrides.
//
// Encryption contexts are never written: a record holds HMAC-SHA256 of the
// canonical context under the log's secret context key.
//
// If a record cannot be written the call must fail (an acknowledged call is
// never missing from the log): Record returns the error and the transport
// answers UNAVAILABLE.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_ACCESS_AUDIT_TRAIL_H_
#define CLAVIS_KMS_ACCESS_AUDIT_TRAIL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "kms/audit/audit_log.h"
#include "kms/auth/anomaly_detector.h"
#include "kms/keys/encryption_context.h"

namespace clavis::kms::access {

struct CallRecord {
  std::string request_id;
  std::string principal;  // verified, or "unauthenticated" / the claimed one
  std::string peer;
  std::string action;  // policy action name, or the RPC name when none applies
  std::string resource;
  std::string segment;
  absl::Status result;
  const EncryptionContext* context = nullptr;  // hashed, never stored
  uint64_t decrypts = 0;                       // records decrypted by this call
};

class AuditTrail {
 public:
  // `log` may be null: auditing off (development only; clavisd warns).
  AuditTrail(AuditLog* log, auth::AnomalyDetector* anomalies);

  absl::Status Record(const CallRecord& call);
  absl::Status Alert(const std::string& principal, const std::string& peer,
                     const std::string& action, const std::string& resource,
                     const std::string& message);

  uint64_t alerts() const { return alerts_.load(); }
  bool enabled() const { return log_ != nullptr; }

 private:
  AuditLog* const log_;
  auth::AnomalyDetector* const anomalies_;
  std::atomic<uint64_t> alerts_{0};
};

}  // namespace clavis::kms::access

#endif  // CLAVIS_KMS_ACCESS_AUDIT_TRAIL_H_
