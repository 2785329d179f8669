// Clock: the source of "now" for the key service, so tests can move time
// (destruction windows, rotation schedules) without sleeping.
#ifndef CLAVIS_KMS_KEYS_CLOCK_H_
#define CLAVIS_KMS_KEYS_CLOCK_H_

#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace clavis::kms {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class SystemClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// Thread-safe manual clock for tests.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1800000000)) : now_(start) {}
  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  mutable std::mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_CLOCK_H_
