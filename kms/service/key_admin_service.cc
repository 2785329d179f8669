#include "kms/service/key_admin_service.h"

#include <functional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "kms/service/grpc_status.h"

namespace clavis::kms {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// Page tokens are the last returned id, base64url-encoded so they read as
// opaque and survive any transport.
std::string EncodePageToken(const std::string& last) {
  if (last.empty()) return "";
  std::string out;
  absl::WebSafeBase64Escape(last, &out);
  return out;
}

absl::StatusOr<std::string> DecodePageToken(const std::string& token) {
  std::string out;
  if (!token.empty() && !absl::WebSafeBase64Unescape(token, &out)) {
    return absl::InvalidArgumentError("page_token is not one this server returned");
  }
  return out;
}

absl::StatusOr<size_t> PageSize(int requested) {
  if (requested < 0) return absl::InvalidArgumentError("page_size must not be negative");
  if (requested == 0) return kDefaultPageSize;
  return static_cast<size_t>(std::min(requested, kMaxPageSize));
}

// google.protobuf.Duration/Timestamp carry their own validity rules (nanos
// in [0, 1e9), years 1..9999); values outside them are refused here, before
// anything is stored, because they cannot be turned back into messages.
absl::StatusOr<absl::Duration> ToDuration(const google::protobuf::Duration& d,
                                          absl::string_view field) {
  if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() > 999999999 ||
      d.seconds() > 100ll * 365 * 86400) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be a non-negative duration of at most 100 years with nanos below 1e9"));
  }
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

std::optional<absl::Duration> OptionalWindow(absl::Duration d) {
  if (d == absl::ZeroDuration()) return std::nullopt;  // unset: the server default
  return d;
}

absl::StatusOr<absl::Time> ToTime(const google::protobuf::Timestamp& t, absl::string_view field) {
  // 1970-01-01 .. 9999-12-31T23:59:59Z, the range Timestamp can carry (and
  // nothing Clavis schedules lies before 1970).
  constexpr int64_t kMaxSeconds = 253402300799;
  if (t.seconds() < 0 || t.seconds() > kMaxSeconds || t.nanos() < 0 || t.nanos() > 999999999) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z"));
  }
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

