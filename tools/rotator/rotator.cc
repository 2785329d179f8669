#include "tools/rotator/rotator.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"

namespace clavis::rotator {
namespace {

using clavis::v1::Key;
using google::protobuf::util::TimeUtil;

absl::Time ToAbsl(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

bool IsSet(const google::protobuf::Timestamp& t) { return t.seconds() != 0 || t.nanos() != 0; }

std::string TenantName(const std::string& tenant) {
  return absl::StartsWith(tenant, "tenants/") ? tenant : absl::StrCat("tenants/", tenant);
}

}  // namespace

Rotator::Rotator(clavis::v1::KeyAdmin::StubInterface* admin, RotatorOptions options,
                 RotatorMetrics* metrics, std::function<absl::Time()> now)
    : admin_(admin), options_(std::move(options)), metrics_(metrics), now_(std::move(now)) {}

std::unique_ptr<grpc::ClientContext> Rotator::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
  if (options_.prepare_context) options_.prepare_context(context.get());
  return context;
}

void Rotator::Failed(const std::string& what, const grpc::Status& status) {
  ++metrics_->errors;
  spdlog::warn("rotator: {} failed: {} ({})", what, status.error_message(),
               static_cast<int>(status.error_code()));
}

absl::Status Rotator::RunOnce() {
  const absl::Time start = now_();
  const bool full_scan = start - last_full_scan_ >= options_.full_scan_interval;
  overdue_ = rewrap_pending_ = unused_versions_ = old_segment_keys_ = 0;
  if (full_scan) segments_overdue_ = 0;
  absl::Status first_error;
  for (const std::string& tenant : options_.tenants) {
    clavis::v1::ListKeysRequest request;
    request.set_parent(TenantName(tenant));
    request.set_page_size(1000);
    while (true) {
      clavis::v1::ListKeysResponse page;
      grpc::Status s = admin_->ListKeys(Context().get(), request, &page);
      if (!s.ok()) {
        Failed(absl::StrCat("listing the keys of ", request.parent()), s);
        if (first_error.ok()) {
          first_error = absl::UnavailableError(
              absl::StrCat("listing the keys of ", request.parent(), ": ", s.error_message()));
        }
        break;
      }
      for (Key& key : *page.mutable_keys()) HandleKey(std::move(key), full_scan);
      if (page.next_page_token().empty()) break;
      request.set_page_token(page.next_page_token());
    }
  }
  if (full_scan) last_full_scan_ = start;
  metrics_->keys_overdue = overdue_;
  metrics_->keys_rewrap_pending = rewrap_pending_;
  metrics_->versions_unused = unused_versions_;
  metrics_->segment_keys_on_old_versions = old_segment_keys_;
  if (full_scan) metrics_->segments_overdue = segments_overdue_;
  metrics_->last_pass_end_unix = absl::ToUnixSeconds(now_());
  ++metrics_->passes;
  return first_error;
}

void Rotator::HandleKey(Key key, bool full_scan) {
  const absl::Time now = now_();
  const std::string name = key.name();
  if (key.state() == clavis::v1::DESTROYED) return;
  if (key.state() == clavis::v1::PENDING_DESTRUCTION) {
    if (!IsSet(key.destroy_time()) || ToAbsl(key.destroy_time()) > now) return;
    clavis::v1::KeyNameRequest request;
    request.set_name(name);
    Key destroyed;
    grpc::Status s = admin_->DestroyKey(Context().get(), request, &destroyed);
    if (!s.ok()) return Failed("destroying " + name, s);
    ++metrics_->keys_destroyed;
    rewrapped_to_.erase(name);
    spdlog::info("rotator: destroyed {} (its pending window ended)", name);
    return;
  }
  // Imported material past its valid-to: reading the key writes the expiry
  // down (clavisd purges the material and says so to watchers).
  uint64_t expiring = 0;
  for (const auto& v : key.versions()) {
    if (IsSet(v.material_expire_time()) && ToAbsl(v.material_expire_time()) <= now &&
        v.state() != clavis::v1::PENDING_IMPORT && v.state() != clavis::v1::DESTROYED) {
      ++expiring;
    }
  }
  if (expiring > 0) {
    clavis::v1::GetKeyRequest request;
    request.set_name(name);
    Key fresh;
    grpc::Status s = admin_->GetKey(Context().get(), request, &fresh);
    if (!s.ok()) return Failed("expiring the imported material of " + name, s);
    metrics_->materials_expired += expiring;
    spdlog::info("rotator: imported material of {} version(s) of {} expired", expiring, name);
    key = std::move(fresh);
  }
  std::optional<clavis::v1::KeyVersionUsage> usage;  // read once, when needed
  for (const auto& v : key.versions()) {
    if (v.state() != clavis::v1::PENDING_DESTRUCTION || !IsSet(v.destroy_time()) ||
        ToAbsl(v.destroy_time()) > now) {
      continue;
    }
    // Last check before material is gone for good, for keys whose unused
    // versions this rotator schedules for destruction itself: a version
    // that protects segment keys again (a re-wrap that failed, a request in
    // flight when it was retired) is not destroyed by a daemon; a person
    // decides. On other keys a destruction was scheduled by a person, and
    // crypto-shredding what the version still protects is the point.
    if (key.version_retirement() == clavis::v1::DESTROY_UNUSED_VERSIONS && !usage.has_value()) {
      clavis::v1::KeyNameRequest request;
      request.set_name(name);
      usage.emplace();
      grpc::Status u = admin_->GetKeyVersionUsage(Context().get(), request, &*usage);
      if (!u.ok()) {
        usage.reset();
        Failed("reading the version usage of " + name, u);
        break;
      }
    }
    bool in_use = false;
    if (usage.has_value()) {
      for (const auto& u : usage->versions()) {
        in_use = in_use || (u.version() == v.version() && u.segment_key_versions() > 0);
      }
    }
    if (in_use) {
      ++metrics_->errors;
      spdlog::warn(
          "rotator: not destroying {}: segment keys are still wrapped under it; re-wrap the key "
          "(clavisctl key rewrap {}) or cancel the destruction",
          v.name(), name);
      continue;
    }
    clavis::v1::KeyVersionRequest request;
    request.set_name(v.name());
    Key updated;
    grpc::Status s = admin_->DestroyKeyVersion(Context().get(), request, &updated);
    if (!s.ok()) {
      Failed("destroying " + v.name(), s);
      continue;
    }
    ++metrics_->versions_destroyed;
    spdlog::info("rotator: destroyed {} (its pending window ended)", v.name());
  }
  const bool due = key.state() == clavis::v1::ENABLED && key.origin() != clavis::v1::EXTERNAL &&
                   key.rotation_period().seconds() > 0 && IsSet(key.next_rotation_time()) &&
                   ToAbsl(key.next_rotation_time()) <= now;
  if (due) {
    ++overdue_;
    clavis::v1::RotateKeyRequest request;
    request.set_name(name);
    *request.mutable_if_next_rotation_time() = key.next_rotation_time();
    Key rotated;
    grpc::Status s = admin_->RotateKey(Context().get(), request, &rotated);
    if (s.ok()) {
      ++metrics_->rotations;
      spdlog::info("rotator: rotated {} to version {} (due {})", name, rotated.primary_version(),
                   TimeUtil::ToString(key.next_rotation_time()));
      key = std::move(rotated);
    } else if (s.error_code() == grpc::StatusCode::ABORTED) {
      ++metrics_->rotations_done_elsewhere;  // another rotator won the race
      clavis::v1::GetKeyRequest get;
      get.set_name(name);
      if (!admin_->GetKey(Context().get(), get, &key).ok()) return;
    } else {
      Failed("rotating " + name, s);
    }
  }
  if (key.state() != clavis::v1::ENABLED) return;
  RewrapState wanted{key.primary_version(), 0};
  for (const auto& v : key.versions()) {
    if (IsSet(v.compromise_time())) ++wanted.compromised;
  }
  auto done = rewrapped_to_.find(name);
  if (full_scan || done == rewrapped_to_.end() || done->second != wanted) {
    bool complete = false;
    if (absl::Status s = Rewrap(name, &complete); !s.ok() || !complete) {
      ++rewrap_pending_;
    } else {
      rewrapped_to_[name] = wanted;
      RetireUnusedVersions(key);
    }
  }
  if (full_scan) (void)ScanSegments(key);
}

void Rotator::RetireUnusedVersions(const Key& listed) {
  // The key as it is now, not as listed at the start of the pass: a
  // rotation since then restarts the grace period.
  clavis::v1::GetKeyRequest get;
  get.set_name(listed.name());
  Key key;
  grpc::Status got = admin_->GetKey(Context().get(), get, &key);
  if (!got.ok()) return Failed("reading " + listed.name(), got);
  clavis::v1::KeyNameRequest request;
  request.set_name(key.name());
  clavis::v1::KeyVersionUsage usage;
  grpc::Status s = admin_->GetKeyVersionUsage(Context().get(), request, &usage);
  if (!s.ok()) return Failed("reading the version usage of " + key.name(), s);
  for (const auto& u : usage.versions()) {
    // Rotated between the two reads: leave it to the next pass.
    if (u.primary() && u.version() != key.primary_version()) return;
  }
  std::map<uint32_t, const clavis::v1::KeyVersion*> versions;
  for (const auto& v : key.versions()) versions[v.version()] = &v;
  // The newest version is the primary; every older one stopped being
  // primary no later than it was created.
  absl::Time newest_created = absl::InfinitePast();
  for (const auto& v : key.versions()) {
    newest_created = std::max(newest_created, ToAbsl(v.create_time()));
  }
  const bool settled = now_() - newest_created >= options_.retire_grace;
  const auto retirement = key.version_retirement();
  for (const auto& u : usage.versions()) {
    if (!u.primary() && u.segment_key_versions() > 0) old_segment_keys_ += u.segment_key_versions();
    if (u.primary() || u.segment_key_versions() > 0) continue;
    auto found = versions.find(u.version());
    if (found == versions.end()) continue;
    const clavis::v1::KeyVersion& v = *found->second;
    if (v.state() == clavis::v1::DESTROYED || v.state() == clavis::v1::PENDING_DESTRUCTION) {
      continue;
    }
    ++unused_versions_;
    const bool compromised = IsSet(v.compromise_time());
    const bool disable = compromised || retirement == clavis::v1::DISABLE_UNUSED_VERSIONS ||
                         retirement == clavis::v1::DESTROY_UNUSED_VERSIONS;
    if (!disable || !settled) {
      spdlog::info("rotator: {} protects no segment key any more{}", v.name(),
                   disable ? " (retired once the grace period has passed)" : "");
      continue;
    }
    clavis::v1::KeyVersionRequest version;
    version.set_name(v.name());
    Key updated;
    if (v.state() != clavis::v1::DISABLED) {
      grpc::Status d = admin_->DisableKeyVersion(Context().get(), version, &updated);
      if (!d.ok()) {
        Failed("disabling unused " + v.name(), d);
        continue;
      }
      ++metrics_->versions_disabled;
      spdlog::info("rotator: disabled {}: it protects no segment key any more", v.name());
    }
    if (retirement != clavis::v1::DESTROY_UNUSED_VERSIONS) continue;
    if (key.approvals_required() >= 2) {
      // Scheduling a destruction of this key needs M-of-N approval: a
      // daemon must not file a request per pass. People decide; it stays
      // disabled.
      spdlog::info(
          "rotator: {} is unused and disabled; its destruction needs {} approvers, so "
          "it is left to them (clavisctl key version schedule-destroy)",
          v.name(), key.approvals_required());
      continue;
    }
    clavis::v1::ScheduleVersionDestructionRequest destroy;
    destroy.set_name(v.name());  // the default pending window
    grpc::Status d = admin_->ScheduleKeyVersionDestruction(Context().get(), destroy, &updated);
    if (!d.ok()) {
      Failed("scheduling the destruction of unused " + v.name(), d);
      continue;
    }
    ++metrics_->versions_destruction_scheduled;
    for (const auto& after : updated.versions()) {
      if (after.version() != v.version()) continue;
      spdlog::info("rotator: scheduled the destruction of unused {} for {}", v.name(),
                   TimeUtil::ToString(after.destroy_time()));
    }
  }
}

absl::Status Rotator::Rewrap(const std::string& key, bool* complete) {
  clavis::v1::RewrapSegmentsRequest request;
  request.set_name(key);
  request.set_batch_size(options_.rewrap_batch_size);
  uint64_t moved = 0;
  while (true) {
    clavis::v1::RewrapSegmentsResponse response;
    grpc::Status s = admin_->RewrapSegments(Context().get(), request, &response);
    if (!s.ok()) {
      Failed("re-wrapping the segments of " + key, s);
      return absl::UnavailableError(s.error_message());
    }
    metrics_->segments_rewrapped += response.rewrapped();
    metrics_->compromised_rewrapped += response.compromised_rewrapped();
    metrics_->segments_rotated += response.segments_rotated();
    moved += response.rewrapped();
    if (response.compromised_rewrapped() > 0) {
      spdlog::warn(
          "rotator: moved {} segment keys of {} off compromised versions ({} segments got a "
          "fresh segment key)",
          response.compromised_rewrapped(), key, response.segments_rotated());
    }
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  if (moved > 0) spdlog::info("rotator: re-wrapped {} segment keys of {}", moved, key);
  *complete = true;
  return absl::OkStatus();
}

absl::Status Rotator::ScanSegments(const Key& parent) {
  const std::string& key = parent.name();
  const absl::Duration segment_period = absl::Seconds(parent.segment_rotation_period().seconds());
  clavis::v1::ListSegmentsRequest request;
  request.set_parent(key);
  request.set_page_size(1000);
  const absl::Time now = now_();
  while (true) {
    clavis::v1::ListSegmentsResponse page;
    grpc::Status s = admin_->ListSegments(Context().get(), request, &page);
    if (!s.ok()) {
      Failed("listing the segments of " + key, s);
      return absl::UnavailableError(s.error_message());
    }
    for (const auto& segment : page.segments()) {
      if (segment_period > absl::ZeroDuration() && segment.state() == clavis::v1::ENABLED) {
        RotateSegmentIfDue(segment, segment_period, now);
        continue;
      }
      if (segment.state() != clavis::v1::PENDING_DESTRUCTION || !IsSet(segment.destroy_time()) ||
          ToAbsl(segment.destroy_time()) > now) {
        continue;
      }
      clavis::v1::SegmentRequest destroy;
      destroy.set_name(segment.name());
      clavis::v1::Segment out;
      grpc::Status d = admin_->DestroySegment(Context().get(), destroy, &out);
      if (!d.ok()) {
        Failed("destroying " + segment.name(), d);
        continue;
      }
      ++metrics_->segments_destroyed;
      spdlog::info("rotator: destroyed {} (its pending window ended)", segment.name());
    }
    if (page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  return absl::OkStatus();
}

void Rotator::RotateSegmentIfDue(const clavis::v1::Segment& segment, absl::Duration period,
                                 absl::Time now) {
  for (const auto& v : segment.versions()) {
    if (v.version() != segment.primary_version()) continue;
    if (ToAbsl(v.create_time()) + period > now) return;
    ++segments_overdue_;
    clavis::v1::SegmentRequest request;
    request.set_name(segment.name());
    request.set_if_primary_version(segment.primary_version());
    clavis::v1::Segment rotated;
    grpc::Status s = admin_->RotateSegment(Context().get(), request, &rotated);
    if (s.ok()) {
      ++metrics_->segments_rotated;
      spdlog::info("rotator: rotated segment {} to segment-key version {}", segment.name(),
                   rotated.primary_version());
    } else if (s.error_code() == grpc::StatusCode::ABORTED) {
      ++metrics_->rotations_done_elsewhere;
    } else {
      Failed("rotating segment " + segment.name(), s);
    }
    return;
  }
}

}  // namespace clavis::rotator
