#include "kms/auth/rate_limiter.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::auth {
namespace {

using ::testing::Optional;

RateLimitOptions TestOptions() {
  RateLimitOptions o;
  o.requests_per_second = 10;
  o.burst = 20;
  o.max_principals = 100;
  return o;
}

class RateLimiterTest : public ::testing::Test {
 protected:
  FakeClock clock_;
};

TEST_F(RateLimiterTest, BurstThenSteadyRate) {
  RateLimiter r(TestOptions(), &clock_);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(r.Acquire("p"), std::nullopt) << i;
  EXPECT_THAT(r.Acquire("p"), Optional(absl::Milliseconds(100)));
  clock_.Advance(absl::Milliseconds(99));
  auto wait = r.Acquire("p");
  ASSERT_TRUE(wait.has_value());
  EXPECT_GE(*wait, absl::Milliseconds(1));
  EXPECT_LE(*wait, absl::Milliseconds(1) + absl::Microseconds(1));  // rounding up
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(r.Acquire("p"), std::nullopt);
  EXPECT_TRUE(r.Acquire("p").has_value());
  // 10 per second from then on.
  for (int second = 0; second < 5; ++second) {
    clock_.Advance(absl::Seconds(1));
    int allowed = 0;
    while (!r.Acquire("p").has_value()) ++allowed;
    EXPECT_EQ(allowed, 10);
  }
}

TEST_F(RateLimiterTest, RetryAfterIsWhenTheCostIsAvailable) {
  RateLimiter r(TestOptions(), &clock_);
  EXPECT_EQ(r.Acquire("p", 18), std::nullopt);  // 2 left
  EXPECT_THAT(r.Acquire("p", 7), Optional(absl::Milliseconds(500)));
  // A refused call takes nothing.
  EXPECT_EQ(r.Acquire("p", 2), std::nullopt);
  EXPECT_THAT(r.Acquire("p", 7), Optional(absl::Milliseconds(700)));
  clock_.Advance(absl::Milliseconds(700));
  EXPECT_EQ(r.Acquire("p", 7), std::nullopt);
  // Advertised waits work for awkward rates too.
  RateLimitOptions o = TestOptions();
  o.requests_per_second = 3;
  o.burst = 1;
  RateLimiter odd(o, &clock_);
  for (int i = 0; i < 100; ++i) {
    auto wait = odd.Acquire("p");
    if (wait.has_value()) {
      clock_.Advance(*wait);
      ASSERT_EQ(odd.Acquire("p"), std::nullopt) << i;
    }
  }
}

TEST_F(RateLimiterTest, IdleBucketRefillsOnlyUpToTheBurst) {
  RateLimiter r(TestOptions(), &clock_);
  EXPECT_EQ(r.Acquire("p", 20), std::nullopt);
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(r.Acquire("p", 20), std::nullopt);
  EXPECT_TRUE(r.Acquire("p").has_value());
}

TEST_F(RateLimiterTest, CostAboveBurstIsChargedAsBurst) {
  RateLimiter r(TestOptions(), &clock_);
  EXPECT_EQ(r.Acquire("p", 1000), std::nullopt);
  EXPECT_THAT(r.Acquire("p", 1000), Optional(absl::Seconds(2)));
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(r.Acquire("p", 1000), std::nullopt);
}

TEST_F(RateLimiterTest, OddCostsCannotAddTokens) {
  RateLimiter r(TestOptions(), &clock_);
  EXPECT_EQ(r.Acquire("p", 20), std::nullopt);
  EXPECT_EQ(r.Acquire("p", -100), std::nullopt);  // charged nothing
  EXPECT_TRUE(r.Acquire("p", 1).has_value());
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(r.Acquire("p", std::nan("")), std::nullopt);  // charged a full burst
  EXPECT_TRUE(r.Acquire("p", 1).has_value());
}

TEST_F(RateLimiterTest, PrincipalsHaveTheirOwnBuckets) {
  RateLimiter r(TestOptions(), &clock_);
  EXPECT_EQ(r.Acquire("tenants/a/principals/x", 20), std::nullopt);
  EXPECT_TRUE(r.Acquire("tenants/a/principals/x").has_value());
  EXPECT_EQ(r.Acquire("tenants/a/principals/y", 20), std::nullopt);
}

TEST_F(RateLimiterTest, ZeroRateDisables) {
  RateLimitOptions o = TestOptions();
  o.requests_per_second = 0;
  RateLimiter r(o, &clock_);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(r.Acquire("p", 1000), std::nullopt);
}

TEST_F(RateLimiterTest, ClockSteppingBackRefillsNothing) {
  RateLimiter r(TestOptions(), &clock_);
  EXPECT_EQ(r.Acquire("p", 20), std::nullopt);
  clock_.Advance(-absl::Hours(1));
  EXPECT_TRUE(r.Acquire("p").has_value());
  clock_.Advance(absl::Hours(1) + absl::Milliseconds(100));
  EXPECT_EQ(r.Acquire("p"), std::nullopt);
}

TEST_F(RateLimiterTest, MemoryIsBoundedLeastRecentlySeenDropped) {
  RateLimitOptions o = TestOptions();
  o.max_principals = 2;
  RateLimiter r(o, &clock_);
  EXPECT_EQ(r.Acquire("a", 20), std::nullopt);
  EXPECT_EQ(r.Acquire("b", 20), std::nullopt);
  EXPECT_TRUE(r.Acquire("a").has_value());      // a is now more recent than b
  EXPECT_EQ(r.Acquire("c", 20), std::nullopt);  // full: b goes
  EXPECT_TRUE(r.Acquire("a").has_value());      // a kept its empty bucket
  EXPECT_EQ(r.Acquire("b", 20), std::nullopt);  // b starts again full (c goes)
  EXPECT_TRUE(r.Acquire("a").has_value());      // a still tracked and empty
  EXPECT_EQ(r.Acquire("c", 20), std::nullopt);  // c starts again full (b goes)
}

TEST_F(RateLimiterTest, ConcurrentAcquireNeverExceedsTheBurst) {
  RateLimitOptions o = TestOptions();
  o.burst = 100;
  RateLimiter r(o, &clock_);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 8; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < 1000; ++i) {
        if (!r.Acquire("shared").has_value()) ++allowed;
        r.Acquire(absl::StrCat("own-", th, "-", i % 50));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 100);
}

// The clock moves while threads take from one bucket and crowd the table
// with others: never more than the burst plus what the elapsed time refills.
TEST_F(RateLimiterTest, ConcurrentAcquireWithAMovingClockStaysWithinTheRate) {
  RateLimitOptions o = TestOptions();  // 10/s, burst 20
  o.max_principals = 1000;
  RateLimiter r(o, &clock_);
  constexpr int kSteps = 200;
  const absl::Duration step = absl::Milliseconds(50);  // half a request each
  std::atomic<bool> done{false};
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; !done; ++i) {
        if (!r.Acquire("shared").has_value()) ++allowed;
        r.Acquire(absl::StrCat("own-", th, "-", i % 300), 2);
      }
    });
  }
  for (int i = 0; i < kSteps; ++i) {
    clock_.Advance(step);
    absl::SleepFor(absl::Microseconds(200));
  }
  done = true;
  for (auto& th : threads) th.join();
  const int refill = static_cast<int>(absl::ToDoubleSeconds(step * kSteps) * 10);
  EXPECT_LE(allowed.load(), 20 + refill);
  EXPECT_GE(allowed.load(), 20);
}

}  // namespace
}  // namespace clavis::kms::auth
