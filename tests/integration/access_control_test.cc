// Access control end to end, against a real clavisd with TLS, client
// certificates and service tokens: the authorization matrix (principals x
// actions x resources x conditions, cross-tenant included), authentication
// failures, lock-out, rate limits, M-of-N approvals, and the audit log every
// call leaves behind (verified offline, context values never stored).
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_query.h"
#include "kms/audit/audit_verifier.h"
#include "tests/harness/run_shell.h"
#include "tests/integration/clavisd_fixture.h"

namespace clavis::testing {
namespace {

using AccessStub = clavis::v1::AccessControl::Stub;
using AccessControl = clavis::v1::AccessControl;
using ::testing::HasSubstr;

constexpr char kTenant[] = "authz";
const std::string kKey = "tenants/authz/keys/crm";

std::string P(const std::string& id) { return PrincipalName(kTenant, id); }

class AccessControlTest : public ::testing::Test {
 protected:
  void SetUp() override { StartClavisd({}); }

  void StartClavisd(std::vector<std::string> extra_args) {
    ClavisdOptions options(dir_.path() + "/data");
    options.extra_args = std::move(extra_args);
    clavisd_ = std::make_unique<ClavisdProcess>(options);
    absl::Status started = clavisd_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  void TearDown() override {
    if (clavisd_ != nullptr && clavisd_->running()) {
      absl::Status stopped = clavisd_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
  }

  // The key of these tests: administered by the tenant admin (default
  // policy, caller = administrator), used by "app"; "billing" may only
  // touch acme/billing/* segments with purpose=invoice; "auditor" only
  // reads metadata; "ops2"/"ops3" may approve.
  void CreateKey(uint32_t approvals_required = 0) {
    clavis::v1::CreateKeyRequest create;
    create.set_parent(absl::StrCat("tenants/", kTenant));
    create.set_key_id("crm");
    create.add_key_users(P("app"));
    clavis::v1::Key key;
    ASSERT_TRUE(IsOk(Admin(P("admin"))->CreateKey(Ctx().get(), create, &key)));
    clavis::v1::SetKeyPolicyRequest set;
    set.set_key(kKey);
    set.set_policy(absl::StrCat(R"({"version": 1, "statements": [
      {"sid": "key-administrators", "effect": "Allow",
       "principals": [")",
                                P("admin"), R"(", ")", P("ops2"), R"(", ")", P("ops3"), R"("],
       "actions": ["Rotate", "Enable", "Disable", "ScheduleDestruction", "CancelDestruction",
                   "Destroy", "UpdateSettings", "ManageVersions", "RewrapSegments",
                   "CreateSegment", "RotateSegment", "RevokeSegment", "EnableSegment",
                   "DestroySegment", "SetPolicy", "ApproveRequest", "GetKey", "GetPolicy",
                   "GetSegment", "ListSegments"]},
      {"sid": "key-users", "effect": "Allow", "principals": [")",
                                P("app"), R"("],
       "actions": ["GenerateDataKey", "Decrypt", "ReEncrypt", "Encrypt", "GetKey",
                   "WatchKeyEvents"]},
      {"sid": "billing-agents", "effect": "Allow", "principals": [")",
                                P("billing"), R"("],
       "actions": ["GenerateDataKey", "Decrypt"],
       "conditions": {"segmentPrefixes": ["acme/billing/"],
                      "encryptionContext": {"purpose": "invoice"}}},
      {"sid": "auditors", "effect": "Allow", "principals": [")",
                                P("auditor"), R"("],
       "actions": ["GetKey", "GetPolicy"]}]})"));
    // Raising the quorum needs no approval (the key has none yet).
    set.set_approvals_required(approvals_required);
    clavis::v1::KeyPolicy policy;
    grpc::ClientContext ctx;
    grpc::Status s = Access(P("admin"))->SetKeyPolicy(&ctx, set, &policy);
    ASSERT_TRUE(IsOk(s)) << Describe(s);
  }

  std::unique_ptr<AdminStub> Admin(const std::string& who) { return clavisd_->Admin(who); }
  std::unique_ptr<DataStub> Data(const std::string& who) { return clavisd_->Data(who); }
  std::unique_ptr<AccessStub> Access(const std::string& who) {
    return AccessControl::NewStub(clavisd_->channel(who));
  }
  static std::unique_ptr<grpc::ClientContext> Ctx() { return ContextWithDeadline(); }

  grpc::Status GenerateDataKey(const std::string& who, const std::string& segment,
                               const Context& context,
                               clavis::v1::GenerateDataKeyResponse* out = nullptr) {
    clavis::v1::GenerateDataKeyRequest r;
    r.set_key(kKey);
    r.set_segment(segment);
    SetContext(context, r.mutable_encryption_context());
    clavis::v1::GenerateDataKeyResponse ignored;
    return Data(who)->GenerateDataKey(Ctx().get(), r, out ? out : &ignored);
  }

  grpc::Status Decrypt(const std::string& who, const std::string& blob, const Context& context) {
    clavis::v1::DecryptRequest r;
    r.set_ciphertext_blob(blob);
    SetContext(context, r.mutable_encryption_context());
    clavis::v1::DecryptResponse out;
    return Data(who)->Decrypt(Ctx().get(), r, &out);
  }

  // The admin asks to schedule the key's destruction, which needs approval;
  // the name of the approval request created ("" if none was).
  std::string RequestDestructionApproval() {
    clavis::v1::ScheduleDestructionRequest schedule;
    schedule.set_name(kKey);
    clavis::v1::Key key;
    grpc::ClientContext ctx;
    grpc::Status s = Admin(P("admin"))->ScheduleKeyDestruction(&ctx, schedule, &key);
    EXPECT_TRUE(StatusIs(s, grpc::StatusCode::FAILED_PRECONDITION, "approval required"));
    auto it = ctx.GetServerTrailingMetadata().find("clavis-approval-request");
    if (it == ctx.GetServerTrailingMetadata().end()) return "";
    return std::string(it->second.data(), it->second.size());
  }

  std::string AuditDir() const { return dir_.path() + "/data/audit"; }

  // Every record of the audit log, in order (the log may still be open).
  std::vector<kms::AuditRecord> AuditRecords() {
    std::vector<kms::AuditRecord> out;
    kms::AuditFilter filter;
    absl::Status s = kms::ForEachAuditRecord(AuditDir(), filter, [&](const kms::AuditRecord& r) {
      out.push_back(r);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  TempDir dir_;
  std::unique_ptr<ClavisdProcess> clavisd_;
};

// ---- The authorization matrix ----

TEST_F(AccessControlTest, AuthorizationMatrix) {
  CreateKey();
  const Context invoice{{"purpose", "invoice"}};
  clavis::v1::GenerateDataKeyResponse app_dk;
  ASSERT_TRUE(IsOk(GenerateDataKey(P("app"), "acme/billing/q1", invoice, &app_dk)));
  const std::string blob = app_dk.ciphertext_blob();
  clavis::v1::GenerateDataKeyResponse hr_dk;
  ASSERT_TRUE(IsOk(GenerateDataKey(P("app"), "acme/hr/q1", invoice, &hr_dk)));

  using Code = grpc::StatusCode;
  const Code kOk = Code::OK, kDenied = Code::PERMISSION_DENIED;
  const std::string globex_admin = PrincipalName("globex");
  struct Cell {
    std::string action;
    std::map<std::string, Code> expected;  // principal -> code
  };
  auto row = [&](Code admin, Code app, Code billing, Code auditor, Code outsider, Code globex) {
    return std::map<std::string, Code>{{P("admin"), admin},     {P("app"), app},
                                       {P("billing"), billing}, {P("auditor"), auditor},
                                       {P("nobody"), outsider}, {globex_admin, globex}};
  };
  std::vector<Cell> matrix = {
      {"GenerateDataKey acme/billing/x purpose=invoice",
       row(kDenied, kOk, kOk, kDenied, kDenied, kDenied)},
      {"GenerateDataKey acme/billing/x purpose=marketing",
       row(kDenied, kOk, kDenied, kDenied, kDenied, kDenied)},
      {"GenerateDataKey acme/hr/x purpose=invoice",
       row(kDenied, kOk, kDenied, kDenied, kDenied, kDenied)},
      {"Decrypt billing blob", row(kDenied, kOk, kOk, kDenied, kDenied, kDenied)},
      {"Decrypt hr blob", row(kDenied, kOk, kDenied, kDenied, kDenied, kDenied)},
      {"GetKey", row(kOk, kOk, kDenied, kOk, kDenied, kDenied)},
      {"RotateKey", row(kOk, kDenied, kDenied, kDenied, kDenied, kDenied)},
      {"GetKeyPolicy", row(kOk, kDenied, kDenied, kOk, kDenied, kDenied)},
      {"CreateSegment", row(kOk, kDenied, kDenied, kDenied, kDenied, kDenied)},
      {"ListKeys", row(kOk, kDenied, kDenied, kDenied, kDenied, kDenied)},
      {"CreateKey", row(kOk, kDenied, kDenied, kDenied, kDenied, kDenied)},
      // Version 1 is no longer primary (RotateKey above).
      {"MarkKeyVersionCompromised", row(kOk, kDenied, kDenied, kDenied, kDenied, kDenied)},
  };
  int created = 0, segments = 0;
  for (const Cell& cell : matrix) {
    for (const auto& [who, expected] : cell.expected) {
      grpc::Status s;
      if (cell.action == "GenerateDataKey acme/billing/x purpose=invoice") {
        s = GenerateDataKey(who, "acme/billing/x", invoice);
      } else if (cell.action == "GenerateDataKey acme/billing/x purpose=marketing") {
        s = GenerateDataKey(who, "acme/billing/x", {{"purpose", "marketing"}});
      } else if (cell.action == "GenerateDataKey acme/hr/x purpose=invoice") {
        s = GenerateDataKey(who, "acme/hr/x", invoice);
      } else if (cell.action == "Decrypt billing blob") {
        s = Decrypt(who, blob, invoice);
      } else if (cell.action == "Decrypt hr blob") {
        s = Decrypt(who, hr_dk.ciphertext_blob(), invoice);
      } else if (cell.action == "GetKey") {
        clavis::v1::GetKeyRequest r;
        r.set_name(kKey);
        clavis::v1::Key k;
        s = Admin(who)->GetKey(Ctx().get(), r, &k);
      } else if (cell.action == "RotateKey") {
        clavis::v1::RotateKeyRequest r;
        r.set_name(kKey);
        clavis::v1::Key k;
        s = Admin(who)->RotateKey(Ctx().get(), r, &k);
      } else if (cell.action == "GetKeyPolicy") {
        clavis::v1::GetKeyPolicyRequest r;
        r.set_key(kKey);
        clavis::v1::KeyPolicy p;
        s = Access(who)->GetKeyPolicy(Ctx().get(), r, &p);
      } else if (cell.action == "CreateSegment") {
        clavis::v1::SegmentRequest r;
        r.set_name(absl::StrCat(kKey, "/segments/acme/new", segments++));
        clavis::v1::Segment seg;
        s = Admin(who)->CreateSegment(Ctx().get(), r, &seg);
      } else if (cell.action == "ListKeys") {
        clavis::v1::ListKeysRequest r;
        r.set_parent(absl::StrCat("tenants/", kTenant));
        clavis::v1::ListKeysResponse out;
        s = Admin(who)->ListKeys(Ctx().get(), r, &out);
      } else if (cell.action == "CreateKey") {
        clavis::v1::CreateKeyRequest r;
        r.set_parent(absl::StrCat("tenants/", kTenant));
        r.set_key_id(absl::StrCat("k", created++));
        clavis::v1::Key k;
        s = Admin(who)->CreateKey(Ctx().get(), r, &k);
      } else if (cell.action == "MarkKeyVersionCompromised") {
        clavis::v1::KeyVersionRequest r;
        r.set_name(absl::StrCat(kKey, "/versions/1"));
        clavis::v1::Key k;
        s = Admin(who)->MarkKeyVersionCompromised(Ctx().get(), r, &k);
      }
      EXPECT_EQ(s.error_code(), expected) << cell.action << " by " << who << ": " << Describe(s);
      if (expected == kDenied && s.error_code() == kDenied) {
        // The refusal is clear, and never echoes the context value.
        EXPECT_THAT(s.error_message(), HasSubstr("denied"));
        EXPECT_THAT(s.error_message(), ::testing::Not(HasSubstr("marketing")));
      }
    }
  }
  // The globex admin is refused as cross-tenant, not by policy.
  grpc::Status cross = GenerateDataKey(globex_admin, "acme/billing/x", invoice);
  EXPECT_THAT(cross.error_message(), HasSubstr("cross-tenant"));
}

TEST_F(AccessControlTest, MissingKeysLookTheSameToOutsidersAsRefusedOnes) {
  CreateKey();
  clavis::v1::GetKeyRequest existing, missing;
  existing.set_name(kKey);
  missing.set_name("tenants/authz/keys/nope");
  clavis::v1::Key k;
  EXPECT_TRUE(StatusIs(Admin(P("nobody"))->GetKey(Ctx().get(), existing, &k),
                       grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_TRUE(StatusIs(Admin(P("nobody"))->GetKey(Ctx().get(), missing, &k),
                       grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_TRUE(
      StatusIs(Admin(P("admin"))->GetKey(Ctx().get(), missing, &k), grpc::StatusCode::NOT_FOUND));
  // The same for a key's approval requests.
  clavis::v1::ListApprovalRequestsRequest list_existing, list_missing;
  list_existing.set_key(kKey);
  list_missing.set_key("tenants/authz/keys/nope");
  clavis::v1::ListApprovalRequestsResponse listed;
  EXPECT_TRUE(
      StatusIs(Access(P("nobody"))->ListApprovalRequests(Ctx().get(), list_existing, &listed),
               grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_TRUE(
      StatusIs(Access(P("nobody"))->ListApprovalRequests(Ctx().get(), list_missing, &listed),
               grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_TRUE(StatusIs(Access(P("admin"))->ListApprovalRequests(Ctx().get(), list_missing, &listed),
                       grpc::StatusCode::NOT_FOUND, "not found"));
  EXPECT_TRUE(IsOk(Access(P("admin"))->ListApprovalRequests(Ctx().get(), list_existing, &listed)));
}

TEST_F(AccessControlTest, SeparationOfDutiesNeedsTheAuditedOverride) {
  clavis::v1::CreateKeyRequest create;
  create.set_parent(absl::StrCat("tenants/", kTenant));
  create.set_key_id("both");
  create.add_key_administrators(P("admin"));
  create.add_key_users(P("admin"));
  clavis::v1::Key k;
  grpc::Status s = Admin(P("admin"))->CreateKey(Ctx().get(), create, &k);
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::INVALID_ARGUMENT));

  create.clear_key_administrators();
  create.clear_key_users();
  create.set_policy(absl::StrCat(R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": [")",
                                 P("admin"), R"("], "actions": ["Rotate", "Decrypt"]}]})"));
  s = Admin(P("admin"))->CreateKey(Ctx().get(), create, &k);
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::INVALID_ARGUMENT, "separation of duties"));

  create.set_policy(TestKeyPolicy("tenants/authz/keys/both", {P("admin")}));
  ASSERT_TRUE(IsOk(Admin(P("admin"))->CreateKey(Ctx().get(), create, &k)));
  bool alerted = false;
  for (const auto& r : AuditRecords()) {
    if (r.kind == kms::AuditRecordKind::kAlert && r.action == "SeparationOfDutiesOverride" &&
        r.resource == "tenants/authz/keys/both" && r.principal == P("admin")) {
      alerted = true;
    }
  }
  EXPECT_TRUE(alerted) << "the override is audited";
}

TEST_F(AccessControlTest, PolicyDocumentsAreValidatedWithPointedMessages) {
  CreateKey();
  clavis::v1::SetKeyPolicyRequest set;
  set.set_key(kKey);
  set.set_policy(R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": ["tenants/authz/principals/app"], "actions": ["Decrpyt"]}]})");
  clavis::v1::KeyPolicy out;
  grpc::Status s = Access(P("admin"))->SetKeyPolicy(Ctx().get(), set, &out);
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::INVALID_ARGUMENT, "statements[0].actions[0]"));
  EXPECT_THAT(s.error_message(), HasSubstr("did you mean \"Decrypt\""));
  set.set_policy(R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": ["tenants/globex/principals/app"], "actions": ["Decrypt"]}]})");
  s = Access(P("admin"))->SetKeyPolicy(Ctx().get(), set, &out);
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::INVALID_ARGUMENT)) << "no policy opens another tenant";
  set.set_policy(std::string(40000, '{'));
  s = Access(P("admin"))->SetKeyPolicy(Ctx().get(), set, &out);
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::INVALID_ARGUMENT));
  // Nothing changed: app still decrypts.
  EXPECT_TRUE(IsOk(GenerateDataKey(P("app"), "s", {})));
}

