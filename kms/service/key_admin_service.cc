#include "kms/service/key_admin_service.h"

#include <functional>

#include "absl/strings/str_cat.h"
#include "kms/policy/policy_parser.h"
#include "kms/policy/separation_of_duties.h"
#include "kms/service/grpc_status.h"
#include "kms/service/proto_convert.h"

namespace clavis::kms {
namespace {

using policy::Action;

const KeyName& KeyOf(const KeyName& n) { return n; }
const KeyName& KeyOf(const KeyVersionName& n) { return n.key; }
const KeyName& KeyOf(const SegmentName& n) { return n.key; }
std::optional<std::string> SegmentOf(const KeyName&) { return std::nullopt; }
std::optional<std::string> SegmentOf(const KeyVersionName&) { return std::nullopt; }
std::optional<std::string> SegmentOf(const SegmentName& n) { return n.segment; }

absl::StatusOr<KeyName> ParseName(absl::string_view s, KeyName*) { return ParseKeyName(s); }

absl::StatusOr<ImportWrappingAlgorithm> FromProto(clavis::v1::ImportWrappingAlgorithm a) {
  switch (a) {
    case clavis::v1::RSAES_OAEP_SHA_256:
      return ImportWrappingAlgorithm::kRsaesOaepSha256;
    case clavis::v1::RSA_AES_KEY_WRAP_SHA_256:
      return ImportWrappingAlgorithm::kRsaAesKeyWrapSha256;
    default:
      return absl::InvalidArgumentError(
          "wrapping_algorithm is required: RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256");
  }
}

absl::StatusOr<int> ModulusBits(clavis::v1::ImportWrappingKeySpec spec) {
  switch (spec) {
    case clavis::v1::IMPORT_WRAPPING_KEY_SPEC_UNSPECIFIED:
    case clavis::v1::RSA_3072:
      return kImportWrappingKeyBits3072;
    case clavis::v1::RSA_4096:
      return kImportWrappingKeyBits4096;
    default:
      return absl::InvalidArgumentError("wrapping_key_spec must be RSA_3072 or RSA_4096");
  }
}
absl::StatusOr<KeyVersionName> ParseName(absl::string_view s, KeyVersionName*) {
  return ParseKeyVersionName(s);
}
absl::StatusOr<SegmentName> ParseName(absl::string_view s, SegmentName*) {
  return ParseSegmentName(s);
}

}  // namespace

// Parse the name, authorize `action` on it, optionally turn the call into an
// approval request, run it.
template <typename Name, typename Out>
grpc::Status KeyAdminService::Guarded(Ctx* ctx, const char* rpc, const std::string& raw_name,
                                      Action action,
                                      const std::function<absl::StatusOr<Out>(const Name&)>& run,
                                      Out* response, const google::protobuf::Message* payload) {
  return RunGuarded(access_, ctx, rpc, [&](GuardedCall& call) -> absl::Status {
    call.SetResource(raw_name);
    auto name = ParseName(raw_name, static_cast<Name*>(nullptr));
    if (!name.ok()) return name.status();
    if (auto s = call.AuthorizeKey(action, KeyOf(*name), name->ToString(), SegmentOf(*name));
        !s.ok()) {
      return s;
    }
    if (payload != nullptr) {
      if (auto s = approvals_->Check(call, ctx, KeyOf(*name), action, name->ToString(), *payload);
          !s.ok()) {
        return s;
      }
    }
    auto result = run(*name);
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

namespace {

// SegmentRequest.if_primary_version means something to RotateSegment only.
absl::Status RefuseCompareAndSet(const clavis::v1::SegmentRequest& r) {
  if (r.if_primary_version() == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "if_primary_version is for RotateSegment only; leave it unset here");
}

}  // namespace

KeyAdminService::KeyAdminService(KeyLifecycle* lifecycle, KeyImporter* importer,
                                 EscrowExporter* escrow, AccessComponents access,
                                 ApprovalGate* approvals)
    : lifecycle_(lifecycle),
      importer_(importer),
      escrow_(escrow),
      access_(access),
      approvals_(approvals) {}

absl::StatusOr<std::string> KeyAdminService::InitialPolicy(GuardedCall& call,
                                                           const clavis::v1::CreateKeyRequest& r,
                                                           const KeyName& key) {
  if (!r.policy().empty()) {
    if (r.key_administrators_size() > 0 || r.key_users_size() > 0) {
      return absl::InvalidArgumentError(
          "give either policy or key_administrators/key_users, not both");
    }
    auto parsed = policy::ParsePolicy(r.policy(), policy::PolicyScope{key.tenant, key.key_id});
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("policy: ", parsed.status().message()));
    }
    if (parsed->allow_admin_and_data_to_same_principal) {
      if (auto s = call.audit()->Alert(
              call.identity().principal, call.peer(), "SeparationOfDutiesOverride", key.ToString(),
              "key created with a policy that gives one principal both administrative and "
              "data-plane rights");
          !s.ok()) {
        return s;
      }
    }
    return policy::PolicyToJson(*parsed);
  }
  std::vector<std::string> admins(r.key_administrators().begin(), r.key_administrators().end());
  std::vector<std::string> users(r.key_users().begin(), r.key_users().end());
  if (admins.empty()) {
    // Development mode has no principal to name: the key gets no policy
    // (only the development identity and tenant administrators reach it).
    if (call.identity().method == auth::AuthMethod::kInsecureDev) {
      if (!users.empty()) {
        return absl::InvalidArgumentError(
            "key_users needs key_administrators in development mode (there is no caller "
            "principal to make administrator)");
      }
      return std::string();
    }
    admins.push_back(call.identity().principal);
  }
  auto policy = policy::DefaultKeyPolicy(key, admins, users);
  if (!policy.ok()) return policy.status();
  return policy::PolicyToJson(*policy);
}

grpc::Status KeyAdminService::CreateKey(Ctx* ctx, const clavis::v1::CreateKeyRequest* r,
                                        clavis::v1::Key* response) {
  return RunGuarded(access_, ctx, "CreateKey", [&](GuardedCall& call) -> absl::Status {
    call.SetResource(r->parent());
    auto tenant = ParseTenantName(r->parent());
    if (!tenant.ok()) return tenant.status();
    if (auto s = call.AuthorizeTenant(Action::kCreateKey, *tenant); !s.ok()) return s;
    if (auto s = ValidateKeyId(r->key_id()); !s.ok()) return s;
    const KeyName key{*tenant, r->key_id()};
    call.SetResource(key.ToString());
    CreateKeyParams p;
    p.tenant = *tenant;
    p.key_id = r->key_id();
    p.description = r->description();
    p.labels.insert(r->labels().begin(), r->labels().end());
    auto period = ToDuration(r->rotation_period(), "rotation_period");
    if (!period.ok()) return period.status();
    p.rotation_period = *period;
    if (r->has_next_rotation_time()) {
      auto next = ToTime(r->next_rotation_time(), "next_rotation_time");
      if (!next.ok()) return next.status();
      p.next_rotation_time = *next;
    }
    p.require_explicit_segments = r->require_explicit_segments();
    p.version_retirement = r->version_retirement();
    auto segment_period = ToDuration(r->segment_rotation_period(), "segment_rotation_period");
    if (!segment_period.ok()) return segment_period.status();
    p.segment_rotation_period = *segment_period;
    auto policy = InitialPolicy(call, *r, key);
    if (!policy.ok()) return policy.status();
    p.policy_json = *std::move(policy);
    p.approvals_required = r->approvals_required();
    if (r->origin() != clavis::v1::KEY_ORIGIN_UNSPECIFIED) p.origin = r->origin();
    auto created = lifecycle_->CreateKey(p);
    if (!created.ok()) return created.status();
    *response = *std::move(created);
    return absl::OkStatus();
  });
}

grpc::Status KeyAdminService::GetKey(Ctx* ctx, const clavis::v1::GetKeyRequest* r,
                                     clavis::v1::Key* response) {
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "GetKey", r->name(), Action::kGetKey,
      [&](const KeyName& n) { return lifecycle_->GetKey(n); }, response);
}

grpc::Status KeyAdminService::ListKeys(Ctx* ctx, const clavis::v1::ListKeysRequest* r,
                                       clavis::v1::ListKeysResponse* response) {
  return RunGuarded(access_, ctx, "ListKeys", [&](GuardedCall& call) -> absl::Status {
    call.SetResource(r->parent());
    auto tenant = ParseTenantName(r->parent());
    if (!tenant.ok()) return tenant.status();
    if (auto s = call.AuthorizeTenant(Action::kListKeys, *tenant); !s.ok()) return s;
    auto size = PageSize(r->page_size());
    if (!size.ok()) return size.status();
    auto start = DecodePageToken(r->page_token());
    if (!start.ok()) return start.status();
    std::string next;
    auto keys = lifecycle_->ListKeys(*tenant, *start, *size, &next);
    if (!keys.ok()) return keys.status();
    for (auto& k : *keys) *response->add_keys() = std::move(k);
    response->set_next_page_token(EncodePageToken(next));
    return absl::OkStatus();
  });
}

grpc::Status KeyAdminService::RotateKey(Ctx* ctx, const clavis::v1::RotateKeyRequest* r,
                                        clavis::v1::Key* response) {
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "RotateKey", r->name(), Action::kRotate,
      [&](const KeyName& n) -> absl::StatusOr<clavis::v1::Key> {
        std::optional<absl::Time> if_next;
        if (r->has_if_next_rotation_time()) {
          auto t = ToTime(r->if_next_rotation_time(), "if_next_rotation_time");
          if (!t.ok()) return t.status();
          if_next = *t;
        }
        return lifecycle_->RotateKey(n, if_next);
      },
      response);
}

