#include "kms/auth/concurrency_limiter.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::auth {
namespace {

using ::testing::HasSubstr;

constexpr char kAlice[] = "tenants/acme/principals/alice";
constexpr char kBob[] = "tenants/acme/principals/bob";

ConcurrencyLimits Small() {
  ConcurrencyLimits limits;
  limits.max_calls_per_principal = 2;
  limits.max_calls_total = 3;
  limits.max_streams_per_principal = 1;
  limits.max_streams_total = 2;
  return limits;
}

TEST(ConcurrencyLimiterTest, RefusesAPrincipalOverItsLimitButNotOthers) {
  ConcurrencyLimiter limiter(Small());
  auto a1 = limiter.Acquire(kAlice, CallKind::kUnary);
  auto a2 = limiter.Acquire(kAlice, CallKind::kUnary);
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto a3 = limiter.Acquire(kAlice, CallKind::kUnary);
  ASSERT_EQ(a3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(a3.status().message(), HasSubstr(kAlice));
  EXPECT_THAT(a3.status().message(), HasSubstr("2 calls in progress"));
  // Bob is not held back by Alice's calls.
  EXPECT_TRUE(limiter.Acquire(kBob, CallKind::kUnary).ok());
  EXPECT_EQ(limiter.InProgress(kAlice, CallKind::kUnary), 2u);
}

TEST(ConcurrencyLimiterTest, ReleasingASlotMakesRoomAgain) {
  ConcurrencyLimiter limiter(Small());
  {
    auto a1 = limiter.Acquire(kAlice, CallKind::kUnary);
    auto a2 = limiter.Acquire(kAlice, CallKind::kUnary);
    ASSERT_TRUE(a1.ok() && a2.ok());
    EXPECT_FALSE(limiter.Acquire(kAlice, CallKind::kUnary).ok());
  }
  EXPECT_EQ(limiter.InProgress(kAlice, CallKind::kUnary), 0u);
  EXPECT_EQ(limiter.InProgressTotal(CallKind::kUnary), 0u);
  EXPECT_TRUE(limiter.Acquire(kAlice, CallKind::kUnary).ok());
}

TEST(ConcurrencyLimiterTest, TheServerWideLimitHoldsAcrossPrincipals) {
  ConcurrencyLimiter limiter(Small());
  auto a = limiter.Acquire(kAlice, CallKind::kUnary);
  auto b1 = limiter.Acquire(kBob, CallKind::kUnary);
  auto b2 = limiter.Acquire(kBob, CallKind::kUnary);
  ASSERT_TRUE(a.ok() && b1.ok() && b2.ok());
  auto c = limiter.Acquire("tenants/acme/principals/carol", CallKind::kUnary);
  ASSERT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(c.status().message(), HasSubstr("server busy"));
}

TEST(ConcurrencyLimiterTest, StreamsAreCountedApartFromCalls) {
  ConcurrencyLimiter limiter(Small());
  auto s = limiter.Acquire(kAlice, CallKind::kStream);
  ASSERT_TRUE(s.ok());
  auto s2 = limiter.Acquire(kAlice, CallKind::kStream);
  ASSERT_EQ(s2.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s2.status().message(), HasSubstr("1 streams in progress"));
  // An open stream does not use up the principal's unary calls.
  auto u1 = limiter.Acquire(kAlice, CallKind::kUnary);
  auto u2 = limiter.Acquire(kAlice, CallKind::kUnary);
  EXPECT_TRUE(u1.ok() && u2.ok());
}

TEST(ConcurrencyLimiterTest, MovedSlotsReleaseOnce) {
  ConcurrencyLimiter limiter(Small());
  {
    auto a = limiter.Acquire(kAlice, CallKind::kUnary);
    ASSERT_TRUE(a.ok());
    ConcurrencyLimiter::Slot moved = *std::move(a);
    ConcurrencyLimiter::Slot assigned;
    EXPECT_FALSE(assigned.held());
    assigned = std::move(moved);
    EXPECT_TRUE(assigned.held());
    EXPECT_EQ(limiter.InProgress(kAlice, CallKind::kUnary), 1u);
  }
  EXPECT_EQ(limiter.InProgressTotal(CallKind::kUnary), 0u);
}

TEST(ConcurrencyLimiterTest, ZeroLimitsMeanOne) {
  ConcurrencyLimiter limiter(ConcurrencyLimits{0, 0, 0, 0});
  auto a = limiter.Acquire(kAlice, CallKind::kUnary);
  EXPECT_TRUE(a.ok());
  EXPECT_FALSE(limiter.Acquire(kAlice, CallKind::kUnary).ok());
}

// Many threads taking and giving back slots never exceed the limits and
// leave nothing counted behind (run under TSan too).
TEST(ConcurrencyLimiterTest, ConcurrentCallersNeverExceedTheLimits) {
  ConcurrencyLimits limits;
  limits.max_calls_per_principal = 3;
  limits.max_calls_total = 5;
  ConcurrencyLimiter limiter(limits);
  std::atomic<int> running{0};
  std::atomic<int> max_running{0};
  std::atomic<bool> over{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string principal = t % 2 == 0 ? kAlice : kBob;
      for (int i = 0; i < 2000; ++i) {
        auto slot = limiter.Acquire(principal, CallKind::kUnary);
        if (!slot.ok()) continue;
        const int now = ++running;
        if (now > 5) over = true;
        if (limiter.InProgress(principal, CallKind::kUnary) > 3) over = true;
        int seen = max_running.load();
        while (now > seen && !max_running.compare_exchange_weak(seen, now)) {
        }
        --running;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(over.load());
  EXPECT_EQ(limiter.InProgressTotal(CallKind::kUnary), 0u);
  EXPECT_EQ(limiter.InProgress(kAlice, CallKind::kUnary), 0u);
}

}  // namespace
}  // namespace clavis::kms::auth
