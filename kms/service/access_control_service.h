// AccessControlService: the gRPC face of key policies, the policy simulator
// and M-of-N approvals (proto/clavis/v1/access_control.proto). Thin: the
// decisions are made by kms/access and kms/policy.
#ifndef CLAVIS_KMS_SERVICE_ACCESS_CONTROL_SERVICE_H_
#define CLAVIS_KMS_SERVICE_ACCESS_CONTROL_SERVICE_H_

#include <optional>
#include <string>

#include "clavis/v1/access_control.grpc.pb.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/policy/policy.h"
#include "kms/service/approval_gate.h"
#include "kms/service/guarded_call.h"

namespace clavis::kms {

class AccessControlService final : public clavis::v1::AccessControl::Service {
 public:
  // REQUIRES: everything outlives the service. `server_version` is what
  // WhoAmI reports (the project version clavisd was built as).
  AccessControlService(KeyLifecycle* lifecycle, AccessComponents access, ApprovalGate* approvals,
                       const Clock* clock, std::string server_version);

  using Ctx = grpc::ServerContext;
  grpc::Status WhoAmI(Ctx*, const clavis::v1::WhoAmIRequest*, clavis::v1::WhoAmIResponse*) override;
  grpc::Status GetKeyPolicy(Ctx*, const clavis::v1::GetKeyPolicyRequest*,
                            clavis::v1::KeyPolicy*) override;
  grpc::Status SetKeyPolicy(Ctx*, const clavis::v1::SetKeyPolicyRequest*,
                            clavis::v1::KeyPolicy*) override;
  grpc::Status ValidateKeyPolicy(Ctx*, const clavis::v1::SetKeyPolicyRequest*,
                                 clavis::v1::ValidateKeyPolicyResponse*) override;
  grpc::Status SimulatePolicy(Ctx*, const clavis::v1::SimulatePolicyRequest*,
                              clavis::v1::SimulatePolicyResponse*) override;
  grpc::Status ListApprovalRequests(Ctx*, const clavis::v1::ListApprovalRequestsRequest*,
                                    clavis::v1::ListApprovalRequestsResponse*) override;
  grpc::Status GetApprovalRequest(Ctx*, const clavis::v1::GetApprovalRequestRequest*,
                                  clavis::v1::ApprovalRequest*) override;
  grpc::Status ApproveRequest(Ctx*, const clavis::v1::ApproveRequestRequest*,
                              clavis::v1::ApprovalRequest*) override;
  grpc::Status DenyRequest(Ctx*, const clavis::v1::DenyRequestRequest*,
                           clavis::v1::ApprovalRequest*) override;

 private:
  // What a SetKeyPolicy request would do: checked exactly as SetKeyPolicy
  // checks it (SetPolicy on the key, the parser, the quorum bound).
  struct PolicyChange {
    KeyName key;
    policy::Policy proposed;
    uint32_t current_quorum = 0;
    std::optional<uint32_t> new_quorum;
    bool widens = false;
    bool lowers_quorum = false;
    bool NeedsApproval() const { return current_quorum >= 2 && (widens || lowers_quorum); }
  };
  absl::StatusOr<PolicyChange> PlanPolicyChange(GuardedCall& call,
                                                const clavis::v1::SetKeyPolicyRequest& r);
  // The stored policy (normalized JSON; empty for a policy-less key).
  absl::StatusOr<std::string> PolicyJson(const KeyName& key);
  // Reads an approval request and authorizes `action` on its key. With
  // `requester_may`, the request's own requester needs no policy right
  // (withdrawing one's own request only ever stops something).
  absl::StatusOr<internal::ApprovalRecord> AuthorizedApproval(GuardedCall& call,
                                                              const std::string& name,
                                                              policy::Action action,
                                                              bool requester_may = false);

  KeyLifecycle* const lifecycle_;
  const AccessComponents access_;
  ApprovalGate* const approvals_;
  const Clock* const clock_;
  const std::string server_version_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_SERVICE_ACCESS_CONTROL_SERVICE_H_
