#include "kms/policy/conditions.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/policy/evaluator.h"
#include "kms/policy/policy_parser.h"

namespace clavis::kms::policy {
namespace {

using ::testing::HasSubstr;

absl::Time Utc(int y, int m, int d, int h, int min = 0) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, h, min, 0), absl::UTCTimeZone());
}

TEST(SegmentPrefixTest, MatchesWholePartsOnly) {
  EXPECT_TRUE(SegmentUnderPrefix("acme/billing", "acme/billing"));
  EXPECT_TRUE(SegmentUnderPrefix("acme/billing/2026", "acme/billing"));
  EXPECT_TRUE(SegmentUnderPrefix("acme/billing/2026/11", "acme"));
  EXPECT_FALSE(SegmentUnderPrefix("acme/billingx", "acme/billing"));
  EXPECT_FALSE(SegmentUnderPrefix("acme/billingx/1", "acme/billing"));
  EXPECT_FALSE(SegmentUnderPrefix("acme/bill", "acme/billing"));
  EXPECT_FALSE(SegmentUnderPrefix("acmex/billing", "acme"));
  EXPECT_FALSE(SegmentUnderPrefix("other/acme/billing", "acme/billing"));
}

TEST(ConditionsTest, TimeWindowIsHalfOpen) {
  Conditions c;
  c.not_before = Utc(2026, 11, 1, 0);
  c.not_after = Utc(2026, 12, 1, 0);
  EXPECT_FALSE(ConditionsHold(c, {std::nullopt, nullptr, Utc(2026, 10, 31, 23, 59)}));
  EXPECT_TRUE(ConditionsHold(c, {std::nullopt, nullptr, Utc(2026, 11, 1, 0)}));
  EXPECT_TRUE(ConditionsHold(c, {std::nullopt, nullptr, Utc(2026, 11, 30, 23, 59)}));
  EXPECT_FALSE(ConditionsHold(c, {std::nullopt, nullptr, Utc(2026, 12, 1, 0)}));
  EXPECT_THAT(FirstFailedCondition(c, {std::nullopt, nullptr, Utc(2027, 1, 1, 0)}),
              HasSubstr("at or after notAfter 2026-12-01T00:00:00"));
}

TEST(ConditionsTest, DailyHoursIncludingWrapAroundMidnight) {
  Conditions office;
  office.daily_hours_utc = DailyHours{9, 17};
  EXPECT_FALSE(ConditionsHold(office, {std::nullopt, nullptr, Utc(2026, 11, 2, 8, 59)}));
  EXPECT_TRUE(ConditionsHold(office, {std::nullopt, nullptr, Utc(2026, 11, 2, 9)}));
  EXPECT_TRUE(ConditionsHold(office, {std::nullopt, nullptr, Utc(2026, 11, 2, 16, 59)}));
  EXPECT_FALSE(ConditionsHold(office, {std::nullopt, nullptr, Utc(2026, 11, 2, 17)}));
  Conditions night;
  night.daily_hours_utc = DailyHours{22, 6};
  EXPECT_TRUE(ConditionsHold(night, {std::nullopt, nullptr, Utc(2026, 11, 2, 23)}));
  EXPECT_TRUE(ConditionsHold(night, {std::nullopt, nullptr, Utc(2026, 11, 2, 0)}));
  EXPECT_TRUE(ConditionsHold(night, {std::nullopt, nullptr, Utc(2026, 11, 2, 5, 59)}));
  EXPECT_FALSE(ConditionsHold(night, {std::nullopt, nullptr, Utc(2026, 11, 2, 6)}));
  EXPECT_FALSE(ConditionsHold(night, {std::nullopt, nullptr, Utc(2026, 11, 2, 12)}));
  Conditions until_midnight;
  until_midnight.daily_hours_utc = DailyHours{20, 24};
  EXPECT_TRUE(ConditionsHold(until_midnight, {std::nullopt, nullptr, Utc(2026, 11, 2, 23, 59)}));
  EXPECT_FALSE(ConditionsHold(until_midnight, {std::nullopt, nullptr, Utc(2026, 11, 2, 0)}));
}

