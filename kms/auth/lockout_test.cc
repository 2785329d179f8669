#include "kms/auth/lockout.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::auth {
namespace {

using ::testing::Optional;

LockoutOptions TestOptions() {
  LockoutOptions o;
  o.max_failures = 3;
  o.window = absl::Minutes(1);
  o.base_lockout = absl::Seconds(10);
  o.max_lockout = absl::Seconds(45);
  o.forget_after = absl::Minutes(10);
  o.max_subjects = 100;
  return o;
}

class LockoutTest : public ::testing::Test {
 protected:
  // Records failures until one locks; returns the period.
  std::optional<absl::Duration> FailUntilLocked(AuthFailureTracker& t, absl::string_view s) {
    for (int i = 0; i < 100; ++i) {
      if (auto locked = t.RecordFailure(s); locked.has_value()) return locked;
    }
    return std::nullopt;
  }

  FakeClock clock_;
};

TEST_F(LockoutTest, LocksAfterMaxFailuresWithinTheWindowAndRecovers) {
  AuthFailureTracker t(TestOptions(), &clock_);
  EXPECT_EQ(t.LockedFor("peer:10.0.0.7"), std::nullopt);
  EXPECT_EQ(t.RecordFailure("peer:10.0.0.7"), std::nullopt);
  clock_.Advance(absl::Seconds(20));
  EXPECT_EQ(t.RecordFailure("peer:10.0.0.7"), std::nullopt);
  EXPECT_EQ(t.LockedFor("peer:10.0.0.7"), std::nullopt);
  clock_.Advance(absl::Seconds(20));
  EXPECT_THAT(t.RecordFailure("peer:10.0.0.7"), Optional(absl::Seconds(10)));
  EXPECT_THAT(t.LockedFor("peer:10.0.0.7"), Optional(absl::Seconds(10)));
  EXPECT_EQ(t.LockedFor("peer:10.0.0.8"), std::nullopt);  // others unaffected
  clock_.Advance(absl::Seconds(4));
  EXPECT_THAT(t.LockedFor("peer:10.0.0.7"), Optional(absl::Seconds(6)));
  clock_.Advance(absl::Seconds(6));
  EXPECT_EQ(t.LockedFor("peer:10.0.0.7"), std::nullopt);
  // The count started again: one failure does not re-lock.
  EXPECT_EQ(t.RecordFailure("peer:10.0.0.7"), std::nullopt);
}

TEST_F(LockoutTest, FailuresOutsideTheWindowDoNotAddUp) {
  AuthFailureTracker t(TestOptions(), &clock_);
  // A failure every 30 s: at most 2 within any minute.
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(t.RecordFailure("s"), std::nullopt) << i;
    clock_.Advance(absl::Seconds(30));
  }
  // The window slides: three failures within any 60 s lock, wherever they
  // fall relative to the first failure.
  clock_.Advance(absl::Seconds(40));
  EXPECT_EQ(t.RecordFailure("s"), std::nullopt);
  clock_.Advance(absl::Seconds(19));
  EXPECT_EQ(t.RecordFailure("s"), std::nullopt);
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(t.RecordFailure("s").has_value());
}

TEST_F(LockoutTest, SuccessClearsTheCountButNotAnActiveLock) {
  AuthFailureTracker t(TestOptions(), &clock_);
  t.RecordFailure("s");
  t.RecordFailure("s");
  t.RecordSuccess("s");
  EXPECT_EQ(t.RecordFailure("s"), std::nullopt);
  EXPECT_EQ(t.RecordFailure("s"), std::nullopt);
  EXPECT_TRUE(t.RecordFailure("s").has_value());
  t.RecordSuccess("s");
  EXPECT_THAT(t.LockedFor("s"), Optional(absl::Seconds(10)));
  t.RecordSuccess("unknown");  // harmless
}

TEST_F(LockoutTest, FailuresWhileLockedNeitherCountNorExtend) {
  AuthFailureTracker t(TestOptions(), &clock_);
  ASSERT_TRUE(FailUntilLocked(t, "s").has_value());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(t.RecordFailure("s"), std::nullopt);
  EXPECT_THAT(t.LockedFor("s"), Optional(absl::Seconds(10)));
}

