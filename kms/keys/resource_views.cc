#include "kms/keys/resource_views.h"

#include "google/protobuf/util/time_util.h"

namespace clavis::kms {
namespace {

void SetTime(int64_t micros, google::protobuf::Timestamp* out) {
  *out = google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(micros);
}

}  // namespace

std::string StateName(clavis::v1::KeyState state) { return clavis::v1::KeyState_Name(state); }

std::string FormatTimestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

clavis::v1::Key KeyView(const internal::KeyRecord& record) {
  clavis::v1::Key key;
  const KeyName name{record.tenant(), record.key_id()};
  key.set_name(name.ToString());
  key.set_state(record.state());
  key.set_origin(record.origin());
  key.set_description(record.description());
  key.mutable_labels()->insert(record.labels().begin(), record.labels().end());
  SetTime(record.create_time_us(), key.mutable_create_time());
  SetTime(record.state_change_time_us(), key.mutable_state_change_time());
  key.set_primary_version(record.primary_version());
  if (record.destroy_time_us() != 0) SetTime(record.destroy_time_us(), key.mutable_destroy_time());
  if (record.rotation_period_s() != 0) {
    key.mutable_rotation_period()->set_seconds(record.rotation_period_s());
  }
  if (record.next_rotation_time_us() != 0) {
    SetTime(record.next_rotation_time_us(), key.mutable_next_rotation_time());
  }
  key.set_require_explicit_segments(record.require_explicit_segments());
  key.set_approvals_required(record.approvals_required());
  key.set_version_retirement(record.version_retirement());
  if (record.segment_rotation_period_s() != 0) {
    key.mutable_segment_rotation_period()->set_seconds(record.segment_rotation_period_s());
  }
  for (const auto& v : record.versions()) {
    clavis::v1::KeyVersion* out = key.add_versions();
    out->set_name(KeyVersionName{name, v.version()}.ToString());
    out->set_version(v.version());
    out->set_state(v.state());
    SetTime(v.create_time_us(), out->mutable_create_time());
    SetTime(v.state_change_time_us(), out->mutable_state_change_time());
    if (v.destroy_time_us() != 0) SetTime(v.destroy_time_us(), out->mutable_destroy_time());
    out->set_key_check_value(v.key_check_value());
    if (v.material_expire_time_us() != 0) {
      SetTime(v.material_expire_time_us(), out->mutable_material_expire_time());
    }
    if (v.compromise_time_us() != 0) {
      SetTime(v.compromise_time_us(), out->mutable_compromise_time());
    }
  }
  return key;
}

clavis::v1::Segment SegmentView(const KeyName& key, const internal::SegmentRecord& record) {
  clavis::v1::Segment segment;
  segment.set_name(SegmentName{key, record.segment()}.ToString());
  segment.set_segment(record.segment());
  segment.set_state(record.state());
  SetTime(record.create_time_us(), segment.mutable_create_time());
  SetTime(record.state_change_time_us(), segment.mutable_state_change_time());
  if (record.destroy_time_us() != 0) {
    SetTime(record.destroy_time_us(), segment.mutable_destroy_time());
  }
  segment.set_primary_version(record.primary_version());
  for (const auto& v : record.versions()) {
    clavis::v1::SegmentVersion* out = segment.add_versions();
    out->set_version(v.version());
    out->set_wrapped_under_key_version(v.key_version());
    SetTime(v.create_time_us(), out->mutable_create_time());
  }
  return segment;
}

}  // namespace clavis::kms