template <typename Out, typename Name>
grpc::Status Respond(const absl::StatusOr<Name>& name,
                     const std::function<absl::StatusOr<Out>(const Name&)>& call, Out* response) {
  if (!name.ok()) return ToGrpcStatus(name.status());
  auto result = call(*name);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

KeyAdminService::KeyAdminService(KeyLifecycle* lifecycle) : lifecycle_(lifecycle) {}

grpc::Status KeyAdminService::CreateKey(Ctx*, const clavis::v1::CreateKeyRequest* r,
                                        clavis::v1::Key* response) {
  auto tenant = ParseTenantName(r->parent());
  if (!tenant.ok()) return ToGrpcStatus(tenant.status());
  CreateKeyParams p;
  p.tenant = *tenant;
  p.key_id = r->key_id();
  p.description = r->description();
  p.labels.insert(r->labels().begin(), r->labels().end());
  auto period = ToDuration(r->rotation_period(), "rotation_period");
  if (!period.ok()) return ToGrpcStatus(period.status());
  p.rotation_period = *period;
  if (r->has_next_rotation_time()) {
    auto next = ToTime(r->next_rotation_time(), "next_rotation_time");
    if (!next.ok()) return ToGrpcStatus(next.status());
    p.next_rotation_time = *next;
  }
  p.require_explicit_segments = r->require_explicit_segments();
  auto key = lifecycle_->CreateKey(p);
  if (!key.ok()) return ToGrpcStatus(key.status());
  *response = *std::move(key);
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::GetKey(Ctx*, const clavis::v1::GetKeyRequest* r,
                                     clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyName>(
      ParseKeyName(r->name()), [&](const KeyName& n) { return lifecycle_->GetKey(n); }, response);
}

grpc::Status KeyAdminService::ListKeys(Ctx*, const clavis::v1::ListKeysRequest* r,
                                       clavis::v1::ListKeysResponse* response) {
  auto tenant = ParseTenantName(r->parent());
  if (!tenant.ok()) return ToGrpcStatus(tenant.status());
  auto size = PageSize(r->page_size());
  if (!size.ok()) return ToGrpcStatus(size.status());
  auto start = DecodePageToken(r->page_token());
  if (!start.ok()) return ToGrpcStatus(start.status());
  std::string next;
  auto keys = lifecycle_->ListKeys(*tenant, *start, *size, &next);
  if (!keys.ok()) return ToGrpcStatus(keys.status());
  for (auto& k : *keys) *response->add_keys() = std::move(k);
  response->set_next_page_token(EncodePageToken(next));
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::RotateKey(Ctx*, const clavis::v1::RotateKeyRequest* r,
                                        clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyName>(
      ParseKeyName(r->name()), [&](const KeyName& n) { return lifecycle_->RotateKey(n); },
      response);
}

grpc::Status KeyAdminService::EnableKey(Ctx*, const clavis::v1::KeyNameRequest* r,
                                        clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyName>(
      ParseKeyName(r->name()), [&](const KeyName& n) { return lifecycle_->EnableKey(n); },
      response);
}

grpc::Status KeyAdminService::DisableKey(Ctx*, const clavis::v1::KeyNameRequest* r,
                                         clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyName>(
      ParseKeyName(r->name()), [&](const KeyName& n) { return lifecycle_->DisableKey(n); },
      response);
}

grpc::Status KeyAdminService::ScheduleKeyDestruction(
    Ctx*, const clavis::v1::ScheduleDestructionRequest* r, clavis::v1::Key* response) {
  auto window = ToDuration(r->pending_window(), "pending_window");
  if (!window.ok()) return ToGrpcStatus(window.status());
  return Respond<clavis::v1::Key, KeyName>(
      ParseKeyName(r->name()),
      [&](const KeyName& n) {
        return lifecycle_->ScheduleKeyDestruction(n, OptionalWindow(*window));
      },
      response);
}

grpc::Status KeyAdminService::CancelKeyDestruction(Ctx*, const clavis::v1::KeyNameRequest* r,
                                                   clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyName>(
      ParseKeyName(r->name()),
      [&](const KeyName& n) { return lifecycle_->CancelKeyDestruction(n); }, response);
}

grpc::Status KeyAdminService::DestroyKey(Ctx*, const clavis::v1::KeyNameRequest* r,
                                         clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyName>(
      ParseKeyName(r->name()), [&](const KeyName& n) { return lifecycle_->DestroyKey(n); },
      response);
}

grpc::Status KeyAdminService::UpdateKeySettings(Ctx*, const clavis::v1::UpdateKeySettingsRequest* r,
                                                clavis::v1::Key* response) {
  KeySettingsUpdate u;
  if (r->update_mask().paths_size() == 0) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        "update_mask is empty; name the fields to change (e.g. rotation_period)"));
  }
  for (const std::string& path : r->update_mask().paths()) {
    if (path == "description") {
      u.description = r->description();
    } else if (path == "labels") {
      u.labels.emplace(r->labels().begin(), r->labels().end());
    } else if (path == "rotation_period") {
      auto period = ToDuration(r->rotation_period(), "rotation_period");
      if (!period.ok()) return ToGrpcStatus(period.status());
      u.rotation_period = *period;
    } else if (path == "next_rotation_time") {
      if (r->has_next_rotation_time()) {
        auto next = ToTime(r->next_rotation_time(), "next_rotation_time");
        if (!next.ok()) return ToGrpcStatus(next.status());
        u.next_rotation_time = *next;
      } else {
        u.next_rotation_time = absl::InfinitePast();  // cleared
      }
    } else if (path == "require_explicit_segments") {
      u.require_explicit_segments = r->require_explicit_segments();
    } else {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("update_mask names unknown field ", QuoteForError(path),
                       "; known: description, labels, rotation_period, next_rotation_time, "
                       "require_explicit_segments")));
    }
  }
  return Respond<clavis::v1::Key, KeyName>(
      ParseKeyName(r->name()),
      [&](const KeyName& n) { return lifecycle_->UpdateKeySettings(n, u); }, response);
}

grpc::Status KeyAdminService::EnableKeyVersion(Ctx*, const clavis::v1::KeyVersionRequest* r,
                                               clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyVersionName>(
      ParseKeyVersionName(r->name()),
      [&](const KeyVersionName& n) { return lifecycle_->EnableKeyVersion(n); }, response);
}

grpc::Status KeyAdminService::DisableKeyVersion(Ctx*, const clavis::v1::KeyVersionRequest* r,
                                                clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyVersionName>(
      ParseKeyVersionName(r->name()),
      [&](const KeyVersionName& n) { return lifecycle_->DisableKeyVersion(n); }, response);
}

grpc::Status KeyAdminService::ScheduleKeyVersionDestruction(
    Ctx*, const clavis::v1::ScheduleVersionDestructionRequest* r, clavis::v1::Key* response) {
  auto window = ToDuration(r->pending_window(), "pending_window");
  if (!window.ok()) return ToGrpcStatus(window.status());
  return Respond<clavis::v1::Key, KeyVersionName>(
      ParseKeyVersionName(r->name()),
      [&](const KeyVersionName& n) {
        return lifecycle_->ScheduleKeyVersionDestruction(n, OptionalWindow(*window));
      },
      response);
}

grpc::Status KeyAdminService::CancelKeyVersionDestruction(Ctx*,
                                                          const clavis::v1::KeyVersionRequest* r,
                                                          clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyVersionName>(
      ParseKeyVersionName(r->name()),
      [&](const KeyVersionName& n) { return lifecycle_->CancelKeyVersionDestruction(n); },
      response);
}

grpc::Status KeyAdminService::DestroyKeyVersion(Ctx*, const clavis::v1::KeyVersionRequest* r,
                                                clavis::v1::Key* response) {
  return Respond<clavis::v1::Key, KeyVersionName>(
      ParseKeyVersionName(r->name()),
      [&](const KeyVersionName& n) { return lifecycle_->DestroyKeyVersion(n); }, response);
}

