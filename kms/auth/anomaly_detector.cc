#include "kms/auth/anomaly_detector.h"

#include <algorithm>
#include <atomic>
#include <list>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clavis::kms::auth {

struct AnomalyDetector::State {
  struct Principal {
    // Decrypts per bucket, a ring of baseline_buckets + 1 slots indexed by
    // bucket number modulo its size; `current` is the newest bucket number.
    std::vector<uint64_t> decrypts;
    int64_t current = 0;
    int64_t first_bucket = 0;  // when this principal was first seen
    int denials = 0;           // consecutive denied calls
    absl::Time last_rate_alert = absl::InfinitePast();
    absl::Time last_denial_alert = absl::InfinitePast();
    std::list<std::string>::iterator order;  // position in `by_last_seen`
  };

  State(AnomalyOptions o, const Clock* c) : options(std::move(o)), clock(c) {
    if (options.bucket <= absl::ZeroDuration()) options.bucket = absl::Minutes(1);
    options.baseline_buckets = std::max(options.baseline_buckets, 1);
    options.denial_streak = std::max(options.denial_streak, 1);
    options.max_principals = std::max<size_t>(options.max_principals, 1);
  }

  // floor((t - epoch) / bucket).
  int64_t BucketOf(absl::Time t) const {
    absl::Duration rem;
    int64_t q = absl::IDivDuration(t - absl::UnixEpoch(), options.bucket, &rem);
    if (rem < absl::ZeroDuration()) --q;
    return q;
  }

  size_t Slot(int64_t bucket) const {
    const int64_t n = options.baseline_buckets + 1;
    return static_cast<size_t>(((bucket % n) + n) % n);
  }

  AnomalyOptions options;  // constant after construction
  const Clock* const clock;
  std::atomic<uint64_t> alerts{0};

  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  std::mutex mu;
  absl::flat_hash_map<std::string, Principal> principals ABSL_GUARDED_BY(mu);
  std::list<std::string> by_last_seen ABSL_GUARDED_BY(mu);  // most recent first
};

AnomalyDetector::AnomalyDetector(AnomalyOptions options, const Clock* clock)
    : state_(std::make_unique<State>(std::move(options), clock)) {}

AnomalyDetector::~AnomalyDetector() = default;

uint64_t AnomalyDetector::alerts_raised() const { return state_->alerts.load(); }

std::vector<Alert> AnomalyDetector::Observe(absl::string_view principal, uint64_t decrypts,
                                            bool denied) {
  State& s = *state_;
  const AnomalyOptions& o = s.options;
  const absl::Time now = s.clock->Now();
  const int64_t bucket = s.BucketOf(now);
  const size_t slots = static_cast<size_t>(o.baseline_buckets) + 1;
  std::vector<Alert> alerts;

  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.principals.find(principal);
  if (it == s.principals.end()) {
    while (s.principals.size() >= o.max_principals) {
      s.principals.erase(s.by_last_seen.back());
      s.by_last_seen.pop_back();
    }
    s.by_last_seen.emplace_front(principal);
    it = s.principals.emplace(std::string(principal), State::Principal{}).first;
    State::Principal& p = it->second;
    p.decrypts.assign(slots, 0);
    p.current = bucket;
    p.first_bucket = bucket;
    p.order = s.by_last_seen.begin();
  } else {
    s.by_last_seen.splice(s.by_last_seen.begin(), s.by_last_seen, it->second.order);
  }
  State::Principal& p = it->second;

  // Move the ring forward to `bucket`, zeroing the buckets in between. A
  // clock that steps back counts into the newest bucket.
  if (bucket > p.current) {
    const int64_t gap = bucket - p.current;
    if (gap >= static_cast<int64_t>(slots)) {
      std::fill(p.decrypts.begin(), p.decrypts.end(), 0);
    } else {
      for (int64_t b = p.current + 1; b <= bucket; ++b) p.decrypts[s.Slot(b)] = 0;
    }
    p.current = bucket;
  }
  uint64_t& in_bucket = p.decrypts[s.Slot(p.current)];
  in_bucket = decrypts > UINT64_MAX - in_bucket ? UINT64_MAX : in_bucket + decrypts;

  // Decrypt rate: only once there is a full baseline (the bucket in which
  // the principal was first seen is partial and does not count).
  if (decrypts > 0 && in_bucket >= o.min_decrypts_for_alert &&
      p.current - p.first_bucket > o.baseline_buckets &&
      now - p.last_rate_alert >= o.alert_cooldown) {
    long double baseline_total = 0;
    for (size_t i = 0; i < slots; ++i) {
      if (i != s.Slot(p.current)) baseline_total += p.decrypts[i];
    }
    const long double average = baseline_total / o.baseline_buckets;
    if (static_cast<long double>(in_bucket) > o.rate_factor * average) {
      p.last_rate_alert = now;
      alerts.push_back(
          Alert{std::string(principal), "decrypt-rate",
                absl::StrFormat("%d decrypts in the current %s bucket, more than %g times the "
                                "average of %.1f per bucket over the previous %d buckets",
                                in_bucket, absl::FormatDuration(o.bucket), o.rate_factor,
                                static_cast<double>(average), o.baseline_buckets)});
    }
  }

  // Denial streak.
  if (!denied) {
    p.denials = 0;
  } else {
    if (p.denials < INT32_MAX) ++p.denials;
    if (p.denials >= o.denial_streak && now - p.last_denial_alert >= o.alert_cooldown) {
      p.last_denial_alert = now;
      alerts.push_back(Alert{std::string(principal), "denial-streak",
                             absl::StrCat(p.denials, " consecutive denied calls")});
    }
  }

  if (!alerts.empty()) s.alerts.fetch_add(alerts.size());
  return alerts;
}

}  // namespace clavis::kms::auth
