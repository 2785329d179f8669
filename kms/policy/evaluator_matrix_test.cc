// The authorization matrix: every (principal, action, resource) cell of one
// realistic policy is decided and compared with an explicit expectation.
// Expectations are listed as rules below, not computed from the evaluator's
// logic, so the table is an independent specification.
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/policy/evaluator.h"
#include "kms/policy/policy_parser.h"

namespace clavis::kms::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kPolicy[] = R"json({
  "version": "2026-11-01",
  "statements": [
    {"sid": "billing-agents", "effect": "Allow",
     "principals": ["tenants/acme/principals/billing-app"],
     "actions": ["GenerateDataKey", "Decrypt", "GetKey"],
     "conditions": {"segmentPrefixes": ["acme/billing/"]}},
    {"sid": "auditors", "effect": "Allow",
     "principals": ["tenants/acme/groups/auditors"], "actions": ["ReadAudit"]},
    {"sid": "admins", "effect": "Allow",
     "principals": ["tenants/acme/groups/admins"],
     "actions": ["Rotate", "Destroy", "DestroySegment", "SetPolicy", "GetKey"]},
    {"sid": "compromised", "effect": "Deny",
     "principals": ["tenants/acme/principals/mallory"], "actions": ["*"]},
    {"sid": "mallory-was-a-user", "effect": "Allow",
     "principals": ["tenants/acme/principals/mallory"], "actions": ["Decrypt"]},
    {"sid": "orders-context", "effect": "Allow",
     "principals": ["tenants/acme/principals/orders-app"], "actions": ["Encrypt", "Decrypt"],
     "conditions": {"encryptionContext": {"table": "orders"}}},
    {"sid": "no-interns-destroy", "effect": "Deny",
     "principals": ["tenants/acme/groups/interns"], "actions": ["Destroy*"]}
  ]
})json";

struct PrincipalCase {
  std::string label;
  std::string principal;
  std::string tenant;
  std::vector<std::string> groups;
};

const std::vector<PrincipalCase>& Principals() {
  static const auto* const cases = new std::vector<PrincipalCase>{
      {"billing", "tenants/acme/principals/billing-app", "acme", {}},
      {"auditor", "tenants/acme/principals/aud", "acme", {"tenants/acme/groups/auditors"}},
      {"admin", "tenants/acme/principals/alice", "acme", {"tenants/acme/groups/admins"}},
      {"intern",
       "tenants/acme/principals/ann",
       "acme",
       {"tenants/acme/groups/admins", "tenants/acme/groups/interns"}},
      {"mallory", "tenants/acme/principals/mallory", "acme", {}},
      {"orders", "tenants/acme/principals/orders-app", "acme", {}},
      {"stranger", "tenants/acme/principals/nobody", "acme", {}},
      // Same id as the billing agent, other tenant.
      {"globex-billing", "tenants/globex/principals/billing-app", "globex", {}},
      // An acme name presented by a globex-authenticated caller.
      {"spoofed-name", "tenants/acme/principals/billing-app", "globex", {}},
      // A globex principal claiming membership of an acme group.
      {"globex-in-acme-group",
       "tenants/globex/principals/eve",
       "globex",
       {"tenants/acme/groups/admins", "tenants/acme/groups/auditors"}},
  };
  return *cases;
}

const std::vector<Action>& Actions() {
  // DeriveBlindIndexKey is granted to nobody below: data-plane grants of
  // other actions (billing agents) and "Destroy*" denies must not reach it.
  static const auto* const actions = new std::vector<Action>{
      Action::kGenerateDataKey,
      Action::kDecrypt,
      Action::kEncrypt,
      Action::kGetKey,
      Action::kReadAudit,
      Action::kRotate,
      Action::kDestroy,
      Action::kDestroySegment,
      Action::kSetPolicy,
      Action::kExportEscrow,
      Action::kDeriveBlindIndexKey,
  };
  return *actions;
}

struct ResourceCase {
  std::string label;
  std::string resource;
  std::optional<std::string> segment;
  std::map<std::string, std::string> context;
};