TEST_F(AccessControlTest, SimulatorExplainsDecisions) {
  CreateKey();
  clavis::v1::SimulatePolicyRequest r;
  r.set_key(kKey);
  r.set_principal(P("billing"));
  r.set_action("Decrypt");
  r.set_segment("acme/hr/1");
  (*r.mutable_encryption_context())["purpose"] = "invoice";
  clavis::v1::SimulatePolicyResponse out;
  ASSERT_TRUE(IsOk(Access(P("auditor"))->SimulatePolicy(Ctx().get(), r, &out)));
  EXPECT_FALSE(out.allowed());
  EXPECT_THAT(out.reason(), HasSubstr("not under an allowed prefix"));
  r.set_segment("acme/billing/1");
  ASSERT_TRUE(IsOk(Access(P("auditor"))->SimulatePolicy(Ctx().get(), r, &out)));
  EXPECT_TRUE(out.allowed());
  EXPECT_EQ(out.sid(), "billing-agents");
  // Simulating needs GetPolicy on the key.
  EXPECT_TRUE(StatusIs(Access(P("app"))->SimulatePolicy(Ctx().get(), r, &out),
                       grpc::StatusCode::PERMISSION_DENIED));
}

TEST_F(AccessControlTest, ReEncryptCannotEscapeAContextDeny) {
  CreateKey();
  // app may use the key, except decrypt what is classified restricted.
  clavis::v1::SetKeyPolicyRequest set;
  set.set_key(kKey);
  set.set_policy(absl::StrCat(R"({"version": 1, "statements": [
      {"effect": "Allow", "principals": [")",
                              P("admin"), R"("],
       "actions": ["SetPolicy", "GetPolicy", "GetKey"]},
      {"effect": "Allow", "principals": [")",
                              P("app"), R"("],
       "actions": ["GenerateDataKey", "Decrypt", "ReEncrypt", "Encrypt"]},
      {"sid": "restricted", "effect": "Deny", "principals": [")",
                              P("app"), R"("],
       "actions": ["Decrypt"], "conditions": {"encryptionContext": {"class": "restricted"}}}]})"));
  clavis::v1::KeyPolicy out;
  ASSERT_TRUE(IsOk(Access(P("admin"))->SetKeyPolicy(Ctx().get(), set, &out)));
  const Context restricted{{"class", "restricted"}};
  clavis::v1::GenerateDataKeyResponse dk;
  ASSERT_TRUE(IsOk(GenerateDataKey(P("app"), "s", restricted, &dk)));
  EXPECT_TRUE(StatusIs(Decrypt(P("app"), dk.ciphertext_blob(), restricted),
                       grpc::StatusCode::PERMISSION_DENIED, "restricted"));
  clavis::v1::ReEncryptRequest r;
  r.set_ciphertext_blob(dk.ciphertext_blob());
  SetContext(restricted, r.mutable_encryption_context());
  r.set_change_context(true);
  (*r.mutable_new_encryption_context())["class"] = "public";
  clavis::v1::ReEncryptResponse re;
  EXPECT_TRUE(StatusIs(Data(P("app"))->ReEncrypt(Ctx().get(), r, &re),
                       grpc::StatusCode::PERMISSION_DENIED, "restricted"))
      << "a context change is a decrypt under the old context";
  // Without a context change, re-encryption (e.g. to the newest version) is fine.
  r.set_change_context(false);
  r.clear_new_encryption_context();
  EXPECT_TRUE(IsOk(Data(P("app"))->ReEncrypt(Ctx().get(), r, &re)));
}

