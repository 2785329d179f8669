// Authorizer over a real key domain (MemoryStore, key-file root): the key's
// stored policy decides, tenant isolation comes first, tenant administrators
// create and list keys and administer policy-less keys, and a missing key
// answers like a refused one to outsiders.
#include "kms/access/authorizer.h"

#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/key_domain_testing.h"
#include "kms/policy/policy_parser.h"
#include "kms/policy/separation_of_duties.h"

namespace clavis::kms::access {
namespace {

using policy::Action;
using ::testing::HasSubstr;

auth::Identity Who(const std::string& tenant, const std::string& id,
                   std::vector<std::string> groups = {}) {
  auth::Identity who;
  who.principal = absl::StrCat("tenants/", tenant, "/principals/", id);
  who.tenant = tenant;
  who.groups = std::move(groups);
  who.method = auth::AuthMethod::kMutualTls;
  return who;
}

class AuthorizerTest : public testing::KeyDomainTest {
 protected:
  void SetUp() override {
    KeyDomainTest::SetUp();
    AuthorizerOptions options;
    options.tenant_admins = {"tenants/acme/principals/root", "tenants/acme/groups/security"};
    auto authorizer = Authorizer::Create(repository_.get(), &clock_, options);
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    authorizer_ = *std::move(authorizer);
  }

  KeyName KeyWithPolicy(const std::string& id, const std::string& json) {
    CreateKeyParams p;
    p.tenant = "acme";
    p.key_id = id;
    p.policy_json = json;
    EXPECT_TRUE(lifecycle_->CreateKey(p).ok());
    return KeyName{"acme", id};
  }

  KeyName DefaultPolicyKey(const std::string& id) {
    KeyName key{"acme", id};
    auto policy = policy::DefaultKeyPolicy(key, {"tenants/acme/principals/alice"},
                                           {"tenants/acme/principals/app"});
    EXPECT_TRUE(policy.ok()) << policy.status();
    return KeyWithPolicy(id, policy::PolicyToJson(*policy));
  }

  absl::Status Ask(const auth::Identity& who, Action action, const KeyName& key,
                   std::optional<std::string> segment = std::nullopt,
                   const EncryptionContext* context = nullptr) {
    return authorizer_->AuthorizeKey(who, KeyRequest{key, action, "", segment, context});
  }

  std::unique_ptr<Authorizer> authorizer_;
};

TEST_F(AuthorizerTest, DefaultPolicySeparatesAdministratorsFromUsers) {
  const KeyName key = DefaultPolicyKey("crm");
  EXPECT_TRUE(Ask(Who("acme", "alice"), Action::kRotate, key).ok());
  EXPECT_TRUE(Ask(Who("acme", "alice"), Action::kGetKey, key).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "alice"), Action::kDecrypt, key, "s")));
  EXPECT_TRUE(Ask(Who("acme", "app"), Action::kDecrypt, key, "s").ok());
  EXPECT_TRUE(Ask(Who("acme", "app"), Action::kGenerateDataKey, key, "s").ok());
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "app"), Action::kRotate, key)));
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "app"), Action::kSetPolicy, key)));
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "mallory"), Action::kGetKey, key)));
}

TEST_F(AuthorizerTest, TenantIsolationCannotBeOpenedByAnyone) {
  const KeyName key = DefaultPolicyKey("crm");
  // Same principal id, other tenant; and the other tenant's administrator.
  absl::Status s = Ask(Who("globex", "app"), Action::kDecrypt, key, "s");
  EXPECT_TRUE(absl::IsPermissionDenied(s));
  EXPECT_THAT(s.message(), HasSubstr("cross-tenant"));
  EXPECT_TRUE(absl::IsPermissionDenied(
      authorizer_->AuthorizeTenant(Who("globex", "root"), Action::kCreateKey, "acme")));
  // An identity whose tenant field disagrees with its principal name.
  auth::Identity forged = Who("acme", "app");
  forged.tenant = "globex";
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(forged, Action::kDecrypt, key, "s")));
}