grpc::Status KeyAdminService::EnableKey(Ctx* ctx, const clavis::v1::KeyNameRequest* r,
                                        clavis::v1::Key* response) {
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "EnableKey", r->name(), Action::kEnable,
      [&](const KeyName& n) { return lifecycle_->EnableKey(n); }, response);
}

grpc::Status KeyAdminService::DisableKey(Ctx* ctx, const clavis::v1::KeyNameRequest* r,
                                         clavis::v1::Key* response) {
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "DisableKey", r->name(), Action::kDisable,
      [&](const KeyName& n) { return lifecycle_->DisableKey(n); }, response);
}

grpc::Status KeyAdminService::ScheduleKeyDestruction(
    Ctx* ctx, const clavis::v1::ScheduleDestructionRequest* r, clavis::v1::Key* response) {
  auto window = ToDuration(r->pending_window(), "pending_window");
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "ScheduleKeyDestruction", r->name(), Action::kScheduleDestruction,
      [&](const KeyName& n) -> absl::StatusOr<clavis::v1::Key> {
        if (!window.ok()) return window.status();
        return lifecycle_->ScheduleKeyDestruction(n, OptionalWindow(*window));
      },
      response, window.ok() ? r : nullptr);
}

grpc::Status KeyAdminService::CancelKeyDestruction(Ctx* ctx, const clavis::v1::KeyNameRequest* r,
                                                   clavis::v1::Key* response) {
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "CancelKeyDestruction", r->name(), Action::kCancelDestruction,
      [&](const KeyName& n) { return lifecycle_->CancelKeyDestruction(n); }, response);
}

