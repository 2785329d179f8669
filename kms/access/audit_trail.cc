#include "kms/access/audit_trail.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace clavis::kms::access {
namespace {

// Audit fields are bounded; untrusted text (resource names from requests)
// is cut rather than refused, so an oversized name still leaves a record.
std::string Bounded(const std::string& s) {
  return s.size() <= kMaxAuditFieldBytes ? s : s.substr(0, kMaxAuditFieldBytes);
}

}  // namespace

AuditTrail::AuditTrail(AuditLog* log, auth::AnomalyDetector* anomalies)
    : log_(log), anomalies_(anomalies) {}

absl::Status AuditTrail::Record(const CallRecord& call) {
  if (log_ != nullptr) {
    AuditRecord record;
    record.kind = AuditRecordKind::kCall;
    record.request_id = Bounded(call.request_id);
    record.principal = Bounded(call.principal);
    record.peer = Bounded(call.peer);
    record.action = Bounded(call.action);
    record.resource = Bounded(call.resource);
    record.segment = Bounded(call.segment);
    record.result_code = call.result.code();
    record.message = Bounded(std::string(call.result.message()));
    if (call.context != nullptr && !call.context->empty() &&
        ValidateEncryptionContext(*call.context).ok()) {
      auto hash = log_->HashContext(CanonicalEncryptionContext(*call.context));
      if (hash.ok()) record.context_hash = *std::move(hash);
    }
    auto appended = log_->Append(record);
    if (!appended.ok()) {
      spdlog::error("audit log append failed: {}", std::string(appended.status().message()));
      return absl::UnavailableError(
          absl::StrCat("the audit log cannot be written (", appended.status().message(),
                       "); the call was refused because it could not be recorded"));
    }
  }
  if (anomalies_ != nullptr && !call.principal.empty()) {
    const bool denied =
        absl::IsPermissionDenied(call.result) || absl::IsUnauthenticated(call.result);
    for (const auth::Alert& alert : anomalies_->Observe(call.principal, call.decrypts, denied)) {
      if (auto s = Alert(alert.principal, call.peer, alert.kind, call.resource, alert.message);
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status AuditTrail::Alert(const std::string& principal, const std::string& peer,
                               const std::string& action, const std::string& resource,
                               const std::string& message) {
  alerts_.fetch_add(1);
  spdlog::warn("security alert: {} by {} from {}: {}", action, principal, peer, message);
  if (log_ == nullptr) return absl::OkStatus();
  AuditRecord record;
  record.kind = AuditRecordKind::kAlert;
  record.principal = Bounded(principal);
  record.peer = Bounded(peer);
  record.action = Bounded(action);
  record.resource = Bounded(resource);
  record.message = Bounded(message);
  auto appended = log_->Append(record);
  if (!appended.ok()) {
    return absl::UnavailableError("the audit log cannot be written");
  }
  return absl::OkStatus();
}

}  // namespace clavis::kms::access
