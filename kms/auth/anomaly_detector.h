// AnomalyDetector: notices suspicious behaviour of a principal so the key
// service can write an alert record to the audit log (and count it in a
// metric):
//  - a decrypt rate far above the principal's own recent baseline: in the
//    current `bucket`, more than `rate_factor` x the average per bucket over
//    the previous `baseline_buckets` buckets, and at least
//    `min_decrypts_for_alert` decrypts (so a quiet principal's first burst
//    of a handful of calls is not an alert). Buckets are aligned on the Unix
//    epoch. There is a baseline only once the principal has been tracked
//    for `baseline_buckets` full buckets after the one it was first seen in:
//    a new principal, or every principal after a restart or an eviction,
//    raises no rate alert before that;
//  - a run of `denial_streak` consecutive denied calls (authorization or
//    authentication failures), e.g. someone probing for what a stolen
//    credential can do.
// An alert of one kind for one principal is raised at most once per
// `alert_cooldown`.
//
// Memory is bounded by `max_principals` (least recently seen dropped), each
// holding `baseline_buckets + 1` counters.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_AUTH_ANOMALY_DETECTOR_H_
#define CLAVIS_KMS_AUTH_ANOMALY_DETECTOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kms/keys/clock.h"

namespace clavis::kms::auth {

struct AnomalyOptions {
  absl::Duration bucket = absl::Minutes(1);
  int baseline_buckets = 30;
  double rate_factor = 10;
  uint64_t min_decrypts_for_alert = 100;
  int denial_streak = 20;
  absl::Duration alert_cooldown = absl::Minutes(10);
  size_t max_principals = 100000;
};

struct Alert {
  std::string principal;
  std::string kind;     // "decrypt-rate" or "denial-streak"
  std::string message;  // for the audit record; no secrets, no contexts
};

class AnomalyDetector {
 public:
  AnomalyDetector(AnomalyOptions options, const Clock* clock);
  ~AnomalyDetector();

  // One call by `principal`: `decrypts` is how many records it decrypted (0
  // for other calls; a batch counts its items), `denied` whether it was
  // refused (permission or authentication). Returns the alerts this call
  // raises (usually none).
  std::vector<Alert> Observe(absl::string_view principal, uint64_t decrypts, bool denied);

  // Alerts raised since start, for metrics.
  uint64_t alerts_raised() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace clavis::kms::auth

#endif  // CLAVIS_KMS_AUTH_ANOMALY_DETECTOR_H_
