#include "kms/service/approval_gate.h"

#include "absl/strings/str_cat.h"
#include "clavis/v1/access_control.pb.h"
#include "clavis/v1/key_admin.pb.h"
#include "crypto/kdf.h"
#include "kms/access/authorizer.h"
#include "kms/policy/policy_parser.h"
#include "kms/service/proto_convert.h"

namespace clavis::kms {

ApprovalGate::ApprovalGate(KeyLifecycle* lifecycle, access::Authorizer* authorizer,
                           access::ApprovalBook* book)
    : lifecycle_(lifecycle), authorizer_(authorizer), book_(book) {}

namespace {

bool IsEscrowExport(absl::string_view action) {
  return action == policy::ActionName(policy::Action::kExportEscrow);
}

}  // namespace

absl::StatusOr<std::string> ApprovalGate::KeyFingerprint(const KeyName& key, bool with_material) {
  auto current = lifecycle_->GetKey(key);
  if (!current.ok()) return current.status();
  auto policy = authorizer_->PolicyOf(key);
  if (!policy.ok()) return policy.status();
  const std::string json = *policy == nullptr ? "" : policy::PolicyToJson(**policy);
  std::string fingerprinted =
      absl::StrCat(json.size(), ":", json, "|", current->approvals_required());
  if (with_material) {
    absl::StrAppend(&fingerprinted, "|primary ", current->primary_version());
    for (const auto& v : current->versions()) {
      absl::StrAppend(&fingerprinted, "|", v.version(), " ", v.state(), " ", v.key_check_value());
    }
  }
  return crypto::Sha256(fingerprinted);
}

absl::Status ApprovalGate::Check(GuardedCall& call, grpc::ServerContext* context,
                                 const KeyName& key, policy::Action action,
                                 const std::string& resource,
                                 const google::protobuf::Message& payload) {
  auto current = lifecycle_->GetKey(key);
  // A missing key: the call gives its own NOT_FOUND. Any other error must
  // not let a destructive call through ungated.
  if (absl::IsNotFound(current.status())) return absl::OkStatus();
  if (!current.ok()) return current.status();
  if (current->approvals_required() < 2) return absl::OkStatus();
  return RequestApproval(
      call, context, key, action, resource, payload, current->approvals_required(),
      // What approvers approve: the whole stored request.
      absl::StrCat(policy::ActionName(action), " on ", resource, ": ", payload.ShortDebugString()));
}

absl::Status ApprovalGate::RequestApproval(GuardedCall& call, grpc::ServerContext* context,
                                           const KeyName& key, policy::Action action,
                                           const std::string& resource,
                                           const google::protobuf::Message& payload,
                                           uint32_t required, const std::string& summary,
                                           const std::string& redeem_command) {
  access::NewApproval request;
  request.key = key;
  request.action = std::string(policy::ActionName(action));
  request.resource = resource;
  request.requester = call.identity().principal;
  request.approvals_required = required;
  request.payload_type = payload.GetDescriptor()->full_name();
  request.payload = payload.SerializeAsString();
  request.summary = summary;
  auto fingerprint = KeyFingerprint(key, IsEscrowExport(request.action));
  if (!fingerprint.ok()) return fingerprint.status();
  request.key_fingerprint = *std::move(fingerprint);
  auto created = book_->Create(request);
  if (!created.ok()) return created.status();
  const std::string name = access::ApprovalName{created->tenant(), created->id()}.ToString();
  context->AddTrailingMetadata(kApprovalRequestMetadata, name);
  const std::string expires = absl::FormatTime(
      "%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(created->expire_time_us()), absl::UTCTimeZone());
  if (!redeem_command.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "approval required: ", key.ToString(), " needs ", required, " approvals for ",
        request.action, "; created approval request ", name, ". Once ", required,
        " principals other than you, allowed ApproveRequest on the key, approve it (clavisctl "
        "approval approve ",
        name, "), run `", redeem_command, " --approval ", name, "` before ", expires));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "approval required: ", key.ToString(), " needs ", required, " approvals for ", request.action,
      "; created approval request ", name, ". It runs once ", required,
      " principals other than you, allowed ApproveRequest on the key, approve it "
      "(clavisctl approval approve ",
      name, ") before it expires at ",
      absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixMicros(created->expire_time_us()),
                       absl::UTCTimeZone())));
}