TEST_F(LockoutTest, RepeatedLockoutsDoubleUpToTheCap) {
  AuthFailureTracker t(TestOptions(), &clock_);
  const std::vector<absl::Duration> expected = {absl::Seconds(10), absl::Seconds(20),
                                                absl::Seconds(40), absl::Seconds(45),
                                                absl::Seconds(45)};
  for (absl::Duration want : expected) {
    EXPECT_THAT(FailUntilLocked(t, "s"), Optional(want));
    EXPECT_THAT(t.LockedFor("s"), Optional(want));
    clock_.Advance(want);
    EXPECT_EQ(t.LockedFor("s"), std::nullopt);
  }
  // A success between lock-outs does not reset the growth.
  t.RecordSuccess("s");
  EXPECT_THAT(FailUntilLocked(t, "s"), Optional(absl::Seconds(45)));
}

TEST_F(LockoutTest, GrowthIsForgottenAfterAQuietPeriod) {
  AuthFailureTracker t(TestOptions(), &clock_);
  EXPECT_THAT(FailUntilLocked(t, "s"), Optional(absl::Seconds(10)));
  clock_.Advance(absl::Seconds(10));
  EXPECT_THAT(FailUntilLocked(t, "s"), Optional(absl::Seconds(20)));
  // Quiet for just under forget_after (counted from the end of the lock).
  clock_.Advance(absl::Seconds(20) + absl::Minutes(10) - absl::Seconds(1));
  EXPECT_THAT(FailUntilLocked(t, "s"), Optional(absl::Seconds(40)));
  clock_.Advance(absl::Seconds(40) + absl::Minutes(10));
  EXPECT_THAT(FailUntilLocked(t, "s"), Optional(absl::Seconds(10)));
}

TEST_F(LockoutTest, LargeGrowthDoesNotOverflow) {
  LockoutOptions o = TestOptions();
  o.max_failures = 1;
  o.max_lockout = absl::Hours(24 * 365);
  AuthFailureTracker t(o, &clock_);
  absl::Duration last;
  for (int i = 0; i < 200; ++i) {
    auto locked = t.RecordFailure("s");
    ASSERT_TRUE(locked.has_value()) << i;
    EXPECT_GT(*locked, absl::ZeroDuration());
    EXPECT_LE(*locked, o.max_lockout);
    last = *locked;
    clock_.Advance(*locked);
  }
  EXPECT_EQ(last, o.max_lockout);
}

TEST_F(LockoutTest, MemoryIsBoundedOldestFailureDroppedFirst) {
  LockoutOptions o = TestOptions();
  o.max_subjects = 3;
  o.max_failures = 2;
  AuthFailureTracker t(o, &clock_);
  ASSERT_TRUE(FailUntilLocked(t, "a").has_value());
  clock_.Advance(absl::Seconds(1));
  t.RecordFailure("b");
  clock_.Advance(absl::Seconds(1));
  t.RecordFailure("c");
  clock_.Advance(absl::Seconds(1));
  t.RecordFailure("b");  // b is now the most recent; c, then a, are older
  ASSERT_TRUE(t.LockedFor("b").has_value());
  EXPECT_TRUE(t.LockedFor("a").has_value());
  t.RecordFailure("d");  // full: a (oldest last failure) goes
  EXPECT_EQ(t.LockedFor("a"), std::nullopt);
  EXPECT_TRUE(t.LockedFor("b").has_value());
  // c is still tracked: one more failure locks it.
  EXPECT_TRUE(t.RecordFailure("c").has_value());
  EXPECT_TRUE(t.RecordFailure("d").has_value());

  for (int i = 0; i < 1000; ++i) t.RecordFailure(absl::StrCat("flood-", i));
  // The last three are tracked; the earlier ones are gone.
  EXPECT_TRUE(t.RecordFailure("flood-999").has_value());
  EXPECT_EQ(t.RecordFailure("flood-0"), std::nullopt);
}

TEST_F(LockoutTest, ConcurrentFailuresLockExactlyOnce) {
  LockoutOptions o = TestOptions();
  o.max_failures = 50;
  AuthFailureTracker t(o, &clock_);
  std::atomic<int> lockouts{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 8; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < 500; ++i) {
        if (t.RecordFailure("shared").has_value()) ++lockouts;
        t.RecordFailure(absl::StrCat("own-", th, "-", i % 7));
        t.LockedFor("shared");
        t.RecordSuccess(absl::StrCat("own-", th, "-", i % 5));
      }
    });
  }
  for (auto& th : threads) th.join();
  // 4000 failures, but after the 50th the subject is locked and the rest
  // are ignored (the clock does not move).
  EXPECT_EQ(lockouts.load(), 1);
  EXPECT_THAT(t.LockedFor("shared"), Optional(absl::Seconds(10)));
}

}  // namespace
}  // namespace clavis::kms::auth