const std::vector<ResourceCase>& Resources() {
  static const auto* const cases = new std::vector<ResourceCase>{
      {"key", "tenants/acme/keys/crm", std::nullopt, {}},
      {"version", "tenants/acme/keys/crm/versions/3", std::nullopt, {}},
      {"billing-seg", "tenants/acme/keys/crm", "acme/billing/2026", {}},
      {"billing-exact", "tenants/acme/keys/crm", "acme/billing", {}},
      {"billingx-seg", "tenants/acme/keys/crm", "acme/billingx/1", {}},
      {"hr-seg", "tenants/acme/keys/crm", "acme/hr/1", {}},
      {"billing-seg-name", "tenants/acme/keys/crm/segments/acme/billing/q1", std::nullopt, {}},
      {"hr-seg-name", "tenants/acme/keys/crm/segments/acme/hr/q1", std::nullopt, {}},
      {"orders-ctx", "tenants/acme/keys/crm", std::nullopt, {{"table", "orders"}, {"row", "7"}}},
      {"users-ctx", "tenants/acme/keys/crm", std::nullopt, {{"table", "users"}}},
      {"other-key", "tenants/acme/keys/hr", std::nullopt, {}},
      {"globex-key", "tenants/globex/keys/crm", std::nullopt, {}},
  };
  return *cases;
}

enum class Kind { kDefaultDeny, kAllowedBy, kDeniedBy, kCrossTenant, kOutOfScope };
struct Expectation {
  Kind kind = Kind::kDefaultDeny;
  std::string sid;
};
using CellKey = std::tuple<std::string, Action, std::string>;

// The expected outcome of every cell, built from explicit rules.
std::map<CellKey, Expectation> Expectations() {
  std::map<CellKey, Expectation> cells;
  std::vector<std::string> all_resources;
  for (const ResourceCase& r : Resources()) all_resources.push_back(r.label);
  const std::vector<std::string> in_scope = {
      "key",    "version",          "billing-seg", "billing-exact", "billingx-seg",
      "hr-seg", "billing-seg-name", "hr-seg-name", "orders-ctx",    "users-ctx"};
  auto set = [&](const std::vector<std::string>& principals, const std::vector<Action>& actions,
                 const std::vector<std::string>& resources, Expectation expectation) {
    for (const auto& p : principals) {
      for (Action a : actions) {
        for (const auto& r : resources) cells[{p, a, r}] = expectation;
      }
    }
  };
  std::vector<std::string> acme_principals = {"billing", "auditor", "admin",   "intern",
                                              "mallory", "orders",  "stranger"};
  // Another key of the same tenant is not governed by this policy.
  set(acme_principals, Actions(), {"other-key"}, {Kind::kOutOfScope, ""});
  // Billing agent: segment-scoped, '/'-part prefix; nothing key-wide.
  set({"billing"}, {Action::kGenerateDataKey, Action::kDecrypt, Action::kGetKey},
      {"billing-seg", "billing-exact", "billing-seg-name"}, {Kind::kAllowedBy, "billing-agents"});
  set({"auditor"}, {Action::kReadAudit}, in_scope, {Kind::kAllowedBy, "auditors"});
  set({"admin", "intern"},
      {Action::kRotate, Action::kDestroy, Action::kDestroySegment, Action::kSetPolicy,
       Action::kGetKey},
      in_scope, {Kind::kAllowedBy, "admins"});
  // Explicit deny beats the admins group grant for interns.
  set({"intern"}, {Action::kDestroy, Action::kDestroySegment}, in_scope,
      {Kind::kDeniedBy, "no-interns-destroy"});
  // Mallory: deny everything, although statement 4 allows Decrypt.
  set({"mallory"}, Actions(), in_scope, {Kind::kDeniedBy, "compromised"});
  set({"orders"}, {Action::kEncrypt, Action::kDecrypt}, {"orders-ctx"},
      {Kind::kAllowedBy, "orders-context"});
  // Tenant isolation, before the policy.
  set(acme_principals, Actions(), {"globex-key"}, {Kind::kCrossTenant, ""});
  set({"globex-billing", "spoofed-name", "globex-in-acme-group"}, Actions(), all_resources,
      {Kind::kCrossTenant, ""});
  return cells;
}

