#include "tools/rotator/rotator_metrics.h"

#include "absl/strings/str_cat.h"

namespace clavis::rotator {
namespace {

void Add(std::string* out, const char* name, const char* type, const char* help, int64_t value) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ",
                  value, "\n");
}

}  // namespace

std::string RotatorMetrics::Prometheus() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t>& v) {
    Add(&out, name, "counter", help, static_cast<int64_t>(v.load()));
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    Add(&out, name, "gauge", help, v);
  };
  counter("clavis_rotator_passes_total", "Passes over every key of the configured tenants.",
          passes);
  counter("clavis_rotator_rotations_total", "Scheduled rotations done by this rotator.", rotations);
  counter("clavis_rotator_rotations_done_elsewhere_total",
          "Due rotations another rotator did first (compare-and-set lost).",
          rotations_done_elsewhere);
  counter("clavis_rotator_segments_rewrapped_total",
          "Segment keys re-wrapped under their key's primary version.", segments_rewrapped);
  counter("clavis_rotator_keys_destroyed_total", "Keys destroyed at the end of their window.",
          keys_destroyed);
  counter("clavis_rotator_versions_destroyed_total",
          "Key versions destroyed at the end of their window.", versions_destroyed);
  counter("clavis_rotator_segments_destroyed_total",
          "Segments destroyed at the end of their window.", segments_destroyed);
  counter("clavis_rotator_materials_expired_total",
          "Key versions whose imported material was expired at its valid-to time.",
          materials_expired);
  counter("clavis_rotator_compromised_rewrapped_total",
          "Segment keys moved off a version marked compromised.", compromised_rewrapped);
  counter("clavis_rotator_segments_rotated_total",
          "Segments given a new segment-key version (schedule or compromise).", segments_rotated);
  counter("clavis_rotator_versions_disabled_total",
          "Key versions disabled because no segment key used them any more.", versions_disabled);
  counter("clavis_rotator_versions_destruction_scheduled_total",
          "Unused key versions scheduled for destruction (per the key's version_retirement).",
          versions_destruction_scheduled);
  counter("clavis_rotator_errors_total", "Failed calls (the pass goes on with the next key).",
          errors);
  gauge("clavis_rotator_keys_overdue", "Keys due for rotation when the last pass began.",
        static_cast<int64_t>(keys_overdue.load()));
  gauge("clavis_rotator_keys_rewrap_pending",
        "Keys whose segments were not all on the primary version after the last pass.",
        static_cast<int64_t>(keys_rewrap_pending.load()));
  gauge("clavis_rotator_versions_unused",
        "Key versions found protecting no segment key in the last pass (not yet destroyed).",
        static_cast<int64_t>(versions_unused.load()));
  gauge("clavis_rotator_segment_keys_on_old_versions",
        "Segment-key versions still wrapped under a non-primary version after the last re-wraps.",
        static_cast<int64_t>(segment_keys_on_old_versions.load()));
  gauge("clavis_rotator_segments_overdue",
        "Segments due for rotation by their key's segment_rotation_period at the last full scan.",
        static_cast<int64_t>(segments_overdue.load()));
  gauge("clavis_rotator_last_pass_end_seconds", "Unix time the last pass ended.",
        last_pass_end_unix.load());
  return out;
}

}  // namespace clavis::rotator
