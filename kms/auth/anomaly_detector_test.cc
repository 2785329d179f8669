#include "kms/auth/anomaly_detector.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::auth {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kApp[] = "tenants/acme/principals/app";

AnomalyOptions TestOptions() {
  AnomalyOptions o;
  o.bucket = absl::Minutes(1);
  o.baseline_buckets = 5;
  o.rate_factor = 10;
  o.min_decrypts_for_alert = 100;
  o.denial_streak = 4;
  o.alert_cooldown = absl::Minutes(10);
  o.max_principals = 100;
  return o;
}

class AnomalyDetectorTest : public ::testing::Test {
 protected:
  // `per_bucket` decrypts in each of `buckets` buckets, starting at the next
  // bucket boundary. Returns every alert raised.
  std::vector<Alert> Steady(AnomalyDetector& d, absl::string_view p, uint64_t per_bucket,
                            int buckets) {
    std::vector<Alert> all;
    for (int i = 0; i < buckets; ++i) {
      NextBucket();
      for (const Alert& a : d.Observe(p, per_bucket, false)) all.push_back(a);
    }
    return all;
  }
  void NextBucket() {
    const absl::Duration into = (clock_.Now() - absl::UnixEpoch()) % absl::Minutes(1);
    clock_.Advance(absl::Minutes(1) - into);
  }

  FakeClock clock_;
};

TEST_F(AnomalyDetectorTest, DecryptRateFarAboveBaselineAlertsOnce) {
  AnomalyDetector d(TestOptions(), &clock_);
  d.Observe(kApp, 20, false);                      // first (partial) bucket
  ASSERT_THAT(Steady(d, kApp, 20, 5), IsEmpty());  // baseline 20 per bucket
  NextBucket();
  // 200 = 10 x baseline: not more than the factor.
  EXPECT_THAT(d.Observe(kApp, 200, false), IsEmpty());
  // 201 is.
  std::vector<Alert> alerts = d.Observe(kApp, 1, false);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].principal, kApp);
  EXPECT_EQ(alerts[0].kind, "decrypt-rate");
  EXPECT_THAT(alerts[0].message, HasSubstr("201 decrypts in the current 1m bucket"));
  EXPECT_THAT(alerts[0].message, HasSubstr("average of 20.0 per bucket"));
  EXPECT_EQ(d.alerts_raised(), 1u);
  // Cooldown: more of the same raises nothing for 10 minutes.
  EXPECT_THAT(d.Observe(kApp, 1000, false), IsEmpty());
  for (int i = 0; i < 9; ++i) {
    NextBucket();
    EXPECT_THAT(d.Observe(kApp, 100000, false), IsEmpty()) << i;
  }
  clock_.Advance(absl::Minutes(1));
  // The burst itself is now the baseline: back to normal is no alert ...
  EXPECT_THAT(d.Observe(kApp, 100, false), IsEmpty());
  // ... and a new burst after the cooldown alerts again.
  for (int i = 0; i < 6; ++i) {
    NextBucket();
    d.Observe(kApp, 1, false);
  }
  NextBucket();
  EXPECT_THAT(d.Observe(kApp, 500, false), ElementsAre(Field(&Alert::kind, "decrypt-rate")));
  EXPECT_EQ(d.alerts_raised(), 2u);
}

TEST_F(AnomalyDetectorTest, NoRateAlertWithoutAFullBaseline) {
  AnomalyDetector d(TestOptions(), &clock_);
  // A new principal (or one seen first after a restart): busy from the start.
  d.Observe(kApp, 5000, false);
  EXPECT_THAT(Steady(d, kApp, 5000, 5), IsEmpty());
  // Its baseline now exists: 10x it alerts.
  NextBucket();
  EXPECT_THAT(d.Observe(kApp, 50001, false), ElementsAre(Field(&Alert::kind, "decrypt-rate")));
}

TEST_F(AnomalyDetectorTest, QuietPrincipalsBurstNeedsTheMinimum) {
  AnomalyDetector d(TestOptions(), &clock_);
  d.Observe(kApp, 0, false);
  ASSERT_THAT(Steady(d, kApp, 0, 6), IsEmpty());  // baseline 0
  NextBucket();
  for (int i = 0; i < 99; ++i) ASSERT_THAT(d.Observe(kApp, 1, false), IsEmpty()) << i;
  EXPECT_THAT(d.Observe(kApp, 1, false), ElementsAre(Field(&Alert::kind, "decrypt-rate")));
}