// ---- Authentication ----

TEST_F(AccessControlTest, CallersWithoutCredentialsAreUnauthenticated) {
  auto anonymous = clavis::v1::KeyAdmin::NewStub(clavisd_->AnonymousChannel());
  clavis::v1::GetKeyRequest r;
  r.set_name(kKey);
  clavis::v1::Key k;
  grpc::Status s = anonymous->GetKey(Ctx().get(), r, &k);
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::UNAUTHENTICATED, "no credentials"));
  // Plaintext to the TLS port never gets an answer from the service.
  auto plaintext = clavis::v1::KeyAdmin::NewStub(
      grpc::CreateChannel(clavisd_->address(), grpc::InsecureChannelCredentials()));
  s = plaintext->GetKey(ContextWithDeadline(absl::Seconds(3)).get(), r, &k);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AccessControlTest, ServiceTokensAuthenticateAndAreCheckedStrictly) {
  CreateKey();
  auto data = clavis::v1::KeyManagement::NewStub(clavisd_->AnonymousChannel());
  auto call = [&](const std::string& token) {
    auto ctx = Ctx();
    ctx->AddMetadata("authorization", "Bearer " + token);
    clavis::v1::GenerateDataKeyRequest r;
    r.set_key(kKey);
    r.set_segment("s");
    clavis::v1::GenerateDataKeyResponse out;
    return data->GenerateDataKey(ctx.get(), r, &out);
  };
  EXPECT_TRUE(IsOk(call(clavisd_->IssueToken(P("app")))));
  EXPECT_TRUE(StatusIs(call(clavisd_->IssueToken(P("admin"))), grpc::StatusCode::PERMISSION_DENIED))
      << "a token carries its principal's rights, no more";
  EXPECT_TRUE(StatusIs(call(clavisd_->IssueToken(P("app"), absl::Minutes(1), {}, "other-audience")),
                       grpc::StatusCode::UNAUTHENTICATED, "audience"));
  std::string token = clavisd_->IssueToken(P("app"));
  token[token.size() - 5] = token[token.size() - 5] == 'A' ? 'B' : 'A';
  grpc::Status forged = call(token);
  EXPECT_TRUE(StatusIs(forged, grpc::StatusCode::UNAUTHENTICATED));
  EXPECT_THAT(forged.error_message(), ::testing::Not(HasSubstr(token.substr(token.rfind('.')))));

  // WhoAmI shows what the server saw.
  auto access = AccessControl::NewStub(clavisd_->AnonymousChannel());
  auto ctx = Ctx();
  ctx->AddMetadata("authorization", "Bearer " + clavisd_->IssueToken(P("app"), absl::Minutes(1),
                                                                     {"tenants/authz/groups/x"}));
  clavis::v1::WhoAmIResponse me;
  ASSERT_TRUE(IsOk(access->WhoAmI(ctx.get(), {}, &me)));
  EXPECT_EQ(me.principal(), P("app"));
  EXPECT_EQ(me.method(), "token");
  EXPECT_THAT(me.groups(), ::testing::ElementsAre("tenants/authz/groups/x"));
}