grpc::Status KeyAdminService::DestroyKey(Ctx* ctx, const clavis::v1::KeyNameRequest* r,
                                         clavis::v1::Key* response) {
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "DestroyKey", r->name(), Action::kDestroy,
      [&](const KeyName& n) { return lifecycle_->DestroyKey(n); }, response);
}

grpc::Status KeyAdminService::UpdateKeySettings(Ctx* ctx,
                                                const clavis::v1::UpdateKeySettingsRequest* r,
                                                clavis::v1::Key* response) {
  KeySettingsUpdate u;
  absl::Status mask = absl::OkStatus();
  if (r->update_mask().paths_size() == 0) {
    mask = absl::InvalidArgumentError(
        "update_mask is empty; name the fields to change (e.g. rotation_period)");
  }
  for (const std::string& path : r->update_mask().paths()) {
    if (!mask.ok()) break;
    if (path == "description") {
      u.description = r->description();
    } else if (path == "labels") {
      u.labels.emplace(r->labels().begin(), r->labels().end());
    } else if (path == "rotation_period") {
      auto period = ToDuration(r->rotation_period(), "rotation_period");
      if (!period.ok())
        mask = period.status();
      else
        u.rotation_period = *period;
    } else if (path == "next_rotation_time") {
      if (r->has_next_rotation_time()) {
        auto next = ToTime(r->next_rotation_time(), "next_rotation_time");
        if (!next.ok())
          mask = next.status();
        else
          u.next_rotation_time = *next;
      } else {
        u.next_rotation_time = absl::InfinitePast();  // cleared
      }
    } else if (path == "require_explicit_segments") {
      u.require_explicit_segments = r->require_explicit_segments();
    } else if (path == "version_retirement") {
      u.version_retirement = r->version_retirement();
    } else if (path == "segment_rotation_period") {
      auto period = ToDuration(r->segment_rotation_period(), "segment_rotation_period");
      if (!period.ok())
        mask = period.status();
      else
        u.segment_rotation_period = *period;
    } else {
      mask = absl::InvalidArgumentError(
          absl::StrCat("update_mask names unknown field ", QuoteForError(path),
                       "; known: description, labels, rotation_period, next_rotation_time, "
                       "require_explicit_segments, version_retirement, segment_rotation_period"));
    }
  }
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "UpdateKeySettings", r->name(), Action::kUpdateSettings,
      [&](const KeyName& n) -> absl::StatusOr<clavis::v1::Key> {
        if (!mask.ok()) return mask;
        return lifecycle_->UpdateKeySettings(n, u);
      },
      response);
}

