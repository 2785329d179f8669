#include "kms/policy/separation_of_duties.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/policy/evaluator.h"
#include "kms/policy/policy_parser.h"

namespace clavis::kms::policy {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const KeyName kKey{"acme", "crm"};

bool Allowed(const Policy& policy, const std::string& principal,
             const std::vector<std::string>& groups, Action action) {
  AccessRequest r{principal, groups, "acme", action, "tenants/acme/keys/crm"};
  return Decide(policy, r).allowed;
}

TEST(DefaultKeyPolicyTest, AdminsAdministerUsersUseNobodyDoesBoth) {
  absl::StatusOr<Policy> policy = DefaultKeyPolicy(kKey, {"tenants/acme/groups/key-admins"},
                                                   {"tenants/acme/principals/billing-app"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_EQ(policy->statements.size(), 2u);
  EXPECT_EQ(policy->statements[0].sid, "key-administrators");
  EXPECT_EQ(policy->statements[1].sid, "key-users");
  EXPECT_FALSE(policy->allow_admin_and_data_to_same_principal);
  const std::vector<std::string> admin_groups = {"tenants/acme/groups/key-admins"};
  for (Action action : AllActions()) {
    SCOPED_TRACE(ActionName(action));
    bool admin = Allowed(*policy, "tenants/acme/principals/alice", admin_groups, action);
    bool user = Allowed(*policy, "tenants/acme/principals/billing-app", {}, action);
    switch (ClassOf(action)) {
      case ActionClass::kAdministrative:
        EXPECT_TRUE(admin);
        EXPECT_FALSE(user);
        break;
      case ActionClass::kDataPlane:
        EXPECT_FALSE(admin);
        EXPECT_TRUE(user);
        break;
      case ActionClass::kReadOnly:
        EXPECT_TRUE(admin);
        EXPECT_EQ(user, Contains(DataUserReadActions(), action));
        break;
    }
    EXPECT_FALSE(Allowed(*policy, "tenants/acme/principals/other", {}, action));
  }
  // The default is an ordinary document: it round-trips through the parser.
  EXPECT_TRUE(ParsePolicy(PolicyToJson(*policy), PolicyScope{"acme", "crm"}).ok());
}

TEST(DefaultKeyPolicyTest, RejectsBadInput) {
  EXPECT_THAT(
      std::string(DefaultKeyPolicy(kKey, {}, {"tenants/acme/principals/u"}).status().message()),
      HasSubstr("at least one administrator"));
  EXPECT_THAT(
      std::string(DefaultKeyPolicy(kKey, {"tenants/globex/principals/a"}, {}).status().message()),
      HasSubstr("belongs to tenant globex"));
  EXPECT_THAT(std::string(DefaultKeyPolicy(kKey, {"tenants/acme/principals/bob"},
                                           {"tenants/acme/principals/bob"})
                              .status()
                              .message()),
              HasSubstr("separation of duties"));
  EXPECT_TRUE(DefaultKeyPolicy(kKey, {"tenants/acme/principals/a"}, {}).ok());
}

constexpr char kBoth[] = R"({"version": 1, %s "statements": [
    {"effect": "Allow", "principals": ["tenants/acme/principals/bob"], "actions": ["Decrypt"]},
    {"effect": "Allow", "principals": ["tenants/acme/principals/x", "tenants/acme/principals/bob"],
     "actions": ["GetKey", "Rotate"]}]})";

std::string WithOverride(const char* flag) {
  char buffer[1024];
  snprintf(buffer, sizeof(buffer), kBoth, flag);
  return buffer;
}

TEST(SeparationOfDutiesTest, AdminAndDataToOnePrincipalIsRejected) {
  absl::StatusOr<Policy> policy = ParsePolicy(WithOverride(""), PolicyScope{"acme", "crm"});
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(policy.status().message()),
              StartsWith("statements[1]: tenants/acme/principals/bob would get both "
                         "administrative (Rotate) and data-plane (Decrypt) actions"));
  EXPECT_THAT(std::string(policy.status().message()),
              HasSubstr("\"allowAdminAndDataToSamePrincipal\": true"));
  EXPECT_FALSE(ParsePolicy(WithOverride(R"("allowAdminAndDataToSamePrincipal": false,)"),
                           PolicyScope{"acme", "crm"})
                   .ok());
}

TEST(SeparationOfDutiesTest, BlindIndexKeysAreDataPlane) {
  // The index key is key material handed to the caller: an administrator who
  // could also derive it could widen their own access and attack the index.
  absl::StatusOr<Policy> policy = ParsePolicy(R"({"version": 1, "statements": [
      {"effect": "Allow", "principals": ["tenants/acme/principals/bob"],
       "actions": ["SetPolicy", "DeriveBlindIndexKey"]}]})",
                                              PolicyScope{"acme", "crm"});
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(policy.status().message()),
              HasSubstr("administrative (SetPolicy) and data-plane (DeriveBlindIndexKey)"));
  EXPECT_TRUE(ParsePolicy(R"({"version": 1, "statements": [
      {"effect": "Allow", "principals": ["tenants/acme/principals/search"],
       "actions": ["DeriveBlindIndexKey", "GetKey"]}]})",
                          PolicyScope{"acme", "crm"})
                  .ok());
}

TEST(SeparationOfDutiesTest, ExplicitOverrideIsAcceptedAndRecorded) {
  absl::StatusOr<Policy> policy = ParsePolicy(
      WithOverride(R"("allowAdminAndDataToSamePrincipal": true,)"), PolicyScope{"acme", "crm"});
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_TRUE(policy->allow_admin_and_data_to_same_principal);
  EXPECT_TRUE(Allowed(*policy, "tenants/acme/principals/bob", {}, Action::kDecrypt));
  EXPECT_TRUE(Allowed(*policy, "tenants/acme/principals/bob", {}, Action::kRotate));
  EXPECT_THAT(PolicyToJson(*policy), HasSubstr("\"allowAdminAndDataToSamePrincipal\": true"));
}

TEST(SeparationOfDutiesTest, WildcardAllowNeedsTheOverride) {
  const std::string doc = R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": ["tenants/acme/groups/root"], "actions": ["*"]}]})";
  EXPECT_THAT(std::string(ParsePolicy(doc, PolicyScope{"acme", "crm"}).status().message()),
              HasSubstr("tenants/acme/groups/root would get both"));
}

TEST(SeparationOfDutiesTest, ReadOnlyActionsAndDenyStatementsAreNeutral) {
  EXPECT_TRUE(ParsePolicy(R"({"version": 1, "statements": [
      {"effect": "Allow", "principals": ["tenants/acme/principals/a"],
       "actions": ["Decrypt", "GetKey", "ReadAudit", "GetPolicy", "ListSegments"]},
      {"effect": "Allow", "principals": ["tenants/acme/principals/b"],
       "actions": ["Rotate", "GetKey", "ReadAudit"]},
      {"effect": "Deny", "principals": ["tenants/acme/principals/a"], "actions": ["*"]}]})",
                          PolicyScope{"acme", "crm"})
                  .ok());
}

}  // namespace
}  // namespace clavis::kms::policy