TEST_F(AccessControlTest, RevokedTokensAreRefusedAtOnce) {
  const std::string revoked = dir_.path() + "/revoked";
  ASSERT_TRUE(clavisd_->Stop().ok());
  StartClavisd({"--token_revocation_file=" + revoked});
  CreateKey();
  auto whoami = [&](const std::string& token) {
    auto access = AccessControl::NewStub(clavisd_->AnonymousChannel());
    auto ctx = Ctx();
    ctx->AddMetadata("authorization", "Bearer " + token);
    clavis::v1::WhoAmIResponse me;
    return access->WhoAmI(ctx.get(), {}, &me);
  };
  const std::string token =
      clavisd_->IssueToken(P("app"), absl::Minutes(5), {}, "clavis-test", "leaked-1");
  ASSERT_TRUE(IsOk(whoami(token)));
  {
    std::ofstream out(revoked);
    out << "# leaked on 2026-11-23\nleaked-1\n";
  }
  // The file is re-read within about a second of changing.
  grpc::Status s;
  for (int i = 0; i < 40; ++i) {
    s = whoami(token);
    if (!s.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::UNAUTHENTICATED, "revoked"));
}

TEST_F(AccessControlTest, RepeatedFailuresLockOutAndAreAudited) {
  auto access = AccessControl::NewStub(clavisd_->AnonymousChannel());
  auto whoami = [&](const std::string& token) {
    auto ctx = Ctx();
    ctx->AddMetadata("authorization", "Bearer " + token);
    clavis::v1::WhoAmIResponse me;
    return access->WhoAmI(ctx.get(), {}, &me);
  };
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(StatusIs(whoami("clavis-token.v1.bad.bad"), grpc::StatusCode::UNAUTHENTICATED));
  }
  grpc::Status locked = whoami(clavisd_->IssueToken(P("app")));
  EXPECT_TRUE(StatusIs(locked, grpc::StatusCode::UNAUTHENTICATED, "locked out"));
  bool alert = false;
  int unauthenticated_calls = 0;
  for (const auto& r : AuditRecords()) {
    if (r.kind == kms::AuditRecordKind::kAlert && r.action == "LockedOut") alert = true;
    if (r.kind == kms::AuditRecordKind::kCall &&
        r.result_code == absl::StatusCode::kUnauthenticated) {
      ++unauthenticated_calls;
    }
  }
  EXPECT_TRUE(alert);
  EXPECT_EQ(unauthenticated_calls, 6);
}

TEST_F(AccessControlTest, RateLimitAnswersResourceExhaustedWithRetryInfo) {
  ASSERT_TRUE(clavisd_->Stop().ok());
  StartClavisd({"--rate_limit_rps=2"});  // burst 4
  auto access = Access(P("app"));
  grpc::Status s;
  std::string retry_after;
  int ok = 0;
  for (int i = 0; i < 20; ++i) {
    grpc::ClientContext ctx;
    clavis::v1::WhoAmIResponse me;
    s = access->WhoAmI(&ctx, {}, &me);
    if (!s.ok()) {
      auto it = ctx.GetServerTrailingMetadata().find("retry-after-ms");
      if (it != ctx.GetServerTrailingMetadata().end()) {
        retry_after = std::string(it->second.data(), it->second.size());
      }
      break;
    }
    ++ok;
  }
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::RESOURCE_EXHAUSTED, "rate limit"));
  EXPECT_GE(ok, 3);
  EXPECT_LE(ok, 8);
  int ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(retry_after, &ms)) << "retry-after-ms trailing metadata";
  EXPECT_GT(ms, 0);
  EXPECT_LE(ms, 1000);
  absl::SleepFor(absl::Milliseconds(ms + 50));
  grpc::ClientContext ctx;
  clavis::v1::WhoAmIResponse me;
  EXPECT_TRUE(IsOk(access->WhoAmI(&ctx, {}, &me))) << "recovers after the advertised wait";
  // Another principal has its own bucket.
  grpc::ClientContext other;
  EXPECT_TRUE(IsOk(Access(P("admin"))->WhoAmI(&other, {}, &me)));
}

// ---- M-of-N approvals ----

TEST_F(AccessControlTest, DestructionNeedsTwoDistinctAuthorizedApprovers) {
  CreateKey(/*approvals_required=*/2);
  clavis::v1::ScheduleDestructionRequest schedule;
  schedule.set_name(kKey);
  clavis::v1::Key key;
  grpc::ClientContext ctx;
  grpc::Status s = Admin(P("admin"))->ScheduleKeyDestruction(&ctx, schedule, &key);
  ASSERT_TRUE(StatusIs(s, grpc::StatusCode::FAILED_PRECONDITION, "approval required"));
  auto it = ctx.GetServerTrailingMetadata().find("clavis-approval-request");
  ASSERT_NE(it, ctx.GetServerTrailingMetadata().end());
  const std::string request(it->second.data(), it->second.size());
  EXPECT_THAT(s.error_message(), HasSubstr(request));

  auto approve = [&](const std::string& who) {
    clavis::v1::ApproveRequestRequest r;
    r.set_name(request);
    clavis::v1::ApprovalRequest out;
    return Access(who)->ApproveRequest(Ctx().get(), r, &out);
  };
  auto state = [&]() {
    clavis::v1::GetKeyRequest r;
    r.set_name(kKey);
    clavis::v1::Key k;
    EXPECT_TRUE(IsOk(Admin(P("admin"))->GetKey(Ctx().get(), r, &k)));
    return k.state();
  };
  EXPECT_TRUE(StatusIs(approve(P("admin")), grpc::StatusCode::FAILED_PRECONDITION,
                       "requester cannot approve"));
  EXPECT_TRUE(StatusIs(approve(P("app")), grpc::StatusCode::PERMISSION_DENIED))
      << "an approver needs ApproveRequest on the key";
  EXPECT_TRUE(StatusIs(approve(PrincipalName("globex")), grpc::StatusCode::PERMISSION_DENIED));
  ASSERT_TRUE(IsOk(approve(P("ops2"))));
  EXPECT_TRUE(StatusIs(approve(P("ops2")), grpc::StatusCode::FAILED_PRECONDITION, "distinct"));
  EXPECT_EQ(state(), clavis::v1::ENABLED) << "one approval of two runs nothing";
  clavis::v1::ApproveRequestRequest last;
  last.set_name(request);
  clavis::v1::ApprovalRequest done;
  ASSERT_TRUE(IsOk(Access(P("ops3"))->ApproveRequest(Ctx().get(), last, &done)));
  EXPECT_EQ(done.state(), clavis::v1::APPROVAL_EXECUTED);
  EXPECT_EQ(done.result_code(), 0) << done.result_message();
  EXPECT_THAT(done.approvers(), ::testing::ElementsAre(P("ops2"), P("ops3")));
  EXPECT_EQ(state(), clavis::v1::PENDING_DESTRUCTION);
  EXPECT_TRUE(StatusIs(approve(P("admin")), grpc::StatusCode::FAILED_PRECONDITION))
      << "an executed request cannot run again";
  clavis::v1::DenyRequestRequest deny;
  deny.set_name(request);
  clavis::v1::ApprovalRequest denied;
  EXPECT_TRUE(StatusIs(Access(P("ops2"))->DenyRequest(Ctx().get(), deny, &denied),
                       grpc::StatusCode::FAILED_PRECONDITION, "is EXECUTED"))
      << "what ran cannot be denied";

  clavis::v1::ListApprovalRequestsRequest list;
  list.set_key(kKey);
  list.set_include_finished(true);
  clavis::v1::ListApprovalRequestsResponse listed;
  ASSERT_TRUE(IsOk(Access(P("auditor"))->ListApprovalRequests(Ctx().get(), list, &listed)));
  ASSERT_EQ(listed.requests_size(), 1);
  EXPECT_EQ(listed.requests(0).requester(), P("admin"));
}

