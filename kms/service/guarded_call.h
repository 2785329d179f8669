// GuardedCall: the access-control envelope of every RPC. Each handler runs
// inside one (RunGuarded), which
//   1. authenticates the caller from the transport (client certificate,
//      bearer token, or the loopback development mode) and applies the
//      lock-out and the per-principal rate limit;
//   2. lets the handler authorize what it is about to do (AuthorizeKey /
//      AuthorizeTenant) against the key policy or tenant administrators;
//   3. appends the audit record of the call, allowed or denied, BEFORE the
//      answer is returned to gRPC, and fails the call if it cannot.
// Batch RPCs audit one record per item (AuditItem) and none for the call.
//
// This file is transport: it reads gRPC's auth context and metadata and
// hands plain values to kms/access, where the decisions are made.
#ifndef CLAVIS_KMS_SERVICE_GUARDED_CALL_H_
#define CLAVIS_KMS_SERVICE_GUARDED_CALL_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/server_context.h"
#include "kms/access/audit_trail.h"
#include "kms/access/authenticator.h"
#include "kms/access/authorizer.h"
#include "kms/auth/concurrency_limiter.h"
#include "kms/auth/rate_limiter.h"
#include "kms/policy/action.h"

namespace clavis::kms {

// The server-wide access-control components; all outlive the services.
struct AccessComponents {
  access::Authenticator* authenticator = nullptr;
  access::Authorizer* authorizer = nullptr;
  auth::RateLimiter* rate_limiter = nullptr;  // may be null: no limit
  access::AuditTrail* audit = nullptr;
  // Calls and streams in progress per principal; may be null: no limit.
  auth::ConcurrencyLimiter* concurrency = nullptr;
};

class GuardedCall {
 public:
  GuardedCall(const AccessComponents& access, grpc::ServerContext* context, std::string rpc);
  GuardedCall(const GuardedCall&) = delete;
  GuardedCall& operator=(const GuardedCall&) = delete;

  // Authentication, lock-out, rate limit (a batch costs its items) and the
  // limit on calls in progress: the call holds its place (a stream's for
  // kStream) until this object is destroyed, not just until Finish, so a
  // stream handler keeps it while it streams.
  absl::Status Begin(double cost = 1, auth::CallKind kind = auth::CallKind::kUnary);

  // For long streams: checks the caller's credentials again (a service
  // token may have expired or been revoked since Begin). The error is the
  // authenticator's (UNAUTHENTICATED with the reason).
  absl::Status Reauthenticate();

  const auth::Identity& identity() const { return identity_; }
  const std::string& peer() const { return peer_; }
  const std::string& request_id() const { return request_id_; }

  // What the audit record names when authorization has not (yet) set it,
  // e.g. the raw name of a request that does not parse.
  void SetResource(const std::string& resource) { resource_ = resource; }

  // Authorize, recording action/resource/segment/context for the audit.
  absl::Status AuthorizeKey(policy::Action action, const KeyName& key,
                            const std::string& resource = "",
                            const std::optional<std::string>& segment = std::nullopt,
                            const EncryptionContext* context = nullptr);
  absl::Status AuthorizeTenant(policy::Action action, const std::string& tenant);
  // A whole-store backup: audited as action "CreateBackup" on resource
  // "store" (every tenant's data), allowed to backup operators only.
  absl::Status AuthorizeBackup();

  // Records decrypted by the call (anomaly detection).
  void AddDecrypts(uint64_t n) { decrypts_ += n; }

  // One audit record for one item of a batch; returns the audit failure, if any.
  absl::Status AuditItem(const std::string& action, const std::string& resource,
                         const std::string& segment, const EncryptionContext* context,
                         const absl::Status& result, uint64_t decrypts);
  // A batch audits its items instead of the call.
  void AuditItemsOnly() { audit_call_ = false; }

  // What the last authorization of a batch item recorded, taken (and reset)
  // for that item's audit record.
  struct ItemAudit {
    std::string action;
    std::string resource;
    std::string segment;
    EncryptionContext context;
    bool has_context = false;
    uint64_t decrypts = 0;
  };
  ItemAudit TakeItemAudit();

  // Audits the call (unless AuditItemsOnly) and returns the status to send:
  // `result`, or UNAVAILABLE if the audit record could not be written.
  grpc::Status Finish(const absl::Status& result);

  access::Authorizer* authorizer() const { return access_.authorizer; }
  access::AuditTrail* audit() const { return access_.audit; }

 private:
  std::string AuditPrincipal() const;

  const AccessComponents& access_;
  grpc::ServerContext* const context_;
  const std::string rpc_;
  std::string peer_;
  std::string request_id_;
  auth::Identity identity_;
  bool authenticated_ = false;
  std::string claimed_principal_;
  std::string action_;
  std::string resource_;
  std::string segment_;
  EncryptionContext context_copy_;
  bool has_context_ = false;
  uint64_t decrypts_ = 0;
  bool audit_call_ = true;
  auth::ConcurrencyLimiter::Slot slot_;
};

// Runs `handler` inside a GuardedCall: Begin, handler, Finish.
grpc::Status RunGuarded(const AccessComponents& access, grpc::ServerContext* context,
                        const std::string& rpc,
                        const std::function<absl::Status(GuardedCall&)>& handler, double cost = 1);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVICE_GUARDED_CALL_H_
