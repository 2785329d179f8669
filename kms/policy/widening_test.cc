#include "kms/policy/widening.h"

#include <string>

#include "gtest/gtest.h"
#include "kms/policy/policy_parser.h"

namespace clavis::kms::policy {
namespace {

Policy P(const std::string& statements, const PolicyScope& scope = {"acme", "crm"}) {
  absl::StatusOr<Policy> policy =
      ParsePolicy("{\"version\": 1, \"statements\": [" + statements + "]}", scope);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *policy : Policy{};
}

constexpr char kUserDecrypt[] = R"({"effect": "Allow",
    "principals": ["tenants/acme/principals/u"], "actions": ["Decrypt"]})";
constexpr char kUserDecryptEncrypt[] = R"({"effect": "Allow",
    "principals": ["tenants/acme/principals/u"], "actions": ["Decrypt", "Encrypt"]})";
constexpr char kUserBilling[] = R"({"effect": "Allow",
    "principals": ["tenants/acme/principals/u"], "actions": ["Decrypt"],
    "conditions": {"segmentPrefixes": ["acme/billing"]}})";
constexpr char kUserBilling2026[] = R"({"effect": "Allow",
    "principals": ["tenants/acme/principals/u"], "actions": ["Decrypt"],
    "conditions": {"segmentPrefixes": ["acme/billing/2026"]}})";
constexpr char kGroupDecrypt[] = R"({"effect": "Allow",
    "principals": ["tenants/acme/groups/g"], "actions": ["Decrypt"]})";
constexpr char kDenyMallory[] = R"({"effect": "Deny",
    "principals": ["tenants/acme/principals/m"], "actions": ["Decrypt"]})";
constexpr char kDenyMalloryAll[] = R"({"effect": "Deny",
    "principals": ["tenants/acme/principals/m", "tenants/acme/principals/n"], "actions": ["*"]})";
constexpr char kDenyMalloryInBilling[] = R"({"effect": "Deny",
    "principals": ["tenants/acme/principals/m"], "actions": ["Decrypt"],
    "conditions": {"segmentPrefixes": ["acme/billing"]}})";

struct Case {
  const char* name;
  std::string old_statements;
  std::string new_statements;
  bool widens;
};

TEST(WidensAccessTest, Cases) {
  const std::string c = ",";
  const Case cases[] = {
      {"identical", kUserDecrypt, kUserDecrypt, false},
      {"adds an action", kUserDecrypt, kUserDecryptEncrypt, true},
      {"removes an action", kUserDecryptEncrypt, kUserDecrypt, false},
      {"adds a principal", kUserDecrypt, kUserDecrypt + c + kGroupDecrypt, true},
      {"removes a principal", kUserDecrypt + c + kGroupDecrypt, kGroupDecrypt, false},
      {"drops a segment condition", kUserBilling, kUserDecrypt, true},
      {"adds a segment condition", kUserDecrypt, kUserBilling, false},
      {"narrows the prefix", kUserBilling, kUserBilling2026, false},
      {"widens the prefix", kUserBilling2026, kUserBilling, true},
      {"removes a deny", kUserDecrypt + c + kDenyMallory, kUserDecrypt, true},
      {"adds a deny", kUserDecrypt, kUserDecrypt + c + kDenyMallory, false},
      {"strengthens a deny", kDenyMallory, kDenyMalloryAll, false},
      {"weakens a deny to a segment", kDenyMallory, kDenyMalloryInBilling, true},
      {"widens a segment deny to all", kDenyMalloryInBilling, kDenyMallory, false},
      {"reorders statements", kUserDecrypt + c + kGroupDecrypt, kGroupDecrypt + c + kUserDecrypt,
       false},
      // Conservative: a group grant is not known to cover its members.
      {"principal grant replaced by group", kUserDecrypt, kGroupDecrypt, true},
  };
  for (const Case& test : cases) {
    EXPECT_EQ(WidensAccess(P(test.old_statements), P(test.new_statements)), test.widens)
        << test.name;
  }
}

TEST(WidensAccessTest, ActionsSplitAcrossOldStatementsAreCovered) {
  Policy old_policy = P(std::string(kUserDecrypt) + R"(, {"effect": "Allow",
      "principals": ["tenants/acme/principals/u"], "actions": ["Encrypt"]})");
  EXPECT_FALSE(WidensAccess(old_policy, P(kUserDecryptEncrypt)));
}

TEST(WidensAccessTest, OtherScopeAlwaysWidens) {
  EXPECT_TRUE(WidensAccess(P(kUserDecrypt), P(kUserDecrypt, {"acme", "other"})));
}

}  // namespace
}  // namespace clavis::kms::policy