TEST_F(AccessControlTest, ADeniedRequestNeverRunsAndOnlyApproversMayDenyIt) {
  CreateKey(/*approvals_required=*/2);
  const std::string request = RequestDestructionApproval();
  ASSERT_FALSE(request.empty());
  auto deny = [&](const std::string& who, const std::string& reason,
                  clavis::v1::ApprovalRequest* out) {
    clavis::v1::DenyRequestRequest r;
    r.set_name(request);
    r.set_reason(reason);
    return Access(who)->DenyRequest(Ctx().get(), r, out);
  };
  auto approve = [&](const std::string& who) {
    clavis::v1::ApproveRequestRequest r;
    r.set_name(request);
    clavis::v1::ApprovalRequest out;
    return Access(who)->ApproveRequest(Ctx().get(), r, &out);
  };
  ASSERT_TRUE(IsOk(approve(P("ops2"))));

  clavis::v1::ApprovalRequest out;
  // The auditor may read the request (GetPolicy) but not decide on it.
  for (const std::string& who : {P("app"), P("auditor"), P("nobody")}) {
    EXPECT_TRUE(StatusIs(deny(who, "", &out), grpc::StatusCode::PERMISSION_DENIED)) << who;
  }
  grpc::Status cross = deny(PrincipalName("globex"), "", &out);
  EXPECT_TRUE(StatusIs(cross, grpc::StatusCode::PERMISSION_DENIED, "cross-tenant"))
      << Describe(cross);
  EXPECT_TRUE(StatusIs(deny(P("ops3"), "line one\nline two", &out),
                       grpc::StatusCode::INVALID_ARGUMENT, "control character"));

  ASSERT_TRUE(IsOk(deny(P("ops3"), "change freeze", &out)));
  EXPECT_EQ(out.state(), clavis::v1::APPROVAL_DENIED);
  EXPECT_EQ(out.denied_by(), P("ops3"));
  EXPECT_EQ(out.deny_reason(), "change freeze");
  EXPECT_GT(out.deny_time().seconds(), 0);
  EXPECT_THAT(out.approvers(), ::testing::ElementsAre(P("ops2")));

  // Final: the approval that would have reached the quorum is refused, and
  // the destruction never runs.
  grpc::Status late = approve(P("ops3"));
  EXPECT_TRUE(StatusIs(late, grpc::StatusCode::FAILED_PRECONDITION, "was denied by " + P("ops3")))
      << Describe(late);
  EXPECT_TRUE(StatusIs(deny(P("ops2"), "", &out), grpc::StatusCode::FAILED_PRECONDITION,
                       "is DENIED already"));
  clavis::v1::GetKeyRequest get_key;
  get_key.set_name(kKey);
  clavis::v1::Key key;
  ASSERT_TRUE(IsOk(Admin(P("admin"))->GetKey(Ctx().get(), get_key, &key)));
  EXPECT_EQ(key.state(), clavis::v1::ENABLED);

  clavis::v1::GetApprovalRequestRequest get;
  get.set_name(request);
  clavis::v1::ApprovalRequest got;
  ASSERT_TRUE(IsOk(Access(P("auditor"))->GetApprovalRequest(Ctx().get(), get, &got)));
  EXPECT_EQ(got.state(), clavis::v1::APPROVAL_DENIED);
  EXPECT_EQ(got.deny_reason(), "change freeze");
  clavis::v1::ListApprovalRequestsRequest list;
  list.set_key(kKey);
  clavis::v1::ListApprovalRequestsResponse listed;
  ASSERT_TRUE(IsOk(Access(P("auditor"))->ListApprovalRequests(Ctx().get(), list, &listed)));
  EXPECT_EQ(listed.requests_size(), 0) << "a denied request is no longer pending";

  clavis::v1::DenyRequestRequest unknown;
  unknown.set_name("tenants/authz/approvals/ar-0123456789abcdef01234567");
  EXPECT_TRUE(StatusIs(Access(P("ops2"))->DenyRequest(Ctx().get(), unknown, &out),
                       grpc::StatusCode::NOT_FOUND));

  // Audited as what they were: denials, refused or not, never approvals.
  int denials = 0;
  bool ops3_denied = false;
  for (const auto& r : AuditRecords()) {
    if (r.action == "DenyRequest" && r.resource == request) {
      ++denials;
      if (r.principal == P("ops3") && r.result_code == absl::StatusCode::kOk) ops3_denied = true;
    }
    EXPECT_FALSE(r.action == "ApproveRequest" && r.principal == P("ops3") &&
                 r.result_code == absl::StatusCode::kOk)
        << "ops3 denied; their one approval came after and was refused";
  }
  EXPECT_TRUE(ops3_denied);
  // app, auditor, nobody, globex, the bad reason, the denial, ops2's second.
  EXPECT_EQ(denials, 7);
}

TEST_F(AccessControlTest, TheRequesterMayWithdrawTheirOwnRequestWithoutApproveRights) {
  // "requester" may ask for destruction but approves nothing.
  const std::string key = "tenants/authz/keys/withdrawn";
  const std::string policy = absl::StrCat(
      R"({"version": 1, "statements": [
      {"effect": "Allow", "principals": [")",
      P("admin"), R"(", ")", P("ops2"),
      R"("], "actions": ["SetPolicy", "GetPolicy", "GetKey", "ApproveRequest", "ScheduleDestruction"]},
      {"effect": "Allow", "principals": [")",
      P("requester"), R"("], "actions": ["ScheduleDestruction", "GetKey"]}]})");
  clavis::v1::CreateKeyRequest create;
  create.set_parent(absl::StrCat("tenants/", kTenant));
  create.set_key_id("withdrawn");
  create.set_policy(policy);
  clavis::v1::Key created;
  ASSERT_TRUE(IsOk(Admin(P("admin"))->CreateKey(Ctx().get(), create, &created)));
  clavis::v1::SetKeyPolicyRequest quorum;
  quorum.set_key(key);
  quorum.set_policy(policy);
  quorum.set_approvals_required(2);
  clavis::v1::KeyPolicy set;
  ASSERT_TRUE(IsOk(Access(P("admin"))->SetKeyPolicy(Ctx().get(), quorum, &set)));

  clavis::v1::ScheduleDestructionRequest schedule;
  schedule.set_name(key);
  clavis::v1::Key out_key;
  grpc::ClientContext ctx;
  ASSERT_TRUE(StatusIs(Admin(P("requester"))->ScheduleKeyDestruction(&ctx, schedule, &out_key),
                       grpc::StatusCode::FAILED_PRECONDITION, "approval required"));
  auto it = ctx.GetServerTrailingMetadata().find("clavis-approval-request");
  ASSERT_NE(it, ctx.GetServerTrailingMetadata().end());
  clavis::v1::DenyRequestRequest withdraw;
  withdraw.set_name(std::string(it->second.data(), it->second.size()));
  withdraw.set_reason("asked by mistake");
  clavis::v1::ApprovalRequest out;
  ASSERT_TRUE(IsOk(Access(P("requester"))->DenyRequest(Ctx().get(), withdraw, &out)));
  EXPECT_EQ(out.state(), clavis::v1::APPROVAL_DENIED);
  EXPECT_EQ(out.denied_by(), P("requester"));
  // But approving stays out of the requester's reach: only their own
  // request could be withdrawn, and it cannot be revived.
  clavis::v1::ApproveRequestRequest approve;
  approve.set_name(withdraw.name());
  EXPECT_TRUE(StatusIs(Access(P("ops2"))->ApproveRequest(Ctx().get(), approve, &out),
                       grpc::StatusCode::FAILED_PRECONDITION, "was denied"));
}

