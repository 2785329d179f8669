// ApprovalGate: M-of-N approval of destructive and access-widening
// administrative calls (docs/ACCESS.md, "Approvals").
//
// When a key requires approvals (Key.approvals_required >= 2), a guarded
// call (scheduling destruction of the key, a version or a segment; a policy
// change that widens access or lowers the quorum) does not run: Check stores
// the original request in an approval request and fails the call with
// FAILED_PRECONDITION naming it (also in trailing metadata
// "clavis-approval-request"). AccessControlService.ApproveRequest collects
// approvals and, at the quorum, calls Execute, which runs the stored request
// against the key domain exactly once.
#ifndef CLAVIS_KMS_SERVICE_APPROVAL_GATE_H_
#define CLAVIS_KMS_SERVICE_APPROVAL_GATE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "kms/access/approvals.h"
#include "kms/access/authorizer.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/policy/action.h"
#include "kms/service/guarded_call.h"

namespace clavis::kms {

inline constexpr char kApprovalRequestMetadata[] = "clavis-approval-request";

class ApprovalGate {
 public:
  // REQUIRES: all outlive the gate.
  ApprovalGate(KeyLifecycle* lifecycle, access::Authorizer* authorizer, access::ApprovalBook* book);

  // OK: the call may run now. FailedPrecondition: an approval request was
  // created instead (or the key could not be read).
  absl::Status Check(GuardedCall& call, grpc::ServerContext* context, const KeyName& key,
                     policy::Action action, const std::string& resource,
                     const google::protobuf::Message& payload);

  // Creates an approval request for `payload` needing `required` approvals
  // and returns the FAILED_PRECONDITION that tells the caller so. With a
  // `redeem_command`, the approval is a grant the requester uses by running
  // that command with --approval NAME (the message says so).
  absl::Status RequestApproval(GuardedCall& call, grpc::ServerContext* context, const KeyName& key,
                               policy::Action action, const std::string& resource,
                               const google::protobuf::Message& payload, uint32_t required,
                               const std::string& summary, const std::string& redeem_command = "");

  // Runs an approved request's stored call, unless the key's policy or
  // quorum changed since the request was made (FailedPrecondition). An
  // ExportEscrow request runs nothing: its approval is a grant the requester
  // redeems (Redeem).
  absl::Status Execute(const internal::ApprovalRecord& record);

  // Uses the grant `approval` (tenants/{t}/approvals/{id}) for the caller's
  // `action` on `resource` of `key`: once, by the requester, while the key's
  // policy and quorum are those the approvers saw. FailedPrecondition
  // (InvalidArgument for a malformed name) saying what is wrong.
  absl::Status Redeem(GuardedCall& call, const KeyName& key, policy::Action action,
                      const std::string& resource, const std::string& approval);

  access::ApprovalBook* book() const { return book_; }

 private:
  // SHA-256 over the key's normalized policy and its quorum; for an escrow
  // export also over its versions (number, state, key check value) and its
  // primary version, so a grant no longer works once other material came
  // in (an import of new material, then a rewrap onto it, would otherwise
  // turn an approved export into one under someone else's material).
  absl::StatusOr<std::string> KeyFingerprint(const KeyName& key, bool with_material);

  KeyLifecycle* const lifecycle_;
  access::Authorizer* const authorizer_;
  access::ApprovalBook* const book_;
};

// Validates `policy_json` as the policy of `key` and stores it (normalized)
// with the optional new quorum. Shared by SetKeyPolicy and approved
// SetKeyPolicy requests.
absl::StatusOr<clavis::v1::Key> ApplyKeyPolicy(KeyLifecycle* lifecycle, const KeyName& key,
                                               const std::string& policy_json,
                                               std::optional<uint32_t> approvals_required);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVICE_APPROVAL_GATE_H_