grpc::Status KeyAdminService::EnableKeyVersion(Ctx* ctx, const clavis::v1::KeyVersionRequest* r,
                                               clavis::v1::Key* response) {
  return Guarded<KeyVersionName, clavis::v1::Key>(
      ctx, "EnableKeyVersion", r->name(), Action::kManageVersions,
      [&](const KeyVersionName& n) { return lifecycle_->EnableKeyVersion(n); }, response);
}

grpc::Status KeyAdminService::DisableKeyVersion(Ctx* ctx, const clavis::v1::KeyVersionRequest* r,
                                                clavis::v1::Key* response) {
  return Guarded<KeyVersionName, clavis::v1::Key>(
      ctx, "DisableKeyVersion", r->name(), Action::kManageVersions,
      [&](const KeyVersionName& n) { return lifecycle_->DisableKeyVersion(n); }, response);
}

grpc::Status KeyAdminService::ScheduleKeyVersionDestruction(
    Ctx* ctx, const clavis::v1::ScheduleVersionDestructionRequest* r, clavis::v1::Key* response) {
  auto window = ToDuration(r->pending_window(), "pending_window");
  return Guarded<KeyVersionName, clavis::v1::Key>(
      ctx, "ScheduleKeyVersionDestruction", r->name(), Action::kManageVersions,
      [&](const KeyVersionName& n) -> absl::StatusOr<clavis::v1::Key> {
        if (!window.ok()) return window.status();
        return lifecycle_->ScheduleKeyVersionDestruction(n, OptionalWindow(*window));
      },
      response, window.ok() ? r : nullptr);
}

grpc::Status KeyAdminService::CancelKeyVersionDestruction(Ctx* ctx,
                                                          const clavis::v1::KeyVersionRequest* r,
                                                          clavis::v1::Key* response) {
  return Guarded<KeyVersionName, clavis::v1::Key>(
      ctx, "CancelKeyVersionDestruction", r->name(), Action::kManageVersions,
      [&](const KeyVersionName& n) { return lifecycle_->CancelKeyVersionDestruction(n); },
      response);
}