TEST_F(AnomalyDetectorTest, OldBucketsLeaveTheBaseline) {
  AnomalyDetector d(TestOptions(), &clock_);
  d.Observe(kApp, 1000, false);
  ASSERT_THAT(Steady(d, kApp, 1000, 6), IsEmpty());
  // Silent for a long time (a jump over more than the whole ring).
  clock_.Advance(absl::Hours(3));
  NextBucket();
  EXPECT_THAT(d.Observe(kApp, 150, false), ElementsAre(Field(&Alert::kind, "decrypt-rate")));
  // A gap shorter than the ring: 5 silent buckets, the sixth counts.
  AnomalyDetector d2(TestOptions(), &clock_);
  d2.Observe(kApp, 600, false);
  ASSERT_THAT(Steady(d2, kApp, 600, 6), IsEmpty());
  clock_.Advance(absl::Minutes(4));
  NextBucket();
  // Baseline: one bucket of 600 in the previous 5 = 120 per bucket.
  EXPECT_THAT(d2.Observe(kApp, 1200, false), IsEmpty());
  EXPECT_THAT(d2.Observe(kApp, 1, false), ElementsAre(Field(&Alert::kind, "decrypt-rate")));
}

TEST_F(AnomalyDetectorTest, DenialStreakAlertsAndSuccessResets) {
  AnomalyDetector d(TestOptions(), &clock_);
  for (int i = 0; i < 3; ++i) EXPECT_THAT(d.Observe(kApp, 0, true), IsEmpty());
  d.Observe(kApp, 0, false);  // the streak is broken
  for (int i = 0; i < 3; ++i) EXPECT_THAT(d.Observe(kApp, 0, true), IsEmpty());
  std::vector<Alert> alerts = d.Observe(kApp, 0, true);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].kind, "denial-streak");
  EXPECT_EQ(alerts[0].principal, kApp);
  EXPECT_THAT(alerts[0].message, HasSubstr("4 consecutive denied calls"));
  // Cooldown, even across a new streak.
  for (int i = 0; i < 20; ++i) EXPECT_THAT(d.Observe(kApp, 0, true), IsEmpty());
  d.Observe(kApp, 0, false);
  for (int i = 0; i < 20; ++i) EXPECT_THAT(d.Observe(kApp, 0, true), IsEmpty());
  clock_.Advance(absl::Minutes(10));
  EXPECT_THAT(d.Observe(kApp, 0, true), ElementsAre(Field(&Alert::kind, "denial-streak")));
  // Other principals have their own streaks.
  for (int i = 0; i < 3; ++i) EXPECT_THAT(d.Observe("other", 0, true), IsEmpty());
  EXPECT_THAT(d.Observe("other", 0, true), ElementsAre(Field(&Alert::principal, "other")));
  EXPECT_EQ(d.alerts_raised(), 3u);
}

TEST_F(AnomalyDetectorTest, MemoryIsBoundedLeastRecentlySeenDropped) {
  AnomalyOptions o = TestOptions();
  o.max_principals = 2;
  AnomalyDetector d(o, &clock_);
  for (int i = 0; i < 3; ++i) d.Observe("a", 0, true);
  for (int i = 0; i < 3; ++i) d.Observe("b", 0, true);
  d.Observe("a", 0, true) /* a's 4th: alert */;
  EXPECT_EQ(d.alerts_raised(), 1u);
  d.Observe("c", 0, true);                          // full: b (least recently seen) goes
  EXPECT_THAT(d.Observe("b", 0, true), IsEmpty());  // b starts again at 1 (a goes)
  for (int i = 0; i < 2; ++i) EXPECT_THAT(d.Observe("b", 0, true), IsEmpty());
  EXPECT_THAT(d.Observe("b", 0, true), ElementsAre(Field(&Alert::principal, "b")));
  for (int i = 0; i < 5000; ++i) d.Observe(absl::StrCat("flood-", i), 0, true);
  // a was forgotten with its cooldown: a new streak alerts at once.
  for (int i = 0; i < 3; ++i) EXPECT_THAT(d.Observe("a", 0, true), IsEmpty());
  EXPECT_THAT(d.Observe("a", 0, true), ElementsAre(Field(&Alert::principal, "a")));
}

TEST_F(AnomalyDetectorTest, ConcurrentObserveSmokeTest) {
  AnomalyDetector d(TestOptions(), &clock_);
  std::atomic<int> streak_alerts{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 8; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < 1000; ++i) {
        for (const Alert& a : d.Observe("shared", 0, true)) {
          if (a.kind == "denial-streak") ++streak_alerts;
        }
        d.Observe(absl::StrCat("own-", th, "-", i % 13), i % 3, i % 2 == 0);
      }
    });
  }
  for (auto& th : threads) th.join();
  // One long streak and a cooldown that does not end (the clock stands).
  EXPECT_EQ(streak_alerts.load(), 1);
  EXPECT_GE(d.alerts_raised(), 1u);
}

}  // namespace
}  // namespace clavis::kms::auth
