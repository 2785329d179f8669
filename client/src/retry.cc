#include "client/src/retry.h"

#include <algorithm>
#include <cmath>

#include "absl/random/distributions.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace clavis::client_internal {

absl::Duration BackoffBeforeRetry(const RetryPolicy& policy, int retry, absl::BitGenRef gen) {
  // Computed in double seconds and capped before converting, so a large
  // retry count cannot overflow.
  const double initial = absl::ToDoubleSeconds(policy.initial_backoff);
  const double cap = absl::ToDoubleSeconds(policy.max_backoff);
  const double grown = initial * std::pow(policy.multiplier, std::max(0, retry - 1));
  const double backoff = std::min(cap, std::isfinite(grown) ? grown : cap);
  if (backoff <= 0) return absl::ZeroDuration();
  return absl::Seconds(
      absl::Uniform<double>(absl::IntervalClosedClosed, gen, backoff / 2, backoff));
}

absl::Status CallWithRetries(const RetryPolicy& policy, absl::FunctionRef<absl::Status()> attempt) {
  absl::Status status = attempt();
  int attempts = 1;
  if (status.code() != absl::StatusCode::kUnavailable) return status;
  absl::BitGen gen;  // only built once a retry is actually needed
  for (; attempts < policy.max_attempts; ++attempts) {
    absl::SleepFor(BackoffBeforeRetry(policy, attempts, gen));
    status = attempt();
    if (status.code() != absl::StatusCode::kUnavailable) return status;
  }
  return absl::UnavailableError(absl::StrCat(status.message(), " (gave up after ", attempts,
                                             attempts == 1 ? " attempt)" : " attempts)"));
}

}  // namespace clavis::client_internal
