// RateLimiter: a token bucket per principal, so one misbehaving or
// compromised application cannot exhaust the key service (and so a stolen
// credential cannot decrypt a whole database at line rate).
//
// Each principal may make `requests_per_second` on average with bursts of
// up to `burst`. Memory is bounded by `max_principals` (least recently seen
// dropped first; a dropped principal starts again with a full bucket).
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_AUTH_RATE_LIMITER_H_
#define CLAVIS_KMS_AUTH_RATE_LIMITER_H_

#include <memory>
#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kms/keys/clock.h"

namespace clavis::kms::auth {

struct RateLimitOptions {
  double requests_per_second = 1000;  // 0 (or negative) disables the limiter
  double burst = 2000;                // >= 1 (smaller values count as 1)
  size_t max_principals = 100000;
};

class RateLimiter {
 public:
  RateLimiter(RateLimitOptions options, const Clock* clock);
  ~RateLimiter();

  // Takes `cost` requests (a batch RPC costs its item count) from the
  // principal's bucket. nullopt: allowed. Otherwise the call is refused and
  // the value says when enough will be available again (for RetryInfo);
  // a cost larger than `burst` is charged as `burst`, a negative one as 0,
  // NaN as `burst`. The wait is rounded up to the microsecond, so a retry
  // after exactly that long succeeds if nothing else was taken meanwhile.
  std::optional<absl::Duration> Acquire(absl::string_view principal, double cost = 1);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace clavis::kms::auth

#endif  // CLAVIS_KMS_AUTH_RATE_LIMITER_H_
