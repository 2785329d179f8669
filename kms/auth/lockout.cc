#include "kms/auth/lockout.h"

#include <algorithm>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"

namespace clavis::kms::auth {

struct AuthFailureTracker::State {
  struct Entry {
    // Times of the failures within `window`, oldest first; fewer than
    // max_failures (reaching it locks and clears them).
    std::deque<absl::Time> failures;
    absl::Time last_failure = absl::InfinitePast();
    absl::Time locked_until = absl::InfinitePast();
    // Lock-outs since the subject was last quiet for `forget_after`.
    int lockouts = 0;
    std::list<std::string>::iterator order;  // position in `by_last_failure`
  };

  State(LockoutOptions o, const Clock* c) : options(std::move(o)), clock(c) {
    options.max_failures = std::max(options.max_failures, 1);
    options.max_subjects = std::max<size_t>(options.max_subjects, 1);
    options.base_lockout = std::max(options.base_lockout, absl::ZeroDuration());
    options.max_lockout = std::max(options.max_lockout, options.base_lockout);
  }

  // base_lockout x 2^(lockouts), capped by max_lockout.
  absl::Duration Period(int lockouts) const {
    absl::Duration period = options.base_lockout;
    for (int i = 0; i < lockouts && period < options.max_lockout; ++i) period *= 2;
    return std::min(period, options.max_lockout);
  }

  void Erase(absl::flat_hash_map<std::string, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    by_last_failure.erase(it->second.order);
    entries.erase(it);
  }

  LockoutOptions options;  // constant after construction
  const Clock* const clock;

  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not
  // check this. Not a std::shared_mutex for LockedFor (every authentication) either: glibc's
  // rwlock prefers readers, so under load RecordFailure could wait behind a stream of
  // readers (absl::Mutex favoured the writer); the read is one hash lookup.
  mutable std::mutex mu;
  absl::flat_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
  // Subjects, most recent failure first.
  std::list<std::string> by_last_failure ABSL_GUARDED_BY(mu);
};

AuthFailureTracker::AuthFailureTracker(LockoutOptions options, const Clock* clock)
    : state_(std::make_unique<State>(std::move(options), clock)) {}

AuthFailureTracker::~AuthFailureTracker() = default;

std::optional<absl::Duration> AuthFailureTracker::LockedFor(absl::string_view subject) const {
  const absl::Time now = state_->clock->Now();
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->entries.find(subject);
  if (it == state_->entries.end() || now >= it->second.locked_until) return std::nullopt;
  return it->second.locked_until - now;
}

std::optional<absl::Duration> AuthFailureTracker::RecordFailure(absl::string_view subject) {
  State& s = *state_;
  const absl::Time now = s.clock->Now();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.entries.find(subject);
  if (it == s.entries.end()) {
    while (s.entries.size() >= s.options.max_subjects) {
      s.Erase(s.entries.find(s.by_last_failure.back()));
    }
    s.by_last_failure.emplace_front(subject);
    it = s.entries.emplace(std::string(subject), State::Entry{}).first;
    it->second.order = s.by_last_failure.begin();
  } else {
    s.by_last_failure.splice(s.by_last_failure.begin(), s.by_last_failure, it->second.order);
  }
  State::Entry& e = it->second;
  // A locked subject is refused before its credentials are checked; should
  // a failure be reported anyway, it neither counts nor extends the lock.
  if (now < e.locked_until) return std::nullopt;
  if (e.lockouts > 0 && now - std::max(e.locked_until, e.last_failure) >= s.options.forget_after) {
    e.lockouts = 0;
  }
  e.last_failure = now;
  while (!e.failures.empty() && now - e.failures.front() >= s.options.window) {
    e.failures.pop_front();
  }
  e.failures.push_back(now);
  if (e.failures.size() < static_cast<size_t>(s.options.max_failures)) return std::nullopt;

  const absl::Duration period = s.Period(e.lockouts);
  e.failures.clear();
  e.locked_until = now + period;
  if (e.lockouts < 64) ++e.lockouts;
  return period;
}

void AuthFailureTracker::RecordSuccess(absl::string_view subject) {
  State& s = *state_;
  const absl::Time now = s.clock->Now();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.entries.find(subject);
  if (it == s.entries.end()) return;
  it->second.failures.clear();
  // Nothing left to remember: drop the entry (the escalation level stays
  // while it can still matter).
  if (now >= it->second.locked_until && it->second.lockouts == 0) s.Erase(it);
}

}  // namespace clavis::kms::auth