grpc::Status KeyAdminService::MarkKeyVersionCompromised(Ctx* ctx,
                                                        const clavis::v1::KeyVersionRequest* r,
                                                        clavis::v1::Key* response) {
  return Guarded<KeyVersionName, clavis::v1::Key>(
      ctx, "MarkKeyVersionCompromised", r->name(), Action::kManageVersions,
      [&](const KeyVersionName& n) { return lifecycle_->MarkKeyVersionCompromised(n); }, response);
}

grpc::Status KeyAdminService::DestroyKeyVersion(Ctx* ctx, const clavis::v1::KeyVersionRequest* r,
                                                clavis::v1::Key* response) {
  return Guarded<KeyVersionName, clavis::v1::Key>(
      ctx, "DestroyKeyVersion", r->name(), Action::kManageVersions,
      [&](const KeyVersionName& n) { return lifecycle_->DestroyKeyVersion(n); }, response);
}

grpc::Status KeyAdminService::RewrapSegments(Ctx* ctx, const clavis::v1::RewrapSegmentsRequest* r,
                                             clavis::v1::RewrapSegmentsResponse* response) {
  return RunGuarded(access_, ctx, "RewrapSegments", [&](GuardedCall& call) -> absl::Status {
    call.SetResource(r->name());
    auto name = ParseKeyName(r->name());
    if (!name.ok()) return name.status();
    if (auto s = call.AuthorizeKey(Action::kRewrapSegments, *name); !s.ok()) return s;
    if (r->batch_size() < 0 || r->batch_size() > 10000) {
      return absl::InvalidArgumentError("batch_size must be between 0 and 10000");
    }
    auto start = DecodePageToken(r->page_token());
    if (!start.ok()) return start.status();
    const size_t batch = r->batch_size() == 0 ? 1000 : static_cast<size_t>(r->batch_size());
    RewrapProgress progress_value;
    RewrapProgress* progress = &progress_value;
    const absl::Status rewrapped = lifecycle_->RewrapSegments(*name, *start, batch, progress);
    // Every unwrap under a compromised version gets its own record, naming
    // the version and the segment, besides the record of the call: also
    // those that committed before an error stopped the batch.
    for (const auto& use : progress->compromised_uses) {
      if (auto s = call.AuditItem("UnwrapUnderCompromisedVersion",
                                  KeyVersionName{*name, use.key_version}.ToString(), use.segment,
                                  nullptr, absl::OkStatus(), 0);
          !s.ok()) {
        return s;
      }
    }
    if (!rewrapped.ok()) return rewrapped;
    response->set_rewrapped(progress->rewrapped);
    response->set_already_current(progress->already_current);
    response->set_compromised_rewrapped(progress->compromised_uses.size());
    response->set_segments_rotated(progress->segments_rotated);
    response->set_next_page_token(EncodePageToken(progress->next_segment));
    return absl::OkStatus();
  });
}

grpc::Status KeyAdminService::CreateSegment(Ctx* ctx, const clavis::v1::SegmentRequest* r,
                                            clavis::v1::Segment* response) {
  return Guarded<SegmentName, clavis::v1::Segment>(
      ctx, "CreateSegment", r->name(), Action::kCreateSegment,
      [&](const SegmentName& n) -> absl::StatusOr<clavis::v1::Segment> {
        if (auto s = RefuseCompareAndSet(*r); !s.ok()) return s;
        return lifecycle_->CreateSegment(n);
      },
      response);
}

grpc::Status KeyAdminService::GetSegment(Ctx* ctx, const clavis::v1::SegmentRequest* r,
                                         clavis::v1::Segment* response) {
  return Guarded<SegmentName, clavis::v1::Segment>(
      ctx, "GetSegment", r->name(), Action::kGetSegment,
      [&](const SegmentName& n) -> absl::StatusOr<clavis::v1::Segment> {
        if (auto s = RefuseCompareAndSet(*r); !s.ok()) return s;
        return lifecycle_->GetSegment(n);
      },
      response);
}