absl::Status ApprovalGate::Execute(const internal::ApprovalRecord& record) {
  auto fingerprint =
      KeyFingerprint(KeyName{record.tenant(), record.key_id()}, IsEscrowExport(record.action()));
  if (!fingerprint.ok()) return fingerprint.status();
  if (*fingerprint != record.key_fingerprint()) {
    return absl::FailedPreconditionError(
        "not run: the key's policy or approvals_required changed after this request was made; "
        "the approvals were for the situation before, so make the request again");
  }
  const std::string& type = record.payload_type();
  if (type == clavis::v1::ScheduleDestructionRequest::descriptor()->full_name()) {
    clavis::v1::ScheduleDestructionRequest r;
    if (!r.ParseFromString(record.payload())) return absl::DataLossError("damaged request");
    auto name = ParseKeyName(r.name());
    auto window = ToDuration(r.pending_window(), "pending_window");
    if (!name.ok()) return name.status();
    if (!window.ok()) return window.status();
    return lifecycle_->ScheduleKeyDestruction(*name, OptionalWindow(*window)).status();
  }
  if (type == clavis::v1::ScheduleVersionDestructionRequest::descriptor()->full_name()) {
    clavis::v1::ScheduleVersionDestructionRequest r;
    if (!r.ParseFromString(record.payload())) return absl::DataLossError("damaged request");
    auto name = ParseKeyVersionName(r.name());
    auto window = ToDuration(r.pending_window(), "pending_window");
    if (!name.ok()) return name.status();
    if (!window.ok()) return window.status();
    return lifecycle_->ScheduleKeyVersionDestruction(*name, OptionalWindow(*window)).status();
  }
  if (type == clavis::v1::ScheduleSegmentDestructionRequest::descriptor()->full_name()) {
    clavis::v1::ScheduleSegmentDestructionRequest r;
    if (!r.ParseFromString(record.payload())) return absl::DataLossError("damaged request");
    auto name = ParseSegmentName(r.name());
    auto window = ToDuration(r.pending_window(), "pending_window");
    if (!name.ok()) return name.status();
    if (!window.ok()) return window.status();
    return lifecycle_->ScheduleSegmentDestruction(*name, OptionalWindow(*window)).status();
  }
  if (type == clavis::v1::SetKeyPolicyRequest::descriptor()->full_name()) {
    clavis::v1::SetKeyPolicyRequest r;
    if (!r.ParseFromString(record.payload())) return absl::DataLossError("damaged request");
    auto name = ParseKeyName(r.key());
    if (!name.ok()) return name.status();
    std::optional<uint32_t> quorum;
    if (r.has_approvals_required()) quorum = r.approvals_required();
    return ApplyKeyPolicy(lifecycle_, *name, r.policy(), quorum).status();
  }
  if (type == clavis::v1::ExportEscrowRequest::descriptor()->full_name()) {
    // Granted: the bundle goes to the requester alone, when they redeem it.
    return absl::OkStatus();
  }
  return absl::InternalError(absl::StrCat("approval request holds an unknown call type ", type));
}

absl::Status ApprovalGate::Redeem(GuardedCall& call, const KeyName& key, policy::Action action,
                                  const std::string& resource, const std::string& approval) {
  auto name = access::ParseApprovalName(approval);
  if (!name.ok()) return name.status();
  if (name->tenant != key.tenant) {
    return absl::FailedPreconditionError(
        absl::StrCat("approval ", approval, " belongs to another tenant than ", key.ToString()));
  }
  auto record = book_->Get(*name);
  if (!record.ok()) return record.status();
  auto fingerprint = KeyFingerprint(key, IsEscrowExport(policy::ActionName(action)));
  if (!fingerprint.ok()) return fingerprint.status();
  if (record->key_id() != key.key_id || *fingerprint != record->key_fingerprint()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "approval ", approval,
        " cannot be used: the key's policy, approvals_required or versions (material) changed "
        "after it was requested (or it is for another key); request a new one"));
  }
  return book_->Redeem(*name, call.identity().principal, policy::ActionName(action), resource)
      .status();
}

absl::StatusOr<clavis::v1::Key> ApplyKeyPolicy(KeyLifecycle* lifecycle, const KeyName& key,
                                               const std::string& policy_json,
                                               std::optional<uint32_t> approvals_required) {
  auto parsed = access::ParseKeyPolicy(policy_json, key);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("policy: ", parsed.status().message()));
  }
  KeyAccessUpdate update;
  update.policy_json = policy::PolicyToJson(*parsed);
  update.approvals_required = approvals_required;
  return lifecycle->UpdateKeyAccess(key, update);
}

}  // namespace clavis::kms
