// ConcurrencyLimiter: how many calls a principal may have in progress at
// once, so one slow or abusive client cannot tie up the server's threads and
// memory while others wait. The rate limiter (rate_limiter.h) bounds how
// many calls start per second; this bounds how many are running, which is
// what a client holding calls open (slow reads, long streams) exhausts.
//
// Two kinds of calls are counted apart:
//  - unary calls (short: one request, one answer), at most
//    `max_calls_per_principal` per principal and `max_calls_total` overall;
//  - streams (WatchKeyEvents, ExportEscrow, CreateBackup: they may stay open
//    for minutes or hours), at most `max_streams_per_principal` per
//    principal and `max_streams_total` overall.
// A call over a limit is refused at once (ResourceExhausted, with a message
// naming the limit), never queued: a queue would let the abuser's calls
// delay everybody else's.
//
// Acquire returns a Slot that holds the place until it is destroyed (RAII),
// so a handler that returns early on any path gives it back.
//
// Thread safety: all methods may be called concurrently. A Slot must not
// outlive its limiter.
#ifndef CLAVIS_KMS_AUTH_CONCURRENCY_LIMITER_H_
#define CLAVIS_KMS_AUTH_CONCURRENCY_LIMITER_H_

#include <cstddef>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::kms::auth {

struct ConcurrencyLimits {
  size_t max_calls_per_principal = 64;
  size_t max_calls_total = 4096;
  size_t max_streams_per_principal = 16;
  size_t max_streams_total = 1024;
};

enum class CallKind { kUnary, kStream };

class ConcurrencyLimiter {
 public:
  // A place taken by one call; gives it back when destroyed. Movable.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

    bool held() const { return limiter_ != nullptr; }

   private:
    friend class ConcurrencyLimiter;
    Slot(ConcurrencyLimiter* limiter, std::string principal, CallKind kind)
        : limiter_(limiter), principal_(std::move(principal)), kind_(kind) {}
    void Release();

    ConcurrencyLimiter* limiter_ = nullptr;
    std::string principal_;
    CallKind kind_ = CallKind::kUnary;
  };

  // Limits of 0 are raised to 1 (a limiter that refuses everything is a
  // configuration mistake, not a limit).
  explicit ConcurrencyLimiter(ConcurrencyLimits limits);

  // A slot for one more call of `kind` by `principal`, or ResourceExhausted
  // saying which limit it would break.
  absl::StatusOr<Slot> Acquire(absl::string_view principal, CallKind kind);

  // Calls of `kind` in progress for `principal` (0 if none), and overall.
  size_t InProgress(absl::string_view principal, CallKind kind) const;
  size_t InProgressTotal(CallKind kind) const;

  const ConcurrencyLimits& limits() const { return limits_; }

 private:
  struct Counts {
    size_t calls = 0;
    size_t streams = 0;
  };
  void Release(const std::string& principal, CallKind kind);

  const ConcurrencyLimits limits_;
  mutable std::mutex mu_;
  // Only principals with a call in progress, so memory follows the number
  // of running calls, not of principals ever seen.
  absl::flat_hash_map<std::string, Counts> by_principal_;
  Counts total_;
};

}  // namespace clavis::kms::auth

#endif  // CLAVIS_KMS_AUTH_CONCURRENCY_LIMITER_H_
