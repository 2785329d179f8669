// AuthFailureTracker: lock-out after repeated authentication failures.
//
// A "subject" is whatever failed to authenticate: a peer address
// ("ipv4:10.0.0.7") and, when a token names one, the claimed principal.
// After `max_failures` failures within `window` (a sliding window over the
// failure times), the subject is locked out for `base_lockout`; every
// further lock-out of the same subject before it has been quiet for
// `forget_after` (no failure since the later of its last failure and the
// end of its last lock-out) doubles the period, up to `max_lockout`. A
// successful authentication clears the failure count (not an active lock
// nor the doubling: a locked subject is refused before it is checked).
// Failures recorded while a subject is locked neither count nor extend the
// lock. Out-of-range options are clamped (max_failures and max_subjects to
// at least 1, max_lockout to at least base_lockout).
//
// Memory is bounded: at most `max_subjects` are tracked (each keeps up to
// `max_failures` failure times); when full, the entries whose last failure
// is oldest are dropped first, with their lock.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_AUTH_LOCKOUT_H_
#define CLAVIS_KMS_AUTH_LOCKOUT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kms/keys/clock.h"

namespace clavis::kms::auth {

struct LockoutOptions {
  int max_failures = 5;
  absl::Duration window = absl::Minutes(5);
  absl::Duration base_lockout = absl::Seconds(30);
  absl::Duration max_lockout = absl::Minutes(30);
  absl::Duration forget_after = absl::Hours(1);
  size_t max_subjects = 100000;
};

class AuthFailureTracker {
 public:
  AuthFailureTracker(LockoutOptions options, const Clock* clock);
  ~AuthFailureTracker();

  // How much longer `subject` stays locked out, or nullopt if it is not.
  std::optional<absl::Duration> LockedFor(absl::string_view subject) const;

  // Counts a failure. Returns the lock-out period when this failure locks
  // the subject (so the caller can audit the lock-out once), else nullopt.
  std::optional<absl::Duration> RecordFailure(absl::string_view subject);

  // A successful authentication: the failure count of `subject` restarts.
  void RecordSuccess(absl::string_view subject);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace clavis::kms::auth

#endif  // CLAVIS_KMS_AUTH_LOCKOUT_H_