TEST(EvaluatorMatrixTest, EveryCellMatchesTheSpecification) {
  absl::StatusOr<Policy> policy = ParsePolicy(kPolicy, PolicyScope{"acme", "crm"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  const std::map<CellKey, Expectation> expectations = Expectations();
  const absl::Time now =
      absl::FromCivil(absl::CivilSecond(2026, 11, 5, 12, 0, 0), absl::UTCTimeZone());
  int cells = 0;
  int allowed = 0;
  for (const PrincipalCase& p : Principals()) {
    for (Action action : Actions()) {
      for (const ResourceCase& r : Resources()) {
        AccessRequest request;
        request.principal = p.principal;
        request.groups = p.groups;
        request.principal_tenant = p.tenant;
        request.action = action;
        request.resource = r.resource;
        request.segment = r.segment;
        request.encryption_context = r.context;
        request.time = now;
        Decision decision = Decide(*policy, request);

        Expectation expected;
        if (auto it = expectations.find({p.label, action, r.label}); it != expectations.end()) {
          expected = it->second;
        }
        SCOPED_TRACE(::testing::Message() << p.label << " x " << ActionName(action) << " x "
                                          << r.label << ": " << decision.reason);
        ++cells;
        switch (expected.kind) {
          case Kind::kAllowedBy:
            ++allowed;
            EXPECT_TRUE(decision.allowed);
            EXPECT_EQ(decision.sid, expected.sid);
            EXPECT_THAT(decision.reason, StartsWith("allowed by statement "));
            EXPECT_THAT(decision.reason, HasSubstr(expected.sid));
            break;
          case Kind::kDeniedBy:
            EXPECT_FALSE(decision.allowed);
            EXPECT_EQ(decision.sid, expected.sid);
            EXPECT_THAT(decision.reason, StartsWith("denied by statement "));
            break;
          case Kind::kCrossTenant:
            EXPECT_FALSE(decision.allowed);
            EXPECT_FALSE(decision.statement_index.has_value());
            EXPECT_THAT(decision.reason, HasSubstr("cross-tenant access is never allowed"));
            break;
          case Kind::kOutOfScope:
            EXPECT_FALSE(decision.allowed);
            EXPECT_FALSE(decision.statement_index.has_value());
            EXPECT_THAT(decision.reason, HasSubstr("is not governed by the policy"));
            break;
          case Kind::kDefaultDeny:
            EXPECT_FALSE(decision.allowed);
            EXPECT_FALSE(decision.statement_index.has_value());
            EXPECT_THAT(decision.reason,
                        StartsWith(absl::StrCat("denied: no statement allows ", ActionName(action),
                                                " for ", p.principal)));
            break;
        }
      }
    }
  }
  EXPECT_EQ(cells, 10 * 11 * 12);
  // 3 actions x 3 segments + 10 + 2 x 5 x 10 - 2 x 10 (intern destroy) + 2.
  EXPECT_EQ(allowed, 9 + 10 + 100 - 20 + 2);
}

TEST(EvaluatorTest, ReasonsNameTheStatementAndItsSid) {
  absl::StatusOr<Policy> policy = ParsePolicy(kPolicy, PolicyScope{"acme", "crm"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  AccessRequest request;
  request.principal = "tenants/acme/principals/billing-app";
  request.principal_tenant = "acme";
  request.action = Action::kDecrypt;
  request.resource = "tenants/acme/keys/crm";
  request.segment = "acme/billing/x";
  Decision decision = Decide(*policy, request);
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.statement_index, 0u);
  EXPECT_EQ(decision.reason, "allowed by statement 0 (sid \"billing-agents\")");

  request.segment = "acme/hr/x";
  decision = Decide(*policy, request);
  EXPECT_FALSE(decision.allowed);
  EXPECT_THAT(decision.reason,
              StartsWith("denied: no statement allows Decrypt for "
                         "tenants/acme/principals/billing-app on tenants/acme/keys/crm"));
  EXPECT_THAT(decision.reason, HasSubstr("statement 0 (sid \"billing-agents\") does not apply"));
  EXPECT_THAT(decision.reason, HasSubstr("not under an allowed prefix"));

  request.principal = "tenants/acme/principals/mallory";
  decision = Decide(*policy, request);
  EXPECT_EQ(decision.reason, "denied by statement 3 (sid \"compromised\")");
  EXPECT_EQ(decision.statement_index, 3u);
}

TEST(EvaluatorTest, StatementWithoutSidIsNamedByIndex) {
  absl::StatusOr<Policy> policy = ParsePolicy(
      R"({"version": 1, "statements": [{"effect": "Allow",
          "principals": ["tenants/acme/principals/x"], "actions": ["GetKey"]}]})",
      PolicyScope{"acme", "crm"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  AccessRequest request{
      "tenants/acme/principals/x", {}, "acme", Action::kGetKey, "tenants/acme/keys/crm"};
  Decision decision = Decide(*policy, request);
  EXPECT_TRUE(decision.allowed);
  EXPECT_EQ(decision.reason, "allowed by statement 0");
  EXPECT_EQ(decision.sid, "");
}

TEST(EvaluatorTest, SegmentArgumentMustAgreeWithASegmentResource) {
  absl::StatusOr<Policy> policy = ParsePolicy(kPolicy, PolicyScope{"acme", "crm"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  AccessRequest request{"tenants/acme/principals/billing-app",
                        {},
                        "acme",
                        Action::kDecrypt,
                        "tenants/acme/keys/crm/segments/acme/hr/1"};
  // Naming an allowed segment beside a forbidden resource does not help.
  request.segment = "acme/billing/1";
  Decision decision = Decide(*policy, request);
  EXPECT_FALSE(decision.allowed);
  EXPECT_THAT(decision.reason, HasSubstr("disagrees with resource"));
}

TEST(EvaluatorTest, MalformedRequestsAreDenied) {
  absl::StatusOr<Policy> policy = ParsePolicy(kPolicy, PolicyScope{"acme", "crm"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  AccessRequest request{
      "tenants/acme/groups/admins", {}, "acme", Action::kGetKey, "tenants/acme/keys/crm"};
  EXPECT_THAT(Decide(*policy, request).reason, HasSubstr("malformed principal"));
  request.principal = "tenants/acme/principals/alice";
  request.groups = {"tenants/acme/groups/admins"};
  request.resource = "tenants/acme/keys/crm/extra";
  EXPECT_THAT(Decide(*policy, request).reason, HasSubstr("malformed resource"));
  request.resource = "tenants/acme/keys/crm";
  request.segment = "../etc";
  EXPECT_THAT(Decide(*policy, request).reason, HasSubstr("malformed segment"));
  request.segment.reset();
  EXPECT_TRUE(Decide(*policy, request).allowed);
}

TEST(EvaluatorTest, TenantPolicyGovernsTheTenantAndItsKeys) {
  absl::StatusOr<Policy> policy = ParsePolicy(
      R"({"version": 1, "statements": [{"effect": "Allow",
          "principals": ["tenants/acme/groups/admins"], "actions": ["CreateKey", "ListKeys"]}]})",
      PolicyScope{"acme", ""});
  ASSERT_TRUE(policy.ok()) << policy.status();
  AccessRequest request{"tenants/acme/principals/alice",
                        {"tenants/acme/groups/admins"},
                        "acme",
                        Action::kCreateKey,
                        "tenants/acme"};
  EXPECT_TRUE(Decide(*policy, request).allowed);
  request.resource = "tenants/globex";
  EXPECT_THAT(Decide(*policy, request).reason, HasSubstr("cross-tenant"));
}

}  // namespace
}  // namespace clavis::kms::policy