TEST_F(AccessControlTest, ValidateKeyPolicyChecksLikeSetKeyPolicyAndChangesNothing) {
  CreateKey(/*approvals_required=*/2);
  clavis::v1::GetKeyPolicyRequest get;
  get.set_key(kKey);
  clavis::v1::KeyPolicy before;
  ASSERT_TRUE(IsOk(Access(P("admin"))->GetKeyPolicy(Ctx().get(), get, &before)));
  auto validate = [&](const std::string& who, const std::string& document,
                      clavis::v1::ValidateKeyPolicyResponse* out,
                      std::optional<uint32_t> quorum = std::nullopt) {
    clavis::v1::SetKeyPolicyRequest r;
    r.set_key(kKey);
    r.set_policy(document);
    if (quorum.has_value()) r.set_approvals_required(*quorum);
    return Access(who)->ValidateKeyPolicy(Ctx().get(), r, out);
  };
  const std::string narrow = absl::StrCat(
      R"({"version": 1, "statements": [{"sid": "key-administrators", "effect": "Allow",
      "principals": [")",
      P("admin"), R"(", ")", P("ops2"), R"(", ")", P("ops3"),
      R"("], "actions": ["SetPolicy", "ApproveRequest", "GetPolicy", "GetKey"]}]})");
  const std::string wide =
      absl::StrCat(R"({"version": 1, "statements": [{"effect": "Allow", "principals": [")",
                   P("nobody"), R"("], "actions": ["Decrypt"]}]})");

  clavis::v1::ValidateKeyPolicyResponse out;
  ASSERT_TRUE(IsOk(validate(P("admin"), narrow, &out)));
  EXPECT_EQ(out.key(), kKey);
  // As SetKeyPolicy would store it: normalized (version 1 is the 2026-11-01
  // language).
  EXPECT_THAT(out.policy(), HasSubstr("\"version\": \"2026-11-01\""));
  EXPECT_THAT(out.policy(), HasSubstr("\"sid\": \"key-administrators\""));
  EXPECT_EQ(out.approvals_required(), 2u);
  EXPECT_FALSE(out.needs_approval()) << "a narrowing change runs at once";
  EXPECT_THAT(out.approval_reasons(), ::testing::IsEmpty());

  ASSERT_TRUE(IsOk(validate(P("admin"), wide, &out, 0)));
  EXPECT_TRUE(out.needs_approval());
  EXPECT_THAT(out.approval_reasons(),
              ::testing::ElementsAre("widens access", "lowers approvals_required"));
  EXPECT_EQ(out.approvals_required(), 0u) << "the quorum the key would have";

  grpc::Status bad = validate(P("admin"), R"({"version": 1, "statements": [)", &out);
  EXPECT_TRUE(StatusIs(bad, grpc::StatusCode::INVALID_ARGUMENT, "policy: ")) << Describe(bad);
  bad = validate(P("admin"), R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": ["tenants/authz/principals/app"], "actions": ["Decrpyt"]}]})",
                 &out);
  EXPECT_TRUE(StatusIs(bad, grpc::StatusCode::INVALID_ARGUMENT, "statements[0].actions[0]"));
  EXPECT_THAT(bad.error_message(), HasSubstr("did you mean \"Decrypt\""));
  bad = validate(P("admin"), R"({"version": 1, "statements": [{"effect": "Allow",
      "principals": ["tenants/globex/principals/app"], "actions": ["Decrypt"]}]})",
                 &out);
  EXPECT_TRUE(StatusIs(bad, grpc::StatusCode::INVALID_ARGUMENT, "statements[0].principals[0]"))
      << Describe(bad);
  bad = validate(P("admin"), std::string(40000, ' ') + narrow, &out);
  EXPECT_TRUE(StatusIs(bad, grpc::StatusCode::INVALID_ARGUMENT, "the limit is")) << Describe(bad);
  bad = validate(P("admin"), narrow, &out, 11);
  EXPECT_TRUE(StatusIs(bad, grpc::StatusCode::INVALID_ARGUMENT, "approvals_required"));

  // Validating needs what setting needs.
  for (const std::string& who : {P("auditor"), P("app"), PrincipalName("globex")}) {
    EXPECT_TRUE(StatusIs(validate(who, narrow, &out), grpc::StatusCode::PERMISSION_DENIED)) << who;
  }
  clavis::v1::SetKeyPolicyRequest missing;
  missing.set_key("tenants/authz/keys/nope");
  missing.set_policy(narrow);
  EXPECT_TRUE(StatusIs(Access(P("admin"))->ValidateKeyPolicy(Ctx().get(), missing, &out),
                       grpc::StatusCode::NOT_FOUND));

  // Nothing changed, and no approval request was made.
  clavis::v1::KeyPolicy after;
  ASSERT_TRUE(IsOk(Access(P("admin"))->GetKeyPolicy(Ctx().get(), get, &after)));
  EXPECT_EQ(after.policy(), before.policy());
  EXPECT_EQ(after.approvals_required(), 2u);
  clavis::v1::ListApprovalRequestsRequest list;
  list.set_key(kKey);
  list.set_include_finished(true);
  clavis::v1::ListApprovalRequestsResponse listed;
  ASSERT_TRUE(IsOk(Access(P("admin"))->ListApprovalRequests(Ctx().get(), list, &listed)));
  EXPECT_EQ(listed.requests_size(), 0);
  // Audited as validations, not as policy changes.
  int validations = 0;
  int policy_sets = 0;
  for (const auto& r : AuditRecords()) {
    if (r.action == "ValidateKeyPolicy") ++validations;
    if (r.action == "SetPolicy") ++policy_sets;
  }
  EXPECT_EQ(validations, 11);
  EXPECT_EQ(policy_sets, 1) << "only CreateKey()'s own SetKeyPolicy";
}

TEST_F(AccessControlTest, WhoAmIReportsTheServerVersion) {
  clavis::v1::WhoAmIResponse who;
  ASSERT_TRUE(IsOk(Access(P("app"))->WhoAmI(Ctx().get(), clavis::v1::WhoAmIRequest(), &who)));
  CommandResult version = RunShell(absl::StrCat(CLAVISD_BINARY, " --version"));
  ASSERT_EQ(version.exit_code, 0) << version.out;
  EXPECT_EQ(absl::StrCat("clavisd ", who.server_version(), "\n"), version.out);
  EXPECT_THAT(who.server_version(), ::testing::MatchesRegex("[0-9]+\\.[0-9]+\\.[0-9]+.*"));
}

