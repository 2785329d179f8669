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
  counter("clavis_rotator_errors_total", "Failed calls (the pass goes on with the next key).",
          errors);
  gauge("clavis_rotator_keys_overdue", "Keys due for rotation when the last pass began.",
        static_cast<int64_t>(keys_overdue.load()));
  gauge("clavis_rotator_keys_rewrap_pending",
        "Keys whose segments were not all on the primary version after the last pass.",
        static_cast<int64_t>(keys_rewrap_pending.load()));
  gauge("clavis_rotator_last_pass_end_seconds", "Unix time the last pass ended.",
        last_pass_end_unix.load());
  return out;
}

}  // namespace clavis::rotator