grpc::Status KeyAdminService::ListSegments(Ctx* ctx, const clavis::v1::ListSegmentsRequest* r,
                                           clavis::v1::ListSegmentsResponse* response) {
  return RunGuarded(access_, ctx, "ListSegments", [&](GuardedCall& call) -> absl::Status {
    call.SetResource(r->parent());
    auto key = ParseKeyName(r->parent());
    if (!key.ok()) return key.status();
    if (auto s = call.AuthorizeKey(Action::kListSegments, *key); !s.ok()) return s;
    auto size = PageSize(r->page_size());
    if (!size.ok()) return size.status();
    auto start = DecodePageToken(r->page_token());
    if (!start.ok()) return start.status();
    if (r->prefix().size() > kMaxSegmentLength) {
      return absl::InvalidArgumentError("prefix is longer than a segment can be");
    }
    std::string next;
    auto segments = lifecycle_->ListSegments(*key, r->prefix(), *start, *size, &next);
    if (!segments.ok()) return segments.status();
    for (auto& s : *segments) *response->add_segments() = std::move(s);
    response->set_next_page_token(EncodePageToken(next));
    return absl::OkStatus();
  });
}

grpc::Status KeyAdminService::RotateSegment(Ctx* ctx, const clavis::v1::SegmentRequest* r,
                                            clavis::v1::Segment* response) {
  std::optional<uint32_t> if_primary;
  if (r->if_primary_version() != 0) if_primary = r->if_primary_version();
  return Guarded<SegmentName, clavis::v1::Segment>(
      ctx, "RotateSegment", r->name(), Action::kRotateSegment,
      [&](const SegmentName& n) { return lifecycle_->RotateSegment(n, if_primary); }, response);
}

grpc::Status KeyAdminService::RevokeSegment(Ctx* ctx, const clavis::v1::SegmentRequest* r,
                                            clavis::v1::Segment* response) {
  return Guarded<SegmentName, clavis::v1::Segment>(
      ctx, "RevokeSegment", r->name(), Action::kRevokeSegment,
      [&](const SegmentName& n) -> absl::StatusOr<clavis::v1::Segment> {
        if (auto s = RefuseCompareAndSet(*r); !s.ok()) return s;
        return lifecycle_->RevokeSegment(n);
      },
      response);
}

grpc::Status KeyAdminService::EnableSegment(Ctx* ctx, const clavis::v1::SegmentRequest* r,
                                            clavis::v1::Segment* response) {
  return Guarded<SegmentName, clavis::v1::Segment>(
      ctx, "EnableSegment", r->name(), Action::kEnableSegment,
      [&](const SegmentName& n) -> absl::StatusOr<clavis::v1::Segment> {
        if (auto s = RefuseCompareAndSet(*r); !s.ok()) return s;
        return lifecycle_->EnableSegment(n);
      },
      response);
}

grpc::Status KeyAdminService::ScheduleSegmentDestruction(
    Ctx* ctx, const clavis::v1::ScheduleSegmentDestructionRequest* r,
    clavis::v1::Segment* response) {
  auto window = ToDuration(r->pending_window(), "pending_window");
  return Guarded<SegmentName, clavis::v1::Segment>(
      ctx, "ScheduleSegmentDestruction", r->name(), Action::kDestroySegment,
      [&](const SegmentName& n) -> absl::StatusOr<clavis::v1::Segment> {
        if (!window.ok()) return window.status();
        return lifecycle_->ScheduleSegmentDestruction(n, OptionalWindow(*window));
      },
      response, window.ok() ? r : nullptr);
}

