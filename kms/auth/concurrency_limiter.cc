#include "kms/auth/concurrency_limiter.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace clavis::kms::auth {
namespace {

size_t& CountOf(size_t& calls, size_t& streams, CallKind kind) {
  return kind == CallKind::kUnary ? calls : streams;
}

}  // namespace

ConcurrencyLimiter::Slot::Slot(Slot&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)),
      principal_(std::move(other.principal_)),
      kind_(other.kind_) {}

ConcurrencyLimiter::Slot& ConcurrencyLimiter::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    principal_ = std::move(other.principal_);
    kind_ = other.kind_;
  }
  return *this;
}

ConcurrencyLimiter::Slot::~Slot() { Release(); }

void ConcurrencyLimiter::Slot::Release() {
  if (limiter_ == nullptr) return;
  limiter_->Release(principal_, kind_);
  limiter_ = nullptr;
}

ConcurrencyLimiter::ConcurrencyLimiter(ConcurrencyLimits limits)
    : limits_{std::max<size_t>(1, limits.max_calls_per_principal),
              std::max<size_t>(1, limits.max_calls_total),
              std::max<size_t>(1, limits.max_streams_per_principal),
              std::max<size_t>(1, limits.max_streams_total)} {}

absl::StatusOr<ConcurrencyLimiter::Slot> ConcurrencyLimiter::Acquire(absl::string_view principal,
                                                                     CallKind kind) {
  const bool unary = kind == CallKind::kUnary;
  const size_t per_principal =
      unary ? limits_.max_calls_per_principal : limits_.max_streams_per_principal;
  const size_t overall = unary ? limits_.max_calls_total : limits_.max_streams_total;
  const char* what = unary ? "calls" : "streams";
  std::lock_guard<std::mutex> lock(mu_);
  size_t& total = CountOf(total_.calls, total_.streams, kind);
  if (total >= overall) {
    return absl::ResourceExhaustedError(absl::StrCat("server busy: ", overall, " ", what,
                                                     " in progress, the server's limit; retry "
                                                     "with backoff"));
  }
  auto [it, inserted] = by_principal_.try_emplace(principal);
  size_t& mine = CountOf(it->second.calls, it->second.streams, kind);
  if (mine >= per_principal) {
    return absl::ResourceExhaustedError(
        absl::StrCat(principal, " already has ", mine, " ", what,
                     " in progress, its limit; wait for one to finish"));
  }
  ++mine;
  ++total;
  return Slot(this, std::string(principal), kind);
}

void ConcurrencyLimiter::Release(const std::string& principal, CallKind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  --CountOf(total_.calls, total_.streams, kind);
  auto it = by_principal_.find(principal);
  if (it == by_principal_.end()) return;  // cannot happen: a slot counts once
  --CountOf(it->second.calls, it->second.streams, kind);
  if (it->second.calls == 0 && it->second.streams == 0) by_principal_.erase(it);
}

size_t ConcurrencyLimiter::InProgress(absl::string_view principal, CallKind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_principal_.find(principal);
  if (it == by_principal_.end()) return 0;
  return kind == CallKind::kUnary ? it->second.calls : it->second.streams;
}

size_t ConcurrencyLimiter::InProgressTotal(CallKind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  return kind == CallKind::kUnary ? total_.calls : total_.streams;
}

}  // namespace clavis::kms::auth