TEST_F(AccessControlTest, AnApprovalDoesNotRunAfterThePolicyChanged) {
  CreateKey(/*approvals_required=*/2);
  clavis::v1::Key key;
  clavis::v1::ApproveRequestRequest approve;
  approve.set_name(RequestDestructionApproval());
  ASSERT_FALSE(approve.name().empty());
  clavis::v1::ApprovalRequest out;
  ASSERT_TRUE(IsOk(Access(P("ops2"))->ApproveRequest(Ctx().get(), approve, &out)));
  EXPECT_THAT(out.summary(), HasSubstr(kKey)) << "approvers see the stored request";
  // Meanwhile a narrowing change (no approval needed): drop the auditors.
  clavis::v1::GetKeyPolicyRequest get;
  get.set_key(kKey);
  clavis::v1::KeyPolicy current;
  ASSERT_TRUE(IsOk(Access(P("admin"))->GetKeyPolicy(Ctx().get(), get, &current)));
  clavis::v1::SetKeyPolicyRequest set;
  set.set_key(kKey);
  set.set_policy(absl::StrCat(
      R"({"version": 1, "statements": [{"sid": "key-administrators",
      "effect": "Allow", "principals": [")",
      P("admin"), R"(", ")", P("ops2"), R"(", ")", P("ops3"),
      R"("], "actions": ["ScheduleDestruction", "SetPolicy", "ApproveRequest", "GetPolicy", "GetKey"]}]})"));
  clavis::v1::KeyPolicy set_out;
  ASSERT_TRUE(IsOk(Access(P("admin"))->SetKeyPolicy(Ctx().get(), set, &set_out)));
  ASSERT_TRUE(IsOk(Access(P("ops3"))->ApproveRequest(Ctx().get(), approve, &out)));
  EXPECT_EQ(out.state(), clavis::v1::APPROVAL_EXECUTED);
  EXPECT_EQ(out.result_code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_THAT(out.result_message(), HasSubstr("changed after this request"));
  clavis::v1::GetKeyRequest g;
  g.set_name(kKey);
  ASSERT_TRUE(IsOk(Admin(P("admin"))->GetKey(Ctx().get(), g, &key)));
  EXPECT_EQ(key.state(), clavis::v1::ENABLED);
}

TEST_F(AccessControlTest, PolicyAndApprovalRpcsRefusePrincipalsWithoutRights) {
  CreateKey(/*approvals_required=*/2);
  const std::string request = RequestDestructionApproval();
  ASSERT_FALSE(request.empty());
  for (const std::string& who : {P("nobody"), P("app"), PrincipalName("globex")}) {
    SCOPED_TRACE(who);
    clavis::v1::SetKeyPolicyRequest set;
    set.set_key(kKey);
    set.set_policy(TestKeyPolicy(kKey, {who}));
    clavis::v1::KeyPolicy policy;
    EXPECT_TRUE(StatusIs(Access(who)->SetKeyPolicy(Ctx().get(), set, &policy),
                         grpc::StatusCode::PERMISSION_DENIED));
    clavis::v1::ListApprovalRequestsRequest list;
    list.set_key(kKey);
    clavis::v1::ListApprovalRequestsResponse listed;
    EXPECT_TRUE(StatusIs(Access(who)->ListApprovalRequests(Ctx().get(), list, &listed),
                         grpc::StatusCode::PERMISSION_DENIED));
    clavis::v1::GetApprovalRequestRequest get;
    get.set_name(request);
    clavis::v1::ApprovalRequest got;
    EXPECT_TRUE(StatusIs(Access(who)->GetApprovalRequest(Ctx().get(), get, &got),
                         grpc::StatusCode::PERMISSION_DENIED));
    EXPECT_TRUE(got.summary().empty()) << "nothing about the request leaks";
  }
  // Malformed names are refused as such.
  clavis::v1::GetApprovalRequestRequest bad;
  bad.set_name("tenants/authz/approvals/../../keys/crm");
  clavis::v1::ApprovalRequest got;
  EXPECT_TRUE(StatusIs(Access(P("admin"))->GetApprovalRequest(Ctx().get(), bad, &got),
                       grpc::StatusCode::INVALID_ARGUMENT, "approval request name"));
  // The policy did not change.
  clavis::v1::GetKeyPolicyRequest get_policy;
  get_policy.set_key(kKey);
  clavis::v1::KeyPolicy current;
  ASSERT_TRUE(IsOk(Access(P("admin"))->GetKeyPolicy(Ctx().get(), get_policy, &current)));
  EXPECT_THAT(current.policy(), ::testing::Not(HasSubstr("nobody")));
}

TEST_F(AccessControlTest, WideningPolicyChangesNeedApprovalNarrowingOnesDoNot) {
  CreateKey(/*approvals_required=*/2);
  clavis::v1::GetKeyPolicyRequest get;
  get.set_key(kKey);
  clavis::v1::KeyPolicy current;
  ASSERT_TRUE(IsOk(Access(P("admin"))->GetKeyPolicy(Ctx().get(), get, &current)));
  EXPECT_EQ(current.approvals_required(), 2u);

  // Narrowing: drop the auditors statement. Runs at once.
  std::string narrowed = current.policy();
  clavis::v1::SetKeyPolicyRequest set;
  set.set_key(kKey);
  set.set_policy(
      absl::StrCat(R"({"version": 1, "statements": [{"sid": "key-administrators",
      "effect": "Allow", "principals": [")",
                   P("admin"), R"(", ")", P("ops2"), R"(", ")", P("ops3"),
                   R"("], "actions": ["SetPolicy", "ApproveRequest", "GetPolicy", "GetKey"]}]})"));
  clavis::v1::KeyPolicy out;
  ASSERT_TRUE(IsOk(Access(P("admin"))->SetKeyPolicy(Ctx().get(), set, &out)));
  // Widening: give app Decrypt back. Needs approval.
  set.set_policy(
      absl::StrCat(R"({"version": 1, "statements": [{"sid": "key-administrators",
      "effect": "Allow", "principals": [")",
                   P("admin"), R"(", ")", P("ops2"), R"(", ")", P("ops3"),
                   R"("], "actions": ["SetPolicy", "ApproveRequest", "GetPolicy", "GetKey"]},
      {"effect": "Allow", "principals": [")",
                   P("app"), R"("], "actions": ["Decrypt"]}]})"));
  grpc::ClientContext ctx;
  grpc::Status s = Access(P("admin"))->SetKeyPolicy(&ctx, set, &out);
  ASSERT_TRUE(StatusIs(s, grpc::StatusCode::FAILED_PRECONDITION, "approval required"));
  const auto& trailing = ctx.GetServerTrailingMetadata();
  auto it = trailing.find("clavis-approval-request");
  ASSERT_NE(it, trailing.end());
  clavis::v1::ApproveRequestRequest approve;
  approve.set_name(std::string(it->second.data(), it->second.size()));
  clavis::v1::ApprovalRequest result;
  ASSERT_TRUE(IsOk(Access(P("ops2"))->ApproveRequest(Ctx().get(), approve, &result)));
  ASSERT_TRUE(IsOk(Access(P("ops3"))->ApproveRequest(Ctx().get(), approve, &result)));
  EXPECT_EQ(result.state(), clavis::v1::APPROVAL_EXECUTED);
  ASSERT_TRUE(IsOk(Access(P("admin"))->GetKeyPolicy(Ctx().get(), get, &current)));
  EXPECT_THAT(current.policy(), HasSubstr(P("app")));
  // Lowering the quorum is itself guarded.
  set.set_approvals_required(0);
  s = Access(P("admin"))->SetKeyPolicy(Ctx().get(), set, &out);
  EXPECT_TRUE(StatusIs(s, grpc::StatusCode::FAILED_PRECONDITION, "approval required"));
}

// ---- The audit log ----

