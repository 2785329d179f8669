// Retrying a call on UNAVAILABLE with exponential backoff and jitter (the
// policy of clavis::ClientOptions). Free of gRPC so it is tested on its own.
#ifndef CLAVIS_CLIENT_SRC_RETRY_H_
#define CLAVIS_CLIENT_SRC_RETRY_H_

#include "absl/functional/function_ref.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace clavis::client_internal {

struct RetryPolicy {
  int max_attempts = 1;  // >= 1, the first attempt included
  absl::Duration initial_backoff;
  absl::Duration max_backoff;
  double multiplier = 2.0;  // >= 1
};

// The pause before retry `retry` (1 for the first retry): uniform in
// [b/2, b], b = min(max_backoff, initial_backoff * multiplier^(retry-1)).
// Half the backoff is kept fixed so retries never come in a burst; the other
// half is random so that clients that failed together do not retry together.
absl::Duration BackoffBeforeRetry(const RetryPolicy& policy, int retry, absl::BitGenRef gen);

// Calls `attempt` until it returns anything but UNAVAILABLE or
// policy.max_attempts attempts were made, sleeping between attempts. Returns
// the last status; an UNAVAILABLE that exhausted the attempts says how many
// there were.
absl::Status CallWithRetries(const RetryPolicy& policy, absl::FunctionRef<absl::Status()> attempt);

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_RETRY_H_
