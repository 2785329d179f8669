// What clavis-rotator counts, exposed in the Prometheus text format
// (https://prometheus.io/docs/instrumenting/exposition_formats/) on its
// local metrics port.
//
// Thread safety: counters may be bumped and read concurrently.
#ifndef CLAVIS_TOOLS_ROTATOR_ROTATOR_METRICS_H_
#define CLAVIS_TOOLS_ROTATOR_ROTATOR_METRICS_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace clavis::rotator {

struct RotatorMetrics {
  std::atomic<uint64_t> passes{0};
  std::atomic<uint64_t> rotations{0};
  std::atomic<uint64_t> rotations_done_elsewhere{0};  // lost the compare-and-set
  std::atomic<uint64_t> segments_rewrapped{0};
  std::atomic<uint64_t> keys_destroyed{0};
  std::atomic<uint64_t> versions_destroyed{0};
  std::atomic<uint64_t> segments_destroyed{0};
  std::atomic<uint64_t> materials_expired{0};
  std::atomic<uint64_t> compromised_rewrapped{0};  // segment keys moved off compromised versions
  std::atomic<uint64_t> segments_rotated{0};       // by schedule or after a compromise
  std::atomic<uint64_t> versions_disabled{0};      // unused versions retired
  std::atomic<uint64_t> versions_destruction_scheduled{0};
  std::atomic<uint64_t> errors{0};
  // Gauges, as of the last pass.
  std::atomic<uint64_t> keys_overdue{0};  // due for rotation when the pass began
  std::atomic<uint64_t> keys_rewrap_pending{0};
  // From the usage scans of the last pass (keys whose re-wrap completed).
  std::atomic<uint64_t> versions_unused{0};
  std::atomic<uint64_t> segment_keys_on_old_versions{0};
  std::atomic<uint64_t> segments_overdue{0};  // as of the last full scan
  std::atomic<int64_t> last_pass_end_unix{0};

  // The exposition text (text/plain; version=0.0.4).
  std::string Prometheus() const;
};

}  // namespace clavis::rotator

#endif  // CLAVIS_TOOLS_ROTATOR_ROTATOR_METRICS_H_