TEST_F(AuthorizerTest, SegmentPrefixAndContextConditionsApply) {
  const KeyName key = KeyWithPolicy("billing", R"({"version": 1, "statements": [
    {"effect": "Allow", "principals": ["tenants/acme/principals/agent"],
     "actions": ["Decrypt"], "conditions": {"segmentPrefixes": ["acme/billing/"],
                                            "encryptionContext": {"purpose": "invoice"}}}]})");
  const EncryptionContext good{{"purpose", "invoice"}, {"customer", "42"}};
  const EncryptionContext bad{{"purpose", "marketing"}};
  EXPECT_TRUE(Ask(Who("acme", "agent"), Action::kDecrypt, key, "acme/billing/2026", &good).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      Ask(Who("acme", "agent"), Action::kDecrypt, key, "acme/hr/2026", &good)));
  EXPECT_TRUE(absl::IsPermissionDenied(
      Ask(Who("acme", "agent"), Action::kDecrypt, key, "acme/billing/2026", &bad)));
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "agent"), Action::kDecrypt, key)));
}

TEST_F(AuthorizerTest, ExplicitDenyWinsAndGroupsCount) {
  const KeyName key = KeyWithPolicy("crm2", R"({"version": 1, "statements": [
    {"effect": "Allow", "principals": ["tenants/acme/groups/apps"], "actions": ["Decrypt"]},
    {"sid": "compromised", "effect": "Deny", "principals": ["tenants/acme/principals/etl"],
     "actions": ["*"]}]})");
  EXPECT_TRUE(
      Ask(Who("acme", "web", {"tenants/acme/groups/apps"}), Action::kDecrypt, key, "s").ok());
  absl::Status s =
      Ask(Who("acme", "etl", {"tenants/acme/groups/apps"}), Action::kDecrypt, key, "s");
  EXPECT_TRUE(absl::IsPermissionDenied(s));
  EXPECT_THAT(s.message(), HasSubstr("compromised"));
}

TEST_F(AuthorizerTest, TenantAdministratorsAndPolicylessKeys) {
  EXPECT_TRUE(authorizer_->AuthorizeTenant(Who("acme", "root"), Action::kCreateKey, "acme").ok());
  EXPECT_TRUE(authorizer_
                  ->AuthorizeTenant(Who("acme", "bob", {"tenants/acme/groups/security"}),
                                    Action::kListKeys, "acme")
                  .ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      authorizer_->AuthorizeTenant(Who("acme", "bob"), Action::kCreateKey, "acme")));
  const KeyName legacy = MakeKey("acme", "legacy");  // no policy
  EXPECT_TRUE(Ask(Who("acme", "root"), Action::kSetPolicy, legacy).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "root"), Action::kDecrypt, legacy, "s")))
      << "a tenant administrator does not get the data plane of a policy-less key";
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "bob"), Action::kGetKey, legacy)));
}

TEST_F(AuthorizerTest, MissingKeysDoNotLeakExistence) {
  const KeyName missing{"acme", "nope"};
  EXPECT_TRUE(Ask(Who("acme", "root"), Action::kGetKey, missing).ok())
      << "administrators go on to a NOT_FOUND";
  absl::Status outsider = Ask(Who("acme", "bob"), Action::kGetKey, missing);
  const KeyName existing = DefaultPolicyKey("crm");
  absl::Status outsider_existing = Ask(Who("acme", "bob"), Action::kGetKey, existing);
  EXPECT_TRUE(absl::IsPermissionDenied(outsider));
  EXPECT_TRUE(absl::IsPermissionDenied(outsider_existing));
}

TEST_F(AuthorizerTest, PolicyChangesTakeEffectAtOnce) {
  const KeyName key = DefaultPolicyKey("crm");
  ASSERT_TRUE(Ask(Who("acme", "app"), Action::kDecrypt, key, "s").ok());
  KeyAccessUpdate update;
  update.policy_json = R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": ["tenants/acme/principals/alice"], "actions": ["GetKey"]}]})";
  ASSERT_TRUE(lifecycle_->UpdateKeyAccess(key, update).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "app"), Action::kDecrypt, key, "s")));
}

TEST_F(AuthorizerTest, InsecureDevIdentityIsAllowedAndBadAdminsAreRefused) {
  auth::Identity dev;
  dev.principal = auth::kInsecureDevPrincipal;
  dev.method = auth::AuthMethod::kInsecureDev;
  EXPECT_TRUE(Ask(dev, Action::kDecrypt, DefaultPolicyKey("crm"), "s").ok());
  AuthorizerOptions bad;
  bad.tenant_admins = {"acme/root"};
  EXPECT_TRUE(
      absl::IsInvalidArgument(Authorizer::Create(repository_.get(), &clock_, bad).status()));
}