grpc::Status KeyAdminService::CancelSegmentDestruction(Ctx* ctx,
                                                       const clavis::v1::SegmentRequest* r,
                                                       clavis::v1::Segment* response) {
  return Guarded<SegmentName, clavis::v1::Segment>(
      ctx, "CancelSegmentDestruction", r->name(), Action::kDestroySegment,
      [&](const SegmentName& n) -> absl::StatusOr<clavis::v1::Segment> {
        if (auto s = RefuseCompareAndSet(*r); !s.ok()) return s;
        return lifecycle_->CancelSegmentDestruction(n);
      },
      response);
}

grpc::Status KeyAdminService::DestroySegment(Ctx* ctx, const clavis::v1::SegmentRequest* r,
                                             clavis::v1::Segment* response) {
  return Guarded<SegmentName, clavis::v1::Segment>(
      ctx, "DestroySegment", r->name(), Action::kDestroySegment,
      [&](const SegmentName& n) -> absl::StatusOr<clavis::v1::Segment> {
        if (auto s = RefuseCompareAndSet(*r); !s.ok()) return s;
        return lifecycle_->DestroySegment(n);
      },
      response);
}

grpc::Status KeyAdminService::GetImportParameters(Ctx* ctx,
                                                  const clavis::v1::GetImportParametersRequest* r,
                                                  clavis::v1::ImportParameters* response) {
  return Guarded<KeyName, clavis::v1::ImportParameters>(
      ctx, "GetImportParameters", r->name(), Action::kImportKeyMaterial,
      [&](const KeyName& n) -> absl::StatusOr<clavis::v1::ImportParameters> {
        auto algorithm = FromProto(r->wrapping_algorithm());
        if (!algorithm.ok()) return algorithm.status();
        auto bits = ModulusBits(r->wrapping_key_spec());
        if (!bits.ok()) return bits.status();
        auto issued = importer_->GetImportParameters(n, *algorithm, *bits);
        if (!issued.ok()) return issued.status();
        clavis::v1::ImportParameters out;
        out.set_name(n.ToString());
        out.set_import_token(issued->token);
        out.set_public_key_der(issued->public_key_der);
        out.set_public_key_pem(issued->public_key_pem);
        out.set_wrapping_algorithm(r->wrapping_algorithm());
        out.set_wrapping_key_spec(*bits == kImportWrappingKeyBits4096 ? clavis::v1::RSA_4096
                                                                      : clavis::v1::RSA_3072);
        *out.mutable_expire_time() = ToTimestamp(issued->expire_time);
        return out;
      },
      response);
}

grpc::Status KeyAdminService::ImportKeyMaterial(Ctx* ctx,
                                                const clavis::v1::ImportKeyMaterialRequest* r,
                                                clavis::v1::Key* response) {
  return Guarded<KeyName, clavis::v1::Key>(
      ctx, "ImportKeyMaterial", r->name(), Action::kImportKeyMaterial,
      [&](const KeyName& n) -> absl::StatusOr<clavis::v1::Key> {
        auto algorithm = FromProto(r->wrapping_algorithm());
        if (!algorithm.ok()) return algorithm.status();
        ImportTarget target;
        target.new_version = r->new_version();
        target.version = r->version();
        if (r->new_version() && r->version() != 0) {
          return absl::InvalidArgumentError("give new_version or version, not both");
        }
        if (r->has_valid_to()) {
          auto valid_to = ToTime(r->valid_to(), "valid_to");
          if (!valid_to.ok()) return valid_to.status();
          target.valid_to = *valid_to;
        }
        return importer_->Import(n, r->import_token(), *algorithm, r->wrapped_key_material(),
                                 target);
      },
      response);
}