TEST(ConditionsTest, ContextPairsMustAllBePresentAndEqual) {
  Conditions c;
  c.encryption_context = {{"table", "orders"}, {"tenant", "acme"}};
  std::map<std::string, std::string> exact = {{"table", "orders"}, {"tenant", "acme"}};
  std::map<std::string, std::string> more = {{"table", "orders"}, {"tenant", "acme"}, {"row", "1"}};
  std::map<std::string, std::string> missing = {{"table", "orders"}};
  std::map<std::string, std::string> other = {{"table", "orders"}, {"tenant", "globex"}};
  std::map<std::string, std::string> case_differs = {{"table", "Orders"}, {"tenant", "acme"}};
  absl::Time t = Utc(2026, 11, 2, 12);
  EXPECT_TRUE(ConditionsHold(c, {std::nullopt, &exact, t}));
  EXPECT_TRUE(ConditionsHold(c, {std::nullopt, &more, t}));
  EXPECT_FALSE(ConditionsHold(c, {std::nullopt, &missing, t}));
  EXPECT_FALSE(ConditionsHold(c, {std::nullopt, &other, t}));
  EXPECT_FALSE(ConditionsHold(c, {std::nullopt, &case_differs, t}));
  EXPECT_FALSE(ConditionsHold(c, {std::nullopt, nullptr, t}));
  // The value is never echoed: contexts may hold personal data.
  EXPECT_THAT(FirstFailedCondition(c, {std::nullopt, &other, t}),
              ::testing::Not(HasSubstr("globex")));
}

TEST(ConditionsTest, SegmentConditionNeverHoldsWithoutASegment) {
  Conditions c;
  c.segment_prefixes = {"acme/billing"};
  EXPECT_FALSE(ConditionsHold(c, {std::nullopt, nullptr, absl::UnixEpoch()}));
  EXPECT_TRUE(ConditionsHold(c, {"acme/billing/x", nullptr, absl::UnixEpoch()}));
}

TEST(ConditionsTest, ImplicationIsSound) {
  Conditions none;
  Conditions billing;
  billing.segment_prefixes = {"acme/billing"};
  Conditions billing_2026;
  billing_2026.segment_prefixes = {"acme/billing/2026"};
  EXPECT_TRUE(ConditionsImply(billing_2026, billing));
  EXPECT_FALSE(ConditionsImply(billing, billing_2026));
  EXPECT_TRUE(ConditionsImply(billing, none));
  EXPECT_FALSE(ConditionsImply(none, billing));
  Conditions billingx;
  billingx.segment_prefixes = {"acme/billingx"};
  EXPECT_FALSE(ConditionsImply(billingx, billing));

  Conditions office;
  office.daily_hours_utc = DailyHours{9, 17};
  Conditions morning;
  morning.daily_hours_utc = DailyHours{9, 12};
  EXPECT_TRUE(ConditionsImply(morning, office));
  EXPECT_FALSE(ConditionsImply(office, morning));

  Conditions november;
  november.not_before = Utc(2026, 11, 1, 0);
  november.not_after = Utc(2026, 12, 1, 0);
  Conditions q4;
  q4.not_before = Utc(2026, 10, 1, 0);
  q4.not_after = Utc(2027, 1, 1, 0);
  EXPECT_TRUE(ConditionsImply(november, q4));
  EXPECT_FALSE(ConditionsImply(q4, november));

  Conditions ctx;
  ctx.encryption_context = {{"a", "1"}};
  Conditions ctx2;
  ctx2.encryption_context = {{"a", "1"}, {"b", "2"}};
  EXPECT_TRUE(ConditionsImply(ctx2, ctx));
  EXPECT_FALSE(ConditionsImply(ctx, ctx2));
}

TEST(ConditionsTest, TimeAndContextConditionsInAPolicy) {
  absl::StatusOr<Policy> policy = ParsePolicy(R"({"version": 1, "statements": [
      {"sid": "batch", "effect": "Allow", "principals": ["tenants/acme/principals/batch"],
       "actions": ["Decrypt"],
       "conditions": {"notBefore": "2026-11-01T00:00:00Z", "notAfter": "2026-12-01T00:00:00Z",
                      "dailyHoursUtc": {"startHour": 1, "endHour": 4},
                      "encryptionContext": {"job": "nightly"}}}]})",
                                              PolicyScope{"acme", "crm"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  AccessRequest r{
      "tenants/acme/principals/batch", {}, "acme", Action::kDecrypt, "tenants/acme/keys/crm"};
  r.encryption_context = {{"job", "nightly"}};
  r.time = Utc(2026, 11, 15, 2);
  EXPECT_TRUE(Decide(*policy, r).allowed);
  r.time = Utc(2026, 11, 15, 4);
  EXPECT_THAT(Decide(*policy, r).reason, HasSubstr("hour 4 UTC is outside the daily window 1-4"));
  r.time = Utc(2026, 12, 15, 2);
  EXPECT_THAT(Decide(*policy, r).reason, HasSubstr("at or after notAfter"));
  r.time = Utc(2026, 10, 15, 2);
  EXPECT_THAT(Decide(*policy, r).reason, HasSubstr("before notBefore"));
  r.time = Utc(2026, 11, 15, 2);
  r.encryption_context = {{"job", "adhoc"}};
  EXPECT_THAT(Decide(*policy, r).reason, HasSubstr("encryption context \"job\" has another value"));
}

}  // namespace
}  // namespace clavis::kms::policy