grpc::Status KeyAdminService::RewrapSegments(Ctx*, const clavis::v1::RewrapSegmentsRequest* r,
                                             clavis::v1::RewrapSegmentsResponse* response) {
  auto name = ParseKeyName(r->name());
  if (!name.ok()) return ToGrpcStatus(name.status());
  if (r->batch_size() < 0 || r->batch_size() > 10000) {
    return ToGrpcStatus(absl::InvalidArgumentError("batch_size must be between 0 and 10000"));
  }
  auto start = DecodePageToken(r->page_token());
  if (!start.ok()) return ToGrpcStatus(start.status());
  const size_t batch = r->batch_size() == 0 ? 1000 : static_cast<size_t>(r->batch_size());
  auto progress = lifecycle_->RewrapSegments(*name, *start, batch);
  if (!progress.ok()) return ToGrpcStatus(progress.status());
  response->set_rewrapped(progress->rewrapped);
  response->set_already_current(progress->already_current);
  response->set_next_page_token(EncodePageToken(progress->next_segment));
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::CreateSegment(Ctx*, const clavis::v1::SegmentRequest* r,
                                            clavis::v1::Segment* response) {
  return Respond<clavis::v1::Segment, SegmentName>(
      ParseSegmentName(r->name()),
      [&](const SegmentName& n) { return lifecycle_->CreateSegment(n); }, response);
}

grpc::Status KeyAdminService::GetSegment(Ctx*, const clavis::v1::SegmentRequest* r,
                                         clavis::v1::Segment* response) {
  return Respond<clavis::v1::Segment, SegmentName>(
      ParseSegmentName(r->name()), [&](const SegmentName& n) { return lifecycle_->GetSegment(n); },
      response);
}

grpc::Status KeyAdminService::ListSegments(Ctx*, const clavis::v1::ListSegmentsRequest* r,
                                           clavis::v1::ListSegmentsResponse* response) {
  auto key = ParseKeyName(r->parent());
  if (!key.ok()) return ToGrpcStatus(key.status());
  auto size = PageSize(r->page_size());
  if (!size.ok()) return ToGrpcStatus(size.status());
  auto start = DecodePageToken(r->page_token());
  if (!start.ok()) return ToGrpcStatus(start.status());
  if (r->prefix().size() > kMaxSegmentLength) {
    return ToGrpcStatus(absl::InvalidArgumentError("prefix is longer than a segment can be"));
  }
  std::string next;
  auto segments = lifecycle_->ListSegments(*key, r->prefix(), *start, *size, &next);
  if (!segments.ok()) return ToGrpcStatus(segments.status());
  for (auto& s : *segments) *response->add_segments() = std::move(s);
  response->set_next_page_token(EncodePageToken(next));
  return grpc::Status::OK;
}

grpc::Status KeyAdminService::RotateSegment(Ctx*, const clavis::v1::SegmentRequest* r,
                                            clavis::v1::Segment* response) {
  return Respond<clavis::v1::Segment, SegmentName>(
      ParseSegmentName(r->name()),
      [&](const SegmentName& n) { return lifecycle_->RotateSegment(n); }, response);
}

grpc::Status KeyAdminService::RevokeSegment(Ctx*, const clavis::v1::SegmentRequest* r,
                                            clavis::v1::Segment* response) {
  return Respond<clavis::v1::Segment, SegmentName>(
      ParseSegmentName(r->name()),
      [&](const SegmentName& n) { return lifecycle_->RevokeSegment(n); }, response);
}

grpc::Status KeyAdminService::EnableSegment(Ctx*, const clavis::v1::SegmentRequest* r,
                                            clavis::v1::Segment* response) {
  return Respond<clavis::v1::Segment, SegmentName>(
      ParseSegmentName(r->name()),
      [&](const SegmentName& n) { return lifecycle_->EnableSegment(n); }, response);
}

grpc::Status KeyAdminService::ScheduleSegmentDestruction(
    Ctx*, const clavis::v1::ScheduleSegmentDestructionRequest* r, clavis::v1::Segment* response) {
  auto window = ToDuration(r->pending_window(), "pending_window");
  if (!window.ok()) return ToGrpcStatus(window.status());
  return Respond<clavis::v1::Segment, SegmentName>(
      ParseSegmentName(r->name()),
      [&](const SegmentName& n) {
        return lifecycle_->ScheduleSegmentDestruction(n, OptionalWindow(*window));
      },
      response);
}

grpc::Status KeyAdminService::CancelSegmentDestruction(Ctx*, const clavis::v1::SegmentRequest* r,
                                                       clavis::v1::Segment* response) {
  return Respond<clavis::v1::Segment, SegmentName>(
      ParseSegmentName(r->name()),
      [&](const SegmentName& n) { return lifecycle_->CancelSegmentDestruction(n); }, response);
}

grpc::Status KeyAdminService::DestroySegment(Ctx*, const clavis::v1::SegmentRequest* r,
                                             clavis::v1::Segment* response) {
  return Respond<clavis::v1::Segment, SegmentName>(
      ParseSegmentName(r->name()),
      [&](const SegmentName& n) { return lifecycle_->DestroySegment(n); }, response);
}

}  // namespace clavis::kms