TEST_F(AccessControlTest, EveryCallIsAuditedAndTheLogVerifies) {
  CreateKey();
  const Context context{{"customer_email", "jane@example.com"}};
  clavis::v1::GenerateDataKeyResponse dk;
  ASSERT_TRUE(IsOk(GenerateDataKey(P("app"), "acme/contacts", context, &dk)));
  ASSERT_TRUE(IsOk(Decrypt(P("app"), dk.ciphertext_blob(), context)));
  EXPECT_FALSE(Decrypt(P("nobody"), dk.ciphertext_blob(), context).ok());
  {
    auto ctx = Ctx();
    ctx->AddMetadata("x-request-id", "req-audit-42");
    clavis::v1::GetKeyRequest r;
    r.set_name(kKey);
    clavis::v1::Key k;
    ASSERT_TRUE(IsOk(Admin(P("admin"))->GetKey(ctx.get(), r, &k)));
  }
  const std::string public_key = clavisd_->AuditPublicKey();
  ASSERT_EQ(public_key.size(), 32u);
  ASSERT_TRUE(clavisd_->Stop().ok());

  auto report = kms::VerifyAuditLog(AuditDir(), public_key);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok()) << report->ToString();
  EXPECT_TRUE(report->cleanly_closed);

  bool generate = false, decrypt_ok = false, decrypt_denied = false, request_id = false;
  for (const auto& r : AuditRecords()) {
    if (r.kind != kms::AuditRecordKind::kCall) continue;
    if (r.action == "GenerateDataKey" && r.principal == P("app") && r.resource == kKey &&
        r.segment == "acme/contacts" && r.result_code == absl::StatusCode::kOk) {
      generate = true;
      EXPECT_EQ(r.context_hash.size(), 32u) << "the context is recorded as a keyed hash";
      EXPECT_FALSE(r.peer.empty());
    }
    if (r.action == "Decrypt" && r.principal == P("app") &&
        r.result_code == absl::StatusCode::kOk) {
      decrypt_ok = true;
    }
    if (r.action == "Decrypt" && r.principal == P("nobody") &&
        r.result_code == absl::StatusCode::kPermissionDenied) {
      decrypt_denied = true;
    }
    if (r.request_id == "req-audit-42" && r.action == "GetKey") request_id = true;
  }
  EXPECT_TRUE(generate);
  EXPECT_TRUE(decrypt_ok);
  EXPECT_TRUE(decrypt_denied);
  EXPECT_TRUE(request_id);
  // Personal data in contexts never reaches the log files.
  for (const auto& [path, content] : ReadAllFiles(AuditDir())) {
    EXPECT_EQ(content.find("jane@example.com"), std::string::npos) << path;
  }
}

TEST_F(AccessControlTest, ARunOfRefusalsRaisesAnAlertRecord) {
  CreateKey();
  // Someone probing what a stolen credential can reach: 20 refusals in a row.
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(StatusIs(GenerateDataKey(P("nobody"), absl::StrCat("probe/", i), {}),
                         grpc::StatusCode::PERMISSION_DENIED));
  }
  int alerts = 0;
  for (const auto& r : AuditRecords()) {
    if (r.kind == kms::AuditRecordKind::kAlert && r.principal == P("nobody") &&
        r.action == "denial-streak") {
      ++alerts;
    }
  }
  EXPECT_EQ(alerts, 1);
  // A well-behaved principal raises none.
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(IsOk(GenerateDataKey(P("app"), "s", {})));
  for (const auto& r : AuditRecords()) {
    EXPECT_FALSE(r.kind == kms::AuditRecordKind::kAlert && r.principal == P("app"));
  }
}

TEST_F(AccessControlTest, AKillUnderLoadLeavesNoAcknowledgedCallUnlogged) {
  CreateKey();
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::vector<std::thread> threads;
  // Stubs (and the app's certificate) are made here, before the threads.
  std::vector<std::shared_ptr<DataStub>> stubs;
  for (int t = 0; t < 4; ++t) {
    stubs.push_back(clavis::v1::KeyManagement::NewStub(clavisd_->NewChannel(P("app"))));
  }
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      DataStub* data = stubs[t].get();
      for (int i = 0; !stop; ++i) {
        const std::string id = absl::StrCat("load-", t, "-", i);
        auto ctx = ContextWithDeadline(absl::Seconds(5));
        ctx->AddMetadata("x-request-id", id);
        clavis::v1::GenerateDataKeyRequest r;
        r.set_key(kKey);
        r.set_segment(absl::StrCat("s", i % 7));
        clavis::v1::GenerateDataKeyResponse out;
        if (data->GenerateDataKey(ctx.get(), r, &out).ok()) {
          std::lock_guard<std::mutex> lock(mu);
          acknowledged.insert(id);
        }
      }
    });
  }
  // Load until enough calls were acknowledged (a slow machine takes longer),
  // then kill mid-stream.
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(100));
    std::lock_guard<std::mutex> lock(mu);
    if (acknowledged.size() >= 100) break;
  }
  clavisd_->Kill();
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_GT(acknowledged.size(), 20u);

  std::set<std::string> logged;
  for (const auto& r : AuditRecords()) {
    if (r.action == "GenerateDataKey" && r.result_code == absl::StatusCode::kOk) {
      logged.insert(r.request_id);
    }
  }
  for (const auto& id : acknowledged) EXPECT_TRUE(logged.count(id)) << id << " was not logged";

  // The log recovers on restart: the unclean end is itself recorded.
  StartClavisd({});
  ASSERT_TRUE(clavisd_->Stop().ok());
  bool recovered = false;
  for (const auto& r : AuditRecords()) {
    if (r.action == "AuditLogRecovered") recovered = true;
  }
  EXPECT_TRUE(recovered);
}

TEST_F(AccessControlTest, EventStreamsOnlyShowKeysTheWatcherMayWatch) {
  CreateKey();
  clavis::v1::CreateKeyRequest other;
  other.set_parent(absl::StrCat("tenants/", kTenant));
  other.set_key_id("secret");
  clavis::v1::Key k;
  ASSERT_TRUE(IsOk(Admin(P("admin"))->CreateKey(Ctx().get(), other, &k)));

  auto data = Data(P("app"));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  clavis::v1::WatchKeyEventsRequest watch;
  watch.set_tenant(absl::StrCat("tenants/", kTenant));
  auto reader = data->WatchKeyEvents(&ctx, watch);
  reader->WaitForInitialMetadata();
  for (const std::string& name : {std::string("tenants/authz/keys/secret"), kKey}) {
    clavis::v1::KeyNameRequest r;
    r.set_name(name);
    ASSERT_TRUE(IsOk(Admin(P("admin"))->DisableKey(Ctx().get(), r, &k)));
  }
  clavis::v1::KeyEvent first, second;
  ASSERT_TRUE(reader->Read(&first));
  ASSERT_TRUE(reader->Read(&second));
  EXPECT_TRUE(first.key().empty()) << "the other key's event is redacted";
  EXPECT_EQ(first.type(), clavis::v1::KeyEvent::TYPE_UNSPECIFIED);
  EXPECT_EQ(second.key(), kKey);
  EXPECT_EQ(second.sequence(), first.sequence() + 1) << "no gap: nothing was lost";
  ctx.TryCancel();
  (void)reader->Finish();

  // Another tenant's stream is refused outright.
  grpc::ClientContext cross_ctx;
  watch.set_tenant("tenants/globex");
  auto cross = data->WatchKeyEvents(&cross_ctx, watch);
  clavis::v1::KeyEvent ignored;
  EXPECT_FALSE(cross->Read(&ignored));
  EXPECT_TRUE(StatusIs(cross->Finish(), grpc::StatusCode::PERMISSION_DENIED, "cross-tenant"));
}

}  // namespace
}  // namespace clavis::testing
