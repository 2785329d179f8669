#include "kms/auth/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <list>
#include <mutex>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"

namespace clavis::kms::auth {

struct RateLimiter::State {
  struct Bucket {
    double tokens = 0;
    absl::Time refilled_at;
    std::list<std::string>::iterator order;  // position in `by_last_seen`
  };

  State(RateLimitOptions o, const Clock* c) : options(o), clock(c) {
    // NaN or negative rates disable the limiter like 0 does.
    if (!(options.requests_per_second > 0)) options.requests_per_second = 0;
    if (!(options.burst >= 1)) options.burst = 1;
    options.max_principals = std::max<size_t>(options.max_principals, 1);
  }

  RateLimitOptions options;  // constant after construction
  const Clock* const clock;

  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  std::mutex mu;
  absl::flat_hash_map<std::string, Bucket> buckets ABSL_GUARDED_BY(mu);
  std::list<std::string> by_last_seen ABSL_GUARDED_BY(mu);  // most recent first
};

RateLimiter::RateLimiter(RateLimitOptions options, const Clock* clock)
    : state_(std::make_unique<State>(options, clock)) {}

RateLimiter::~RateLimiter() = default;

std::optional<absl::Duration> RateLimiter::Acquire(absl::string_view principal, double cost) {
  State& s = *state_;
  const double rate = s.options.requests_per_second;
  if (rate == 0) return std::nullopt;
  const double burst = s.options.burst;
  // Negative costs would add tokens: charge nothing. NaN: charge a full burst.
  if (std::isnan(cost)) cost = burst;
  cost = std::clamp(cost, 0.0, burst);

  const absl::Time now = s.clock->Now();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.buckets.find(principal);
  if (it == s.buckets.end()) {
    while (s.buckets.size() >= s.options.max_principals) {
      s.buckets.erase(s.by_last_seen.back());
      s.by_last_seen.pop_back();
    }
    s.by_last_seen.emplace_front(principal);
    it = s.buckets.emplace(std::string(principal), State::Bucket{burst, now, {}}).first;
    it->second.order = s.by_last_seen.begin();
  } else {
    s.by_last_seen.splice(s.by_last_seen.begin(), s.by_last_seen, it->second.order);
  }
  State::Bucket& b = it->second;
  // A clock that steps back refills nothing (and does not move the mark back).
  if (now > b.refilled_at) {
    b.tokens = std::min(burst, b.tokens + absl::ToDoubleSeconds(now - b.refilled_at) * rate);
    b.refilled_at = now;
  }
  // The tolerance absorbs rounding in the refill, so a retry after exactly
  // the advertised wait is allowed.
  constexpr double kTolerance = 1e-9;
  if (b.tokens + kTolerance >= cost) {
    b.tokens = std::max(0.0, b.tokens - cost);
    return std::nullopt;
  }
  // Round up to the microsecond so that retrying after exactly this long
  // succeeds.
  const absl::Duration wait =
      absl::Ceil(absl::Seconds((cost - b.tokens) / rate), absl::Microseconds(1));
  return std::max(wait, absl::Microseconds(1));
}

}  // namespace clavis::kms::auth
