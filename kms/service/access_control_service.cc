#include "kms/service/access_control_service.h"

#include "absl/strings/str_cat.h"
#include "kms/policy/policy_parser.h"
#include "kms/policy/simulator.h"
#include "kms/policy/widening.h"
#include "kms/service/proto_convert.h"

namespace clavis::kms {
namespace {

using policy::Action;

clavis::v1::ApprovalRequest ToProto(const internal::ApprovalRecord& r) {
  clavis::v1::ApprovalRequest out;
  out.set_name(access::ApprovalName{r.tenant(), r.id()}.ToString());
  out.set_key(KeyName{r.tenant(), r.key_id()}.ToString());
  out.set_action(r.action());
  out.set_resource(r.resource());
  out.set_requester(r.requester());
  for (const auto& a : r.approvers()) out.add_approvers(a);
  out.set_approvals_required(r.approvals_required());
  out.set_state(static_cast<clavis::v1::ApprovalState>(r.state()));
  *out.mutable_create_time() = ToTimestamp(absl::FromUnixMicros(r.create_time_us()));
  *out.mutable_expire_time() = ToTimestamp(absl::FromUnixMicros(r.expire_time_us()));
  out.set_result_code(r.result_code());
  out.set_result_message(r.result_message());
  out.set_summary(r.summary());
  if (!r.denied_by().empty()) {
    out.set_denied_by(r.denied_by());
    out.set_deny_reason(r.deny_reason());
    *out.mutable_deny_time() = ToTimestamp(absl::FromUnixMicros(r.deny_time_us()));
  }
  return out;
}

// The audit record of `call` names `rpc` instead of the policy action its
// authorization recorded: a validation is not a SetPolicy and a denial not
// an approval, though each needs that right. (TakeItemAudit resets the
// recorded action to the RPC's name.)
void AuditAsTheRpc(GuardedCall& call, const std::string& resource) {
  (void)call.TakeItemAudit();
  call.SetResource(resource);
}

}  // namespace

AccessControlService::AccessControlService(KeyLifecycle* lifecycle, AccessComponents access,
                                           ApprovalGate* approvals, const Clock* clock,
                                           std::string server_version)
    : lifecycle_(lifecycle),
      access_(access),
      approvals_(approvals),
      clock_(clock),
      server_version_(std::move(server_version)) {}

grpc::Status AccessControlService::WhoAmI(Ctx* ctx, const clavis::v1::WhoAmIRequest*,
                                          clavis::v1::WhoAmIResponse* response) {
  return RunGuarded(access_, ctx, "WhoAmI", [&](GuardedCall& call) -> absl::Status {
    response->set_principal(call.identity().principal);
    for (const auto& g : call.identity().groups) response->add_groups(g);
    response->set_method(auth::AuthMethodName(call.identity().method));
    response->set_peer(call.peer());
    response->set_server_version(server_version_);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> AccessControlService::PolicyJson(const KeyName& key) {
  auto policy = access_.authorizer->PolicyOf(key);
  if (!policy.ok()) return policy.status();
  if (*policy == nullptr) return std::string();
  return policy::PolicyToJson(**policy);
}

grpc::Status AccessControlService::GetKeyPolicy(Ctx* ctx, const clavis::v1::GetKeyPolicyRequest* r,
                                                clavis::v1::KeyPolicy* response) {
  return RunGuarded(access_, ctx, "GetKeyPolicy", [&](GuardedCall& call) -> absl::Status {
    call.SetResource(r->key());
    auto key = ParseKeyName(r->key());
    if (!key.ok()) return key.status();
    if (auto s = call.AuthorizeKey(Action::kGetPolicy, *key); !s.ok()) return s;
    auto current = lifecycle_->GetKey(*key);
    if (!current.ok()) return current.status();
    auto json = PolicyJson(*key);
    if (!json.ok()) return json.status();
    response->set_key(key->ToString());
    response->set_policy(*json);
    response->set_approvals_required(current->approvals_required());
    return absl::OkStatus();
  });
}

absl::StatusOr<AccessControlService::PolicyChange> AccessControlService::PlanPolicyChange(
    GuardedCall& call, const clavis::v1::SetKeyPolicyRequest& r) {
  call.SetResource(r.key());
  auto key = ParseKeyName(r.key());
  if (!key.ok()) return key.status();
  if (auto s = call.AuthorizeKey(Action::kSetPolicy, *key); !s.ok()) return s;
  auto current = lifecycle_->GetKey(*key);
  if (!current.ok()) return current.status();
  auto proposed = access::ParseKeyPolicy(r.policy(), *key);
  if (!proposed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("policy: ", proposed.status().message()));
  }
  if (r.has_approvals_required() && r.approvals_required() > kMaxApprovalsRequired) {
    return absl::InvalidArgumentError(
        absl::StrCat("approvals_required must be at most ", kMaxApprovalsRequired));
  }
  auto old_policy = access_.authorizer->PolicyOf(*key);
  if (!old_policy.ok()) return old_policy.status();
  PolicyChange change{*key, *std::move(proposed), current->approvals_required()};
  if (r.has_approvals_required()) change.new_quorum = r.approvals_required();
  change.widens = *old_policy == nullptr || policy::WidensAccess(**old_policy, change.proposed);
  change.lowers_quorum =
      change.new_quorum.has_value() && *change.new_quorum < change.current_quorum;
  return change;
}

grpc::Status AccessControlService::SetKeyPolicy(Ctx* ctx, const clavis::v1::SetKeyPolicyRequest* r,
                                                clavis::v1::KeyPolicy* response) {
  return RunGuarded(access_, ctx, "SetKeyPolicy", [&](GuardedCall& call) -> absl::Status {
    auto change = PlanPolicyChange(call, *r);
    if (!change.ok()) return change.status();
    const KeyName& key = change->key;
    if (change->NeedsApproval()) {
      return approvals_->RequestApproval(
          call, ctx, key, Action::kSetPolicy, key.ToString(), *r, change->current_quorum,
          // Approvers see exactly what they approve.
          absl::StrCat("SetPolicy on ", key.ToString(), change->widens ? " (widens access)" : "",
                       change->lowers_quorum ? " (lowers approvals_required)" : "",
                       r->has_approvals_required()
                           ? absl::StrCat("; new approvals_required: ", r->approvals_required())
                           : "",
                       "; new policy: ", policy::PolicyToJson(change->proposed)));
    }
    if (change->proposed.allow_admin_and_data_to_same_principal) {
      if (auto s = call.audit()->Alert(
              call.identity().principal, call.peer(), "SeparationOfDutiesOverride", key.ToString(),
              "policy set that gives one principal both administrative and data-plane rights");
          !s.ok()) {
        return s;
      }
    }
    auto updated = ApplyKeyPolicy(lifecycle_, key, r->policy(), change->new_quorum);
    if (!updated.ok()) return updated.status();
    response->set_key(key.ToString());
    response->set_policy(policy::PolicyToJson(change->proposed));
    response->set_approvals_required(updated->approvals_required());
    return absl::OkStatus();
  });
}

grpc::Status AccessControlService::ValidateKeyPolicy(
    Ctx* ctx, const clavis::v1::SetKeyPolicyRequest* r,
    clavis::v1::ValidateKeyPolicyResponse* response) {
  return RunGuarded(access_, ctx, "ValidateKeyPolicy", [&](GuardedCall& call) -> absl::Status {
    auto change = PlanPolicyChange(call, *r);
    AuditAsTheRpc(call, r->key());
    if (!change.ok()) return change.status();
    response->set_key(change->key.ToString());
    response->set_policy(policy::PolicyToJson(change->proposed));
    response->set_approvals_required(change->new_quorum.value_or(change->current_quorum));
    response->set_needs_approval(change->NeedsApproval());
    if (change->NeedsApproval()) {
      if (change->widens) response->add_approval_reasons("widens access");
      if (change->lowers_quorum) response->add_approval_reasons("lowers approvals_required");
    }
    return absl::OkStatus();
  });
}

grpc::Status AccessControlService::SimulatePolicy(Ctx* ctx,
                                                  const clavis::v1::SimulatePolicyRequest* r,
                                                  clavis::v1::SimulatePolicyResponse* response) {
  return RunGuarded(access_, ctx, "SimulatePolicy", [&](GuardedCall& call) -> absl::Status {
    call.SetResource(r->key());
    auto key = ParseKeyName(r->key());
    if (!key.ok()) return key.status();
    if (auto s = call.AuthorizeKey(Action::kGetPolicy, *key); !s.ok()) return s;
    std::string document = r->draft_policy();
    if (document.empty()) {
      auto json = PolicyJson(*key);
      if (!json.ok()) return json.status();
      if (json->empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat(key->ToString(), " has no policy; pass draft_policy to simulate one"));
      }
      document = *std::move(json);
    }
    absl::Time when = clock_->Now();
    if (r->has_time()) {
      auto t = ToTime(r->time(), "time");
      if (!t.ok()) return t.status();
      when = *t;
    }
    std::optional<std::string> segment;
    if (!r->segment().empty()) segment = r->segment();
    auto result = policy::Simulate(
        document, r->principal(), std::vector<std::string>(r->groups().begin(), r->groups().end()),
        r->action(), r->resource().empty() ? key->ToString() : r->resource(), segment,
        std::map<std::string, std::string>(r->encryption_context().begin(),
                                           r->encryption_context().end()),
        when);
    if (!result.ok()) return result.status();
    response->set_allowed(result->decision.allowed);
    response->set_reason(result->decision.reason);
    response->set_statement_index(result->decision.statement_index.has_value()
                                      ? static_cast<int32_t>(*result->decision.statement_index)
                                      : -1);
    response->set_sid(result->decision.sid);
    return absl::OkStatus();
  });
}

absl::StatusOr<internal::ApprovalRecord> AccessControlService::AuthorizedApproval(
    GuardedCall& call, const std::string& raw_name, Action action, bool requester_may) {
  call.SetResource(raw_name);
  auto name = access::ParseApprovalName(raw_name);
  if (!name.ok()) return name.status();
  if (call.identity().method != auth::AuthMethod::kInsecureDev &&
      call.identity().tenant != name->tenant) {
    return absl::PermissionDeniedError(
        absl::StrCat("denied: ", call.identity().principal, " may not ", policy::ActionName(action),
                     " on ", raw_name, " (cross-tenant access is never allowed)"));
  }
  auto record = approvals_->book()->Get(*name);
  if (!record.ok()) return record.status();
  if (requester_may && call.identity().tenant == record->tenant() &&
      record->requester() == call.identity().principal) {
    return record;
  }
  // Decided on what the request is about (its key, version or segment), so
  // segment-scoped statements apply to approvals of segment actions.
  const KeyName key{record->tenant(), record->key_id()};
  std::optional<std::string> segment;
  std::string resource = key.ToString();
  if (auto parsed = ParseSegmentName(record->resource()); parsed.ok() && parsed->key == key) {
    segment = parsed->segment;
    resource = record->resource();
  } else if (auto version = ParseKeyVersionName(record->resource());
             version.ok() && version->key == key) {
    resource = record->resource();
  }
  absl::Status allowed = call.AuthorizeKey(action, key, resource, segment);
  call.SetResource(raw_name);  // the audit names the request, the policy its key
  if (!allowed.ok()) return allowed;
  return record;
}

grpc::Status AccessControlService::ListApprovalRequests(
    Ctx* ctx, const clavis::v1::ListApprovalRequestsRequest* r,
    clavis::v1::ListApprovalRequestsResponse* response) {
  return RunGuarded(access_, ctx, "ListApprovalRequests", [&](GuardedCall& call) -> absl::Status {
    call.SetResource(r->key());
    auto key = ParseKeyName(r->key());
    if (!key.ok()) return key.status();
    // Authorization first: a missing key is NOT_FOUND only to those who may
    // know (tenant administrators); to others it looks like any refusal.
    if (auto s = call.AuthorizeKey(Action::kGetPolicy, *key); !s.ok()) return s;
    if (auto s = lifecycle_->GetKey(*key).status(); !s.ok()) return s;
    auto list = approvals_->book()->List(*key, r->include_finished());
    if (!list.ok()) return list.status();
    for (const auto& record : *list) *response->add_requests() = ToProto(record);
    return absl::OkStatus();
  });
}

grpc::Status AccessControlService::GetApprovalRequest(
    Ctx* ctx, const clavis::v1::GetApprovalRequestRequest* r,
    clavis::v1::ApprovalRequest* response) {
  return RunGuarded(access_, ctx, "GetApprovalRequest", [&](GuardedCall& call) -> absl::Status {
    auto record = AuthorizedApproval(call, r->name(), Action::kGetPolicy);
    if (!record.ok()) return record.status();
    record->clear_payload();
    *response = ToProto(*record);
    return absl::OkStatus();
  });
}

grpc::Status AccessControlService::ApproveRequest(Ctx* ctx,
                                                  const clavis::v1::ApproveRequestRequest* r,
                                                  clavis::v1::ApprovalRequest* response) {
  return RunGuarded(access_, ctx, "ApproveRequest", [&](GuardedCall& call) -> absl::Status {
    auto record = AuthorizedApproval(call, r->name(), Action::kApproveRequest);
    if (!record.ok()) return record.status();
    auto name = access::ParseApprovalName(r->name());
    auto approved = approvals_->book()->Approve(*name, call.identity().principal);
    if (!approved.ok()) return approved.status();
    if (approved->run_now) {
      // The quorum is reached: run the stored call once, record its outcome
      // in the request and in the audit log (as its own record).
      absl::Status result = approvals_->Execute(approved->record);
      // Audited before anything else can fail: the action has run.
      if (auto s = call.AuditItem(approved->record.action(), approved->record.resource(), "",
                                  nullptr, result, 0);
          !s.ok()) {
        (void)approvals_->book()->Complete(*name, result);
        return s;
      }
      if (auto s = approvals_->book()->Complete(*name, result); !s.ok()) return s;
    }
    auto current = approvals_->book()->Get(*name);
    if (!current.ok()) return current.status();
    current->clear_payload();
    *response = ToProto(*current);
    return absl::OkStatus();
  });
}

grpc::Status AccessControlService::DenyRequest(Ctx* ctx, const clavis::v1::DenyRequestRequest* r,
                                               clavis::v1::ApprovalRequest* response) {
  return RunGuarded(access_, ctx, "DenyRequest", [&](GuardedCall& call) -> absl::Status {
    auto record =
        AuthorizedApproval(call, r->name(), Action::kApproveRequest, /*requester_may=*/true);
    AuditAsTheRpc(call, r->name());
    if (!record.ok()) return record.status();
    auto name = access::ParseApprovalName(r->name());
    if (!name.ok()) return name.status();
    auto denied = approvals_->book()->Deny(*name, call.identity().principal, r->reason());
    if (!denied.ok()) return denied.status();
    denied->clear_payload();
    *response = ToProto(*denied);
    return absl::OkStatus();
  });
}

}  // namespace clavis::kms
