#include "kms/policy/simulator.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::kms::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPolicy[] = R"({"version": "2026-11-01", "statements": [
  {"sid": "billing-agents", "effect": "Allow",
   "principals": ["tenants/acme/principals/billing-app"], "actions": ["Decrypt"],
   "conditions": {"segmentPrefixes": ["acme/billing/"]}}]})";

TEST(SimulatorTest, ReportsDecisionAndDecidingStatement) {
  absl::StatusOr<SimulationResult> result =
      Simulate(kPolicy, "tenants/acme/principals/billing-app", {}, "Decrypt",
               "tenants/acme/keys/crm", std::string("acme/billing/7"), {}, absl::Now());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->decision.allowed);
  EXPECT_EQ(result->decision.statement_index, 0u);
  EXPECT_EQ(result->decision.sid, "billing-agents");
  EXPECT_THAT(result->deciding_statement_json, HasSubstr("\"sid\": \"billing-agents\""));

  result = Simulate(kPolicy, "tenants/acme/principals/billing-app", {}, "Decrypt",
                    "tenants/acme/keys/crm/segments/acme/hr/1", std::nullopt, {}, absl::Now());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->decision.allowed);
  EXPECT_EQ(result->deciding_statement_json, "");

  result = Simulate(kPolicy, "tenants/globex/principals/billing-app", {}, "Decrypt",
                    "tenants/acme/keys/crm", std::string("acme/billing/7"), {}, absl::Now());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->decision.reason, HasSubstr("cross-tenant access is never allowed"));
}

TEST(SimulatorTest, RejectsBadInputWithTheFieldName) {
  auto message = [](absl::StatusOr<SimulationResult> r) {
    return std::string(r.status().message());
  };
  EXPECT_THAT(message(Simulate("{", "tenants/acme/principals/a", {}, "Decrypt",
                               "tenants/acme/keys/crm", std::nullopt, {}, absl::Now())),
              StartsWith("document: not valid JSON"));
  EXPECT_THAT(message(Simulate(kPolicy, "tenants/acme/principals/a", {}, "Decrpyt",
                               "tenants/acme/keys/crm", std::nullopt, {}, absl::Now())),
              StartsWith("action: unknown action"));
  EXPECT_THAT(message(Simulate(kPolicy, "acme/a", {}, "Decrypt", "tenants/acme/keys/crm",
                               std::nullopt, {}, absl::Now())),
              StartsWith("principal: "));
  EXPECT_THAT(message(Simulate(kPolicy, "tenants/acme/principals/a", {}, "Decrypt",
                               "tenants/acme/kees/crm", std::nullopt, {}, absl::Now())),
              StartsWith("resource: "));
}

}  // namespace
}  // namespace clavis::kms::policy