TEST_F(AuthorizerTest, OnlyBackupOperatorsMayTakeBackups) {
  // The fixture's authorizer has none: nobody, tenant administrators
  // included, may take a backup by default.
  EXPECT_TRUE(absl::IsPermissionDenied(authorizer_->AuthorizeBackup(Who("acme", "root"))));
  AuthorizerOptions options;
  options.tenant_admins = {"tenants/acme/principals/root"};
  options.backup_operators = {"tenants/ops/principals/backup", "tenants/ops/groups/backups"};
  auto authorizer = Authorizer::Create(repository_.get(), &clock_, options);
  ASSERT_TRUE(authorizer.ok()) << authorizer.status();
  EXPECT_TRUE((*authorizer)->AuthorizeBackup(Who("ops", "backup")).ok());
  EXPECT_TRUE(
      (*authorizer)->AuthorizeBackup(Who("ops", "cron", {"tenants/ops/groups/backups"})).ok());
  absl::Status denied = (*authorizer)->AuthorizeBackup(Who("acme", "root"));
  EXPECT_TRUE(absl::IsPermissionDenied(denied));
  EXPECT_THAT(denied.message(), HasSubstr("tenants/acme/principals/root may not CreateBackup"));
  EXPECT_TRUE(absl::IsPermissionDenied((*authorizer)->AuthorizeBackup(Who("acme", "backup"))));
  auth::Identity dev;
  dev.principal = auth::kInsecureDevPrincipal;
  dev.method = auth::AuthMethod::kInsecureDev;
  EXPECT_TRUE((*authorizer)->AuthorizeBackup(dev).ok());

  AuthorizerOptions bad;
  bad.backup_operators = {"ops/backup"};
  absl::Status refused = Authorizer::Create(repository_.get(), &clock_, bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(refused));
  EXPECT_THAT(refused.message(), HasSubstr("backup_operators"));
}

// Requests from several threads while the policies of the keys they use
// change: each answer is an allow or a refusal, never another error, and a
// change holds for every request that starts after it returned, whatever
// the other threads put in the policy and key caches meanwhile.
TEST_F(AuthorizerTest, ConcurrentRequestsWhilePoliciesChange) {
  std::vector<KeyName> keys;
  for (int i = 0; i < 3; ++i) keys.push_back(DefaultPolicyKey("crm" + std::to_string(i)));
  const std::string allow_app = R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": ["tenants/acme/principals/app"], "actions": ["Decrypt"]}]})";
  const std::string deny_app = R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": ["tenants/acme/principals/alice"], "actions": ["GetKey"]}]})";
  std::atomic<bool> done{false};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&, r] {
      std::mt19937 rng(r);
      while (!done) {
        const KeyName& key = keys[rng() % keys.size()];
        absl::Status s =
            Ask(Who("acme", rng() % 2 ? "app" : "mallory"), Action::kDecrypt, key, "s");
        if (!s.ok() && !absl::IsPermissionDenied(s)) {
          ADD_FAILURE() << s;
          ++unexpected;
        }
        s = Ask(Who("globex", "app"), Action::kDecrypt, key, "s");
        if (!absl::IsPermissionDenied(s)) {
          ADD_FAILURE() << "cross-tenant request answered " << s;
          ++unexpected;
        }
      }
    });
  }
  for (int i = 0; i < 40; ++i) {
    const KeyName& key = keys[i % keys.size()];
    const bool allow = i % 2 == 0;
    KeyAccessUpdate update;
    update.policy_json = allow ? allow_app : deny_app;
    ASSERT_TRUE(lifecycle_->UpdateKeyAccess(key, update).ok());
    absl::Status s = Ask(Who("acme", "app"), Action::kDecrypt, key, "s");
    EXPECT_EQ(s.ok(), allow) << "change " << i << ": " << s;
    EXPECT_TRUE(absl::IsPermissionDenied(Ask(Who("acme", "mallory"), Action::kDecrypt, key, "s")));
  }
  done = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(unexpected, 0);
}

}  // namespace
}  // namespace clavis::kms::access