// Always behind M-of-N approval: the first call becomes an approval request;
// once approved, the requester calls again naming it and gets the bundle.
grpc::Status KeyAdminService::ExportEscrow(Ctx* ctx, const clavis::v1::ExportEscrowRequest* r,
                                           grpc::ServerWriter<clavis::v1::EscrowChunk>* writer) {
  GuardedCall call(access_, ctx, "ExportEscrow");
  if (auto s = call.Begin(1, auth::CallKind::kStream); !s.ok()) return call.Finish(s);
  call.SetResource(r->name());
  auto key = ParseKeyName(r->name());
  if (!key.ok()) return call.Finish(key.status());
  const std::string resource = key->ToString();
  if (auto s = call.AuthorizeKey(Action::kExportEscrow, *key, resource); !s.ok()) {
    return call.Finish(s);
  }
  if (auto s = escrow_->CheckExportable(*key); !s.ok()) return call.Finish(s);
  auto current = lifecycle_->GetKey(*key);
  if (!current.ok()) return call.Finish(current.status());
  if (current->approvals_required() < 2) {
    return call.Finish(absl::FailedPreconditionError(absl::StrCat(
        "an escrow export takes every segment key of ", resource,
        " and needs M-of-N approval, but the key requires none; set approvals_required to 2 or "
        "more first (clavisctl policy set ",
        resource, " --approvals 2 ...)")));
  }
  if (r->approval().empty()) {
    clavis::v1::ExportEscrowRequest payload;
    payload.set_name(resource);
    // Approvers see which material the bundle will be wrapped under: the
    // customer can check each check value against their own copies.
    std::string versions;
    for (const auto& v : current->versions()) {
      absl::StrAppend(&versions, versions.empty() ? "" : ", ", "version ", v.version(), " (",
                      clavis::v1::KeyState_Name(v.state()), ", key check value ",
                      v.key_check_value(),
                      v.version() == current->primary_version() ? ", primary" : "", ")");
    }
    return call.Finish(approvals_->RequestApproval(
        call, ctx, *key, Action::kExportEscrow, resource, payload, current->approvals_required(),
        absl::StrCat("ExportEscrow on ", resource,
                     ": hand every segment key of the key to the requester, wrapped under its "
                     "imported material: ",
                     versions.empty() ? "no versions" : versions,
                     ". Approve only if these key check values are the customer's"),
        absl::StrCat("clavisctl escrow export ", resource, " --out escrow.jsonl")));
  }
  if (auto s = approvals_->Redeem(call, *key, Action::kExportEscrow, resource, r->approval());
      !s.ok()) {
    return call.Finish(s);
  }
  // Audited as allowed before the first byte leaves.
  if (grpc::Status started = call.Finish(absl::OkStatus()); !started.ok()) return started;
  absl::Status exported = escrow_->Export(*key, [&](std::string chunk) -> absl::Status {
    clavis::v1::EscrowChunk message;
    message.set_data(std::move(chunk));
    if (!writer->Write(message)) return absl::CancelledError("the client went away");
    return absl::OkStatus();
  });
  return ToGrpcStatus(exported);
}

grpc::Status KeyAdminService::GetKeyVersionUsage(Ctx* ctx, const clavis::v1::KeyNameRequest* r,
                                                 clavis::v1::KeyVersionUsage* response) {
  return Guarded<KeyName, clavis::v1::KeyVersionUsage>(
      ctx, "GetKeyVersionUsage", r->name(), Action::kGetKey,
      [&](const KeyName& n) -> absl::StatusOr<clavis::v1::KeyVersionUsage> {
        // The key is read before the scan: a version that was not primary
        // then can gain no segment key during it (only the primary does),
        // so a zero below is final for it (clavis-rotator retires on it).
        auto key = lifecycle_->GetKey(n);
        if (!key.ok()) return key.status();
        uint64_t scanned = 0;
        auto usage = lifecycle_->KeyVersionUsage(n, &scanned);
        if (!usage.ok()) return usage.status();
        clavis::v1::KeyVersionUsage out;
        out.set_name(n.ToString());
        out.set_segments_scanned(scanned);
        for (const auto& v : key->versions()) {
          auto* version = out.add_versions();
          version->set_version(v.version());
          version->set_state(v.state());
          version->set_primary(v.version() == key->primary_version());
          auto found = usage->find(v.version());
          if (found == usage->end()) continue;
          version->set_segment_key_versions(found->second.segment_key_versions);
          version->set_segments(found->second.segments);
        }
        return out;
      },
      response);
}

}  // namespace clavis::kms
