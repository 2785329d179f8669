// The commands end to end through Run(), against fake KeyAdmin,
// KeyManagement and AccessControl services in this process (not clavisd):
// what each command sends, what it prints, paging, exit codes for server
// errors, and the approval-request hint.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tools/clavisctl/cli_testing.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/run.h"

namespace clavis::clavisctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kMain[] = "tenants/acme/keys/main";
// A key with an approvals quorum: guarded calls on it become approval
// requests.
constexpr char kGuarded[] = "tenants/acme/keys/guarded";
constexpr char kApprovalName[] = "tenants/acme/approvals/ar-7";
constexpr int kKeyCount = 5;

// What clavisd does with a guarded call (kms/service/approval_gate.cc).
grpc::Status ApprovalRequired(grpc::ServerContext* context, const std::string& key) {
  context->AddTrailingMetadata("clavis-approval-request", kApprovalName);
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      absl::StrCat("approval required: ", key,
                                   " needs 2 approvals for ScheduleDestruction; created approval "
                                   "request ",
                                   kApprovalName));
}

// Keeps the last request of each type, for the tests to inspect.
class Recorder {
 public:
  template <typename T>
  T Last() {
    std::lock_guard<std::mutex> lock(mu_);
    T message;
    EXPECT_TRUE(message.ParseFromString(last_[T::descriptor()->full_name()]));
    return message;
  }
  template <typename T>
  bool Saw() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_.count(T::descriptor()->full_name()) > 0;
  }

 protected:
  void Record(const google::protobuf::Message& request) {
    std::lock_guard<std::mutex> lock(mu_);
    last_[request.GetDescriptor()->full_name()] = request.SerializeAsString();
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> last_;
};

clavis::v1::Key MainKey() {
  clavis::v1::Key key;
  key.set_name(kMain);
  key.set_state(clavis::v1::ENABLED);
  key.set_primary_version(1);
  clavis::v1::KeyVersion* v = key.add_versions();
  v->set_version(1);
  v->set_state(clavis::v1::ENABLED);
  v->set_key_check_value("0011223344556677");
  return key;
}

class FakeAdmin final : public clavis::v1::KeyAdmin::Service, public Recorder {
 public:
  grpc::Status GetKey(grpc::ServerContext*, const clavis::v1::GetKeyRequest* request,
                      clavis::v1::Key* response) override {
    if (request->name() == kGuarded) {
      *response = MainKey();
      response->set_name(kGuarded);
      response->set_approvals_required(2);
      return grpc::Status::OK;
    }
    if (request->name() != kMain) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("key ", request->name(), " not found"));
    }
    *response = MainKey();
    return grpc::Status::OK;
  }

  // Answers for kMain only: 3 segment keys on version 1; refused for others.
  grpc::Status GetKeyVersionUsage(grpc::ServerContext*, const clavis::v1::KeyNameRequest* request,
                                  clavis::v1::KeyVersionUsage* response) override {
    if (request->name() != kMain) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "GetKey denied");
    }
    response->set_name(kMain);
    response->set_segments_scanned(3);
    auto* v = response->add_versions();
    v->set_version(1);
    v->set_state(clavis::v1::ENABLED);
    v->set_primary(true);
    v->set_segment_key_versions(3);
    v->set_segments(3);
    return grpc::Status::OK;
  }

  grpc::Status CreateKey(grpc::ServerContext*, const clavis::v1::CreateKeyRequest* request,
                         clavis::v1::Key* response) override {
    Record(*request);
    if (request->key_id() == "exists") {
      return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "key exists");
    }
    response->set_name(absl::StrCat(request->parent(), "/keys/", request->key_id()));
    return grpc::Status::OK;
  }

  grpc::Status DisableKey(grpc::ServerContext*, const clavis::v1::KeyNameRequest*,
                          clavis::v1::Key*) override {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "key is PENDING_DESTRUCTION");
  }

  grpc::Status ListKeys(grpc::ServerContext*, const clavis::v1::ListKeysRequest* request,
                        clavis::v1::ListKeysResponse* response) override {
    ++list_calls_;
    const int size = request->page_size() > 0 ? request->page_size() : 100;
    const int start = request->page_token().empty() ? 0 : std::stoi(request->page_token());
    for (int i = start; i < kKeyCount && i < start + size; ++i) {
      response->add_keys()->set_name(absl::StrCat(request->parent(), "/keys/k", i));
    }
    if (start + size < kKeyCount) response->set_next_page_token(absl::StrCat(start + size));
    return grpc::Status::OK;
  }

  grpc::Status UpdateKeySettings(grpc::ServerContext*,
                                 const clavis::v1::UpdateKeySettingsRequest* request,
                                 clavis::v1::Key* response) override {
    Record(*request);
    *response = MainKey();
    return grpc::Status::OK;
  }

  grpc::Status ScheduleKeyDestruction(grpc::ServerContext* context,
                                      const clavis::v1::ScheduleDestructionRequest* request,
                                      clavis::v1::Key* response) override {
    Record(*request);
    if (request->name() == kGuarded) return ApprovalRequired(context, kGuarded);
    *response = MainKey();
    response->set_state(clavis::v1::PENDING_DESTRUCTION);
    return grpc::Status::OK;
  }

  grpc::Status DisableKeyVersion(grpc::ServerContext*, const clavis::v1::KeyVersionRequest* request,
                                 clavis::v1::Key* response) override {
    Record(*request);
    *response = MainKey();
    return grpc::Status::OK;
  }

  grpc::Status RewrapSegments(grpc::ServerContext*,
                              const clavis::v1::RewrapSegmentsRequest* request,
                              clavis::v1::RewrapSegmentsResponse* response) override {
    // Three batches: tokens "", "1", "2".
    const int batch = request->page_token().empty() ? 0 : std::stoi(request->page_token());
    response->set_rewrapped(10);
    response->set_already_current(1);
    if (batch < 2) response->set_next_page_token(absl::StrCat(batch + 1));
    return grpc::Status::OK;
  }

  grpc::Status ListSegments(grpc::ServerContext*, const clavis::v1::ListSegmentsRequest* request,
                            clavis::v1::ListSegmentsResponse* response) override {
    Record(*request);
    clavis::v1::Segment* s = response->add_segments();
    s->set_segment(absl::StrCat(request->prefix(), "2026-11"));
    s->set_state(clavis::v1::ENABLED);
    return grpc::Status::OK;
  }

  grpc::Status RevokeSegment(grpc::ServerContext*, const clavis::v1::SegmentRequest* request,
                             clavis::v1::Segment* response) override {
    Record(*request);
    response->set_name(request->name());
    response->set_state(clavis::v1::DISABLED);
    return grpc::Status::OK;
  }

  int list_calls() const { return list_calls_; }

 private:
  std::atomic<int> list_calls_{0};
};

// "Encrypts" as 0x01 || plaintext and checks the context on decrypt: enough
// to see what the commands send and print.
class FakeData final : public clavis::v1::KeyManagement::Service {
 public:
  grpc::Status GenerateDataKey(grpc::ServerContext*,
                               const clavis::v1::GenerateDataKeyRequest* request,
                               clavis::v1::GenerateDataKeyResponse* response) override {
    response->set_plaintext(std::string(32, 'k'));
    response->set_ciphertext_blob("\x01wrapped");
    response->set_key_version(absl::StrCat(request->key(), "/versions/1"));
    response->set_segment_key_version(3);
    return grpc::Status::OK;
  }

  grpc::Status Encrypt(grpc::ServerContext*, const clavis::v1::EncryptRequest* request,
                       clavis::v1::EncryptResponse* response) override {
    if (request->encryption_context().size() != 1 ||
        request->encryption_context().at("table") != "orders") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "unexpected context");
    }
    response->set_ciphertext_blob("\x01" + request->plaintext());
    return grpc::Status::OK;
  }

  grpc::Status Decrypt(grpc::ServerContext*, const clavis::v1::DecryptRequest* request,
                       clavis::v1::DecryptResponse* response) override {
    const std::string& blob = request->ciphertext_blob();
    if (blob.empty() || blob[0] != '\x01' || request->encryption_context().size() != 1 ||
        request->encryption_context().count("table") == 0 ||
        request->encryption_context().at("table") != "orders") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the blob does not decrypt");
    }
    response->set_plaintext(blob.substr(1));
    response->set_key(kMain);
    return grpc::Status::OK;
  }
};

// A stored policy, compact as clavisd normalizes it.
constexpr char kPolicy[] =
    R"({"version":"2026-11-01","statements":[{"sid":"key-users","effect":"Allow",)"
    R"("principals":["tenants/acme/principals/app"],"actions":["Decrypt"],"conditions":{}}]})";

clavis::v1::ApprovalRequest Approval(const std::string& name, int approvals,
                                     clavis::v1::ApprovalState state) {
  clavis::v1::ApprovalRequest r;
  r.set_name(name);
  r.set_key(kGuarded);
  r.set_action("ScheduleDestruction");
  r.set_resource(kGuarded);
  r.set_requester("tenants/acme/principals/admin");
  for (int i = 0; i < approvals; ++i) {
    r.add_approvers(absl::StrCat("tenants/acme/principals/ops", i));
  }
  r.set_approvals_required(2);
  r.set_state(state);
  r.set_summary("schedule destruction of tenants/acme/keys/guarded");
  r.mutable_create_time()->set_seconds(1'796'083'200);  // 2026-12-01T00:00:00Z
  r.mutable_expire_time()->set_seconds(1'796'169'600);  // 2026-12-02T00:00:00Z
  return r;
}

class FakeAccess final : public clavis::v1::AccessControl::Service, public Recorder {
 public:
  std::atomic<int> set_calls{0};

  grpc::Status WhoAmI(grpc::ServerContext*, const clavis::v1::WhoAmIRequest*,
                      clavis::v1::WhoAmIResponse* response) override {
    response->set_principal("tenants/acme/principals/admin");
    response->add_groups("tenants/acme/groups/ops");
    response->add_groups("tenants/acme/groups/oncall");
    response->set_method("mtls");
    response->set_peer("ipv4:127.0.0.1:50000");
    response->set_server_version("9.8.7");
    return grpc::Status::OK;
  }

  grpc::Status GetKeyPolicy(grpc::ServerContext*, const clavis::v1::GetKeyPolicyRequest* request,
                            clavis::v1::KeyPolicy* response) override {
    response->set_key(request->key());
    if (request->key() == kGuarded) {
      response->set_policy(kPolicy);
      response->set_approvals_required(2);
      return grpc::Status::OK;
    }
    if (request->key() == kMain) return grpc::Status::OK;  // no policy
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "key not found");
  }

  grpc::Status SetKeyPolicy(grpc::ServerContext* context,
                            const clavis::v1::SetKeyPolicyRequest* request,
                            clavis::v1::KeyPolicy* response) override {
    Record(*request);
    ++set_calls;
    if (request->policy().find("widen") != std::string::npos) {
      return ApprovalRequired(context, request->key());
    }
    response->set_key(request->key());
    response->set_policy(request->policy());
    response->set_approvals_required(
        request->has_approvals_required() ? request->approvals_required() : 2);
    return grpc::Status::OK;
  }

  // A document holding "widen" would need approval, one holding "Decrpyt"
  // is refused like clavisd's parser refuses it.
  grpc::Status ValidateKeyPolicy(grpc::ServerContext*,
                                 const clavis::v1::SetKeyPolicyRequest* request,
                                 clavis::v1::ValidateKeyPolicyResponse* response) override {
    Record(*request);
    if (request->policy().find("Decrpyt") != std::string::npos) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "policy: statements[0].actions[0]: unknown action \"Decrpyt\" (did you "
                          "mean \"Decrypt\"?)");
    }
    response->set_key(request->key());
    response->set_policy(kPolicy);
    response->set_approvals_required(2);
    if (request->policy().find("widen") != std::string::npos) {
      response->set_needs_approval(true);
      response->add_approval_reasons("widens access");
      response->add_approval_reasons("lowers approvals_required");
    }
    return grpc::Status::OK;
  }

  grpc::Status SimulatePolicy(grpc::ServerContext*,
                              const clavis::v1::SimulatePolicyRequest* request,
                              clavis::v1::SimulatePolicyResponse* response) override {
    Record(*request);
    if (request->action() == "Decrypt") {
      response->set_allowed(true);
      response->set_reason("allowed by statement 0 (sid \"key-users\")");
      response->set_statement_index(0);
      response->set_sid("key-users");
    } else {
      response->set_allowed(false);
      response->set_reason(absl::StrCat("denied: no statement allows ", request->action()));
      response->set_statement_index(-1);
    }
    return grpc::Status::OK;
  }

  grpc::Status ListApprovalRequests(grpc::ServerContext*,
                                    const clavis::v1::ListApprovalRequestsRequest* request,
                                    clavis::v1::ListApprovalRequestsResponse* response) override {
    Record(*request);
    if (request->key() != kGuarded) return grpc::Status::OK;
    *response->add_requests() = Approval(kApprovalName, 1, clavis::v1::APPROVAL_PENDING);
    if (request->include_finished()) {
      *response->add_requests() =
          Approval("tenants/acme/approvals/ar-1", 2, clavis::v1::APPROVAL_EXECUTED);
    }
    return grpc::Status::OK;
  }

  grpc::Status GetApprovalRequest(grpc::ServerContext*,
                                  const clavis::v1::GetApprovalRequestRequest* request,
                                  clavis::v1::ApprovalRequest* response) override {
    if (request->name() != kApprovalName) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such approval request");
    }
    *response = Approval(kApprovalName, 1, clavis::v1::APPROVAL_PENDING);
    return grpc::Status::OK;
  }

  // ar-pending: the first of two approvals; ar-final: the second, and the
  // action runs; ar-fails: the second, and the action fails; ar-own: the
  // requester's own.
  grpc::Status ApproveRequest(grpc::ServerContext*,
                              const clavis::v1::ApproveRequestRequest* request,
                              clavis::v1::ApprovalRequest* response) override {
    Record(*request);
    const std::string& name = request->name();
    if (name == "tenants/acme/approvals/ar-pending") {
      *response = Approval(name, 1, clavis::v1::APPROVAL_PENDING);
    } else if (name == "tenants/acme/approvals/ar-final") {
      *response = Approval(name, 2, clavis::v1::APPROVAL_EXECUTED);
    } else if (name == "tenants/acme/approvals/ar-fails") {
      *response = Approval(name, 2, clavis::v1::APPROVAL_EXECUTED);
      response->set_result_code(static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
      response->set_result_message("key is DESTROYED");
    } else {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "the requester cannot approve their own request");
    }
    return grpc::Status::OK;
  }

  // ar-7: denied with the reason sent; anything else: already executed.
  grpc::Status DenyRequest(grpc::ServerContext*, const clavis::v1::DenyRequestRequest* request,
                           clavis::v1::ApprovalRequest* response) override {
    Record(*request);
    if (request->name() != kApprovalName) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("approval request ", request->name(),
                                       " is EXECUTED (its action already ran); it cannot be "
                                       "denied"));
    }
    *response = Approval(kApprovalName, 1, clavis::v1::APPROVAL_DENIED);
    response->set_denied_by("tenants/acme/principals/ops1");
    response->set_deny_reason(request->reason());
    response->mutable_deny_time()->set_seconds(1'796'086'800);  // 2026-12-01T01:00:00Z
    return grpc::Status::OK;
  }
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&admin_);
    builder.RegisterService(&data_);
    builder.RegisterService(&access_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    endpoint_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    server_->Shutdown();
    for (const std::string& file : temp_files_) std::remove(file.c_str());
  }

  struct Result {
    int code;
    std::string out;
    std::string err;
  };

  Result Cli(std::vector<std::string> args, const std::string& stdin_text = "") {
    auto r =
        clavisctl::cli_testing::RunCliInProcess(std::move(args), endpoint_.c_str(), stdin_text);
    return {r.code, std::move(r.out), std::move(r.err)};
  }

  // A file in the test's temp dir holding `content`; removed in TearDown.
  std::string TempFile(const std::string& name, const std::string& content) {
    const std::string path = absl::StrCat(::testing::TempDir(), "/clavisctl_", name);
    std::ofstream(path, std::ios::binary) << content;
    temp_files_.push_back(path);
    return path;
  }

  FakeAdmin admin_;
  FakeData data_;
  FakeAccess access_;
  std::vector<std::string> temp_files_;
  std::unique_ptr<grpc::Server> server_;
  std::string endpoint_;
};

TEST_F(CommandsTest, KeyGetPrintsFieldsAndVersions) {
  const Result r = Cli({"key", "get", kMain});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("name               tenants/acme/keys/main\n"));
  EXPECT_THAT(r.out, HasSubstr("SEGMENT KEYS"));
  EXPECT_THAT(r.out, HasSubstr("1 (primary)  ENABLED  -        3             0011223344556677\n"));
  EXPECT_THAT(r.out, HasSubstr("re-wrap: 3 of 3 segment keys on the primary version (100%)"));
  EXPECT_THAT(r.err, IsEmpty());

  const Result skipped = Cli({"key", "get", kMain, "--no-usage"});
  ASSERT_EQ(skipped.code, 0) << skipped.err;
  EXPECT_THAT(skipped.out, HasSubstr("1 (primary)  ENABLED  -        0011223344556677\n"));
  EXPECT_THAT(skipped.out, Not(HasSubstr("SEGMENT KEYS")));
}

TEST_F(CommandsTest, KeyGetWithoutUsageRightsStillShowsTheKey) {
  const Result r = Cli({"key", "get", kGuarded});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("0011223344556677"));
  EXPECT_THAT(r.out, Not(HasSubstr("SEGMENT KEYS")));
  EXPECT_EQ(r.err, "(segment-key counts unavailable: GetKey denied)\n");
}

TEST_F(CommandsTest, KeyGetJson) {
  const Result r = Cli({"key", "get", kMain, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_THAT(r.out, HasSubstr("\"keyCheckValue\": \"0011223344556677\""));
}

TEST_F(CommandsTest, ServerErrorsMapToExitCodes) {
  Result r = Cli({"key", "get", "tenants/acme/keys/nope"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.err, "clavisctl: key tenants/acme/keys/nope not found\n");
  EXPECT_THAT(r.out, IsEmpty());

  r = Cli({"key", "disable", kMain});
  EXPECT_EQ(r.code, kExitFailedPrecondition);
  EXPECT_EQ(r.err, "clavisctl: key is PENDING_DESTRUCTION\n");

  r = Cli({"key", "create", "tenants/acme/keys/exists"});
  EXPECT_EQ(r.code, kExitAlreadyExists);

  r = Cli({"key", "rotate", kMain});  // not implemented by the fake
  EXPECT_EQ(r.code, kExitGeneric);
}

TEST_F(CommandsTest, KeyCreateSendsEverything) {
  const Result r =
      Cli({"key", "create", "tenants/acme/keys/orders", "--description", "d", "--label", "env=prod",
           "--label", "team=", "--rotation-period", "90d", "--require-explicit-segments"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto request = admin_.Last<clavis::v1::CreateKeyRequest>();
  EXPECT_EQ(request.parent(), "tenants/acme");
  EXPECT_EQ(request.key_id(), "orders");
  EXPECT_EQ(request.description(), "d");
  EXPECT_THAT(request.labels(), UnorderedElementsAre(Pair("env", "prod"), Pair("team", "")));
  EXPECT_EQ(request.rotation_period().seconds(), 90 * 86400);
  EXPECT_TRUE(request.require_explicit_segments());
}

TEST_F(CommandsTest, KeyListOnePageHintsAtMore) {
  const Result r = Cli({"key", "list", "tenants/acme", "--page-size", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("tenants/acme/keys/k1"));
  EXPECT_THAT(r.out, Not(HasSubstr("tenants/acme/keys/k2")));
  EXPECT_THAT(r.err, HasSubstr("--page-token 2"));
}

TEST_F(CommandsTest, KeyListAllFollowsPageTokens) {
  const Result r = Cli({"key", "list", "tenants/acme", "--page-size", "2", "--all"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(admin_.list_calls(), 3);
  for (int i = 0; i < kKeyCount; ++i) EXPECT_THAT(r.out, HasSubstr(absl::StrCat("keys/k", i)));
  EXPECT_THAT(r.err, IsEmpty());
}

TEST_F(CommandsTest, KeyListAllJsonIsOneDocument) {
  const Result r = Cli({"--json", "key", "list", "tenants/acme", "--page-size", "2", "--all"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_EQ(r.out.substr(r.out.size() - 2), "}\n");
  // One top-level object: "keys" appears once, with all five.
  EXPECT_EQ(r.out.find("\"keys\""), r.out.rfind("\"keys\""));
  EXPECT_THAT(r.out, HasSubstr("tenants/acme/keys/k4"));
  EXPECT_THAT(r.out, HasSubstr("\"nextPageToken\": \"\""));
}

TEST_F(CommandsTest, SetRotationUsesAnUpdateMask) {
  Result r = Cli({"key", "set-rotation", kMain, "--period", "30d"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto request = admin_.Last<clavis::v1::UpdateKeySettingsRequest>();
  EXPECT_THAT(request.update_mask().paths(), ElementsAre("rotation_period"));
  EXPECT_EQ(request.rotation_period().seconds(), 30 * 86400);

  r = Cli({"key", "set-rotation", kMain, "--period", "0s", "--next", "2026-12-01T00:00:00Z"});
  ASSERT_EQ(r.code, 0) << r.err;
  request = admin_.Last<clavis::v1::UpdateKeySettingsRequest>();
  EXPECT_THAT(request.update_mask().paths(), ElementsAre("rotation_period", "next_rotation_time"));
  EXPECT_EQ(request.rotation_period().seconds(), 0);
  EXPECT_EQ(request.next_rotation_time().seconds(), 1'796'083'200);
}

TEST_F(CommandsTest, ScheduleDestroySendsTheWindowOnlyWhenGiven) {
  Result r = Cli({"key", "schedule-destroy", kMain});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(admin_.Last<clavis::v1::ScheduleDestructionRequest>().has_pending_window());
  EXPECT_THAT(r.out, HasSubstr("PENDING_DESTRUCTION"));

  r = Cli({"key", "schedule-destroy", kMain, "--pending-window", "7d"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(admin_.Last<clavis::v1::ScheduleDestructionRequest>().pending_window().seconds(),
            7 * 86400);
}

TEST_F(CommandsTest, KeyVersionCommandSendsTheVersionName) {
  const Result r = Cli({"key", "version", "disable", "tenants/acme/keys/main/versions/1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(admin_.Last<clavis::v1::KeyVersionRequest>().name(),
            "tenants/acme/keys/main/versions/1");
}

TEST_F(CommandsTest, RewrapLoopsUntilDone) {
  const Result r = Cli({"key", "rewrap", kMain, "--batch-size", "10"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("batch 1: 10 re-wrapped"));
  EXPECT_THAT(r.err, HasSubstr("batch 3: 10 re-wrapped"));
  EXPECT_THAT(r.err, Not(HasSubstr("batch 4")));
  EXPECT_EQ(r.out, "re-wrapped 30 segment keys; 3 already on the primary version\n");
}

TEST_F(CommandsTest, SegmentCommands) {
  Result r = Cli({"segment", "revoke", "tenants/acme/keys/main/segments/acme/orders/2026-11"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(admin_.Last<clavis::v1::SegmentRequest>().name(),
            "tenants/acme/keys/main/segments/acme/orders/2026-11");
  EXPECT_THAT(r.out, HasSubstr("DISABLED"));

  r = Cli({"segment", "list", kMain, "--prefix", "acme/orders/"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(admin_.Last<clavis::v1::ListSegmentsRequest>().prefix(), "acme/orders/");
  EXPECT_THAT(r.out, HasSubstr("acme/orders/2026-11  ENABLED"));
}

TEST_F(CommandsTest, DataKeyPrintsKeyAndBlobInBase64) {
  const Result r = Cli({"datakey", kMain, "--segment", "s", "--context", "table=orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::Base64Escape(std::string(32, 'k'))));
  EXPECT_THAT(r.out, HasSubstr(absl::Base64Escape("\x01wrapped")));
  EXPECT_THAT(r.out, HasSubstr("tenants/acme/keys/main/versions/1"));
}

TEST_F(CommandsTest, EncryptThenDecryptRoundTrips) {
  const std::string payload("binary\0payload\xff", 15);
  Result r = Cli({"encrypt", kMain, "--segment", "s", "--context", "table=orders"}, payload);
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.out.back(), '\n');
  const std::string blob_b64 = r.out.substr(0, r.out.size() - 1);
  EXPECT_EQ(blob_b64, absl::Base64Escape("\x01" + payload));

  r = Cli({"decrypt", "--blob-base64", blob_b64, "--context", "table=orders"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, payload);  // raw bytes, no newline

  r = Cli({"decrypt", "--blob-base64", blob_b64, "--context", "table=orders", "--base64"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, absl::Base64Escape(payload) + "\n");

  r = Cli({"decrypt", "--blob-base64", blob_b64, "--context", "table=other"});
  EXPECT_EQ(r.code, kExitInvalidArgument);
  EXPECT_EQ(r.err, "clavisctl: the blob does not decrypt\n");
  EXPECT_THAT(r.out, IsEmpty());
}

TEST_F(CommandsTest, DecryptReadsBlobFilesAndStdin) {
  const std::string blob = "\x01hello";
  const std::string dir = ::testing::TempDir();
  const std::string text_file = dir + "/clavisctl_blob.b64";
  const std::string raw_file = dir + "/clavisctl_blob.bin";
  std::ofstream(text_file) << absl::Base64Escape(blob) << "\n";
  std::ofstream(raw_file, std::ios::binary) << blob;

  for (const std::string& file : {text_file, raw_file}) {
    const Result r = Cli({"decrypt", "--blob-file", file, "--context", "table=orders"});
    EXPECT_EQ(r.code, 0) << file << ": " << r.err;
    EXPECT_EQ(r.out, "hello") << file;
  }
  const Result r =
      Cli({"decrypt", "--blob-file", "-", "--context", "table=orders"}, absl::Base64Escape(blob));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello");
  std::remove(text_file.c_str());
  std::remove(raw_file.c_str());
}

// ---- access control: key create options, policy, approval, whoami ----

TEST_F(CommandsTest, KeyCreateSendsAdministratorsUsersAndQuorum) {
  const Result r = Cli({"key", "create", "tenants/acme/keys/crm", "--admin",
                        "tenants/acme/groups/key-admins", "--admin", "tenants/acme/principals/ops2",
                        "--user", "tenants/acme/principals/billing-app", "--approvals", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto request = admin_.Last<clavis::v1::CreateKeyRequest>();
  EXPECT_THAT(request.key_administrators(),
              ElementsAre("tenants/acme/groups/key-admins", "tenants/acme/principals/ops2"));
  EXPECT_THAT(request.key_users(), ElementsAre("tenants/acme/principals/billing-app"));
  EXPECT_EQ(request.approvals_required(), 2u);
  EXPECT_THAT(request.policy(), IsEmpty());
}

TEST_F(CommandsTest, KeyCreateDefaultsLeaveThePolicyToTheServer) {
  const Result r = Cli({"key", "create", "tenants/acme/keys/crm"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto request = admin_.Last<clavis::v1::CreateKeyRequest>();
  EXPECT_THAT(request.key_administrators(), IsEmpty()) << "the server defaults to the caller";
  EXPECT_THAT(request.key_users(), IsEmpty());
  EXPECT_THAT(request.policy(), IsEmpty());
  EXPECT_EQ(request.approvals_required(), 0u);
}

TEST_F(CommandsTest, KeyCreateSendsAPolicyFileFromAFileOrStdin) {
  const std::string file = TempFile("create_policy.json", kPolicy);
  Result r = Cli({"key", "create", "tenants/acme/keys/crm", "--policy-file", file});
  ASSERT_EQ(r.code, 0) << r.err;
  auto request = admin_.Last<clavis::v1::CreateKeyRequest>();
  EXPECT_EQ(request.policy(), kPolicy);
  EXPECT_THAT(request.key_administrators(), IsEmpty());

  r = Cli({"key", "create", "tenants/acme/keys/hr", "--policy-file", "-"}, kPolicy);
  ASSERT_EQ(r.code, 0) << r.err;
  request = admin_.Last<clavis::v1::CreateKeyRequest>();
  EXPECT_EQ(request.key_id(), "hr");
  EXPECT_EQ(request.policy(), kPolicy);
}

TEST_F(CommandsTest, KeyCreateAccessUsageErrors) {
  const std::string file = TempFile("create_policy2.json", kPolicy);
  const std::string empty = TempFile("create_empty.json", " \n");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--policy-file", file, "--admin", "tenants/acme/principals/a"},
           {"--user", "tenants/acme/principals/a", "--policy-file", file},
           {"--approvals", "11"},
           {"--approvals", "-1"},
           {"--policy-file", "/nonexistent/clavisctl-policy.json"},
           {"--policy-file", empty},
       }) {
    std::vector<std::string> argv = {"key", "create", "tenants/acme/keys/usage"};
    argv.insert(argv.end(), args.begin(), args.end());
    const Result r = Cli(argv);
    EXPECT_EQ(r.code, kExitUsage) << args[0] << " " << args[1] << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("clavisctl: ")) << args[0];
    EXPECT_THAT(r.out, IsEmpty());
  }
  EXPECT_FALSE(admin_.Saw<clavis::v1::CreateKeyRequest>()) << "nothing reached the server";
  const Result r = Cli({"key", "create", "tenants/acme/keys/usage", "--policy-file", file,
                        "--admin", "tenants/acme/principals/a"});
  EXPECT_THAT(r.err, HasSubstr("excludes"));
}

TEST_F(CommandsTest, KeyGetShowsTheApprovalsQuorumOnlyWhenSet) {
  Result r = Cli({"key", "get", kGuarded});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("approvals required  2\n"));
  r = Cli({"key", "get", kMain});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("approvals")));
  r = Cli({"key", "get", kGuarded, "--json"});
  EXPECT_THAT(r.out, HasSubstr("\"approvalsRequired\": 2"));
}

TEST_F(CommandsTest, PolicyGetPrintsTheIndentedDocumentAndTheQuorum) {
  Result r = Cli({"policy", "get", kGuarded});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, R"({
  "version": "2026-11-01",
  "statements": [
    {
      "sid": "key-users",
      "effect": "Allow",
      "principals": [
        "tenants/acme/principals/app"
      ],
      "actions": [
        "Decrypt"
      ],
      "conditions": {}
    }
  ]
}
)");
  EXPECT_THAT(r.err, HasSubstr("approvals required: 2"));

  r = Cli({"policy", "get", kGuarded, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_THAT(r.out, HasSubstr("\"approvalsRequired\": 2"));
  EXPECT_THAT(r.out, HasSubstr("\"key\": \"tenants/acme/keys/guarded\""));
  EXPECT_THAT(r.err, IsEmpty());

  r = Cli({"policy", "get", kMain});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("has no policy"));
  EXPECT_THAT(r.err, HasSubstr("approvals required: none"));

  r = Cli({"policy", "get", "tenants/acme/keys/nope"});
  EXPECT_EQ(r.code, kExitNotFound);
}

TEST_F(CommandsTest, PolicySetSendsTheFileAndTheQuorumOnlyWhenGiven) {
  const std::string file = TempFile("set_policy.json", kPolicy);
  Result r = Cli({"policy", "set", kGuarded, "--file", file});
  ASSERT_EQ(r.code, 0) << r.err;
  auto request = access_.Last<clavis::v1::SetKeyPolicyRequest>();
  EXPECT_EQ(request.key(), kGuarded);
  EXPECT_EQ(request.policy(), kPolicy);
  EXPECT_FALSE(request.has_approvals_required()) << "unset keeps the key's quorum";
  EXPECT_EQ(r.out,
            "set the policy of tenants/acme/keys/guarded; approvals required: 2 "
            "(tenants/acme/keys/guarded: destructive and access-widening changes need "
            "this many approvers)\n");

  r = Cli({"policy", "set", kGuarded, "--file", "-", "--approvals", "0"}, kPolicy);
  ASSERT_EQ(r.code, 0) << r.err;
  request = access_.Last<clavis::v1::SetKeyPolicyRequest>();
  EXPECT_EQ(request.policy(), kPolicy);
  ASSERT_TRUE(request.has_approvals_required());
  EXPECT_EQ(request.approvals_required(), 0u);

  r = Cli({"policy", "set", kGuarded, "--file", file, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"approvalsRequired\": 2"));
}

TEST_F(CommandsTest, PolicySetUsageErrors) {
  const std::string empty = TempFile("set_empty.json", "");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"policy", "set", kGuarded},  // --file missing
           {"policy", "set", kGuarded, "--file", empty},
           {"policy", "set", kGuarded, "--file", "/nonexistent/clavisctl-policy.json"},
           {"policy", "set", kGuarded, "--file", "-", "--approvals", "11"},
       }) {
    const Result r = Cli(args);
    EXPECT_EQ(r.code, kExitUsage) << args.back() << "\n" << r.err;
  }
  EXPECT_FALSE(access_.Saw<clavis::v1::SetKeyPolicyRequest>());
}

TEST_F(CommandsTest, PolicySetNeedingApprovalNamesTheRequest) {
  const Result r = Cli({"policy", "set", kGuarded, "--file", "-"}, R"({"widen": true})");
  EXPECT_EQ(r.code, kExitFailedPrecondition);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("clavisctl: approval required: tenants/acme/keys/guarded needs 2"));
  EXPECT_THAT(r.err, HasSubstr("clavisctl: approval request tenants/acme/approvals/ar-7: needs 2 "
                               "approvals; run `clavisctl approval approve "
                               "tenants/acme/approvals/ar-7` as another approver"));
}

TEST_F(CommandsTest, ScheduleDestroyNeedingApprovalNamesTheRequest) {
  const Result r = Cli({"key", "schedule-destroy", kGuarded});
  EXPECT_EQ(r.code, kExitFailedPrecondition);
  EXPECT_THAT(r.err, HasSubstr("approval request tenants/acme/approvals/ar-7: needs 2 approvals"));
  EXPECT_THAT(r.err, HasSubstr("clavisctl approval approve tenants/acme/approvals/ar-7"));

  // Other FAILED_PRECONDITIONs get no such hint.
  const Result other = Cli({"key", "disable", kMain});
  EXPECT_EQ(other.code, kExitFailedPrecondition);
  EXPECT_EQ(other.err, "clavisctl: key is PENDING_DESTRUCTION\n");
}

TEST_F(CommandsTest, PolicySimulateSendsTheQuestionAndExitsZeroForAllow) {
  const std::string draft = TempFile("draft.json", kPolicy);
  const Result r = Cli({"policy",
                        "simulate",
                        kGuarded,
                        "--principal",
                        "tenants/acme/principals/app",
                        "--group",
                        "tenants/acme/groups/a",
                        "--group",
                        "tenants/acme/groups/b",
                        "--action",
                        "Decrypt",
                        "--segment",
                        "acme/billing/1",
                        "--resource",
                        "tenants/acme/keys/guarded/segments/x",
                        "--context",
                        "table=invoices",
                        "--context",
                        "region=eu",
                        "--time",
                        "2026-12-01T00:00:00Z",
                        "--draft-file",
                        draft});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto request = access_.Last<clavis::v1::SimulatePolicyRequest>();
  EXPECT_EQ(request.key(), kGuarded);
  EXPECT_EQ(request.principal(), "tenants/acme/principals/app");
  EXPECT_THAT(request.groups(), ElementsAre("tenants/acme/groups/a", "tenants/acme/groups/b"));
  EXPECT_EQ(request.action(), "Decrypt");
  EXPECT_EQ(request.segment(), "acme/billing/1");
  EXPECT_EQ(request.resource(), "tenants/acme/keys/guarded/segments/x");
  EXPECT_THAT(request.encryption_context(),
              UnorderedElementsAre(Pair("table", "invoices"), Pair("region", "eu")));
  EXPECT_EQ(request.time().seconds(), 1'796'083'200);
  EXPECT_EQ(request.draft_policy(), kPolicy);
  EXPECT_EQ(r.out,
            "ALLOW\n"
            "reason     allowed by statement 0 (sid \"key-users\")\n"
            "statement  0 (sid \"key-users\")\n");
}

TEST_F(CommandsTest, PolicySimulateDenyIsAnAnswerNotAFailure) {
  Result r = Cli({"policy", "simulate", kGuarded, "--principal", "tenants/acme/principals/app",
                  "--action", "Rotate"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "DENY\n"
            "reason     denied: no statement allows Rotate\n"
            "statement  none (default deny)\n");
  const auto request = access_.Last<clavis::v1::SimulatePolicyRequest>();
  EXPECT_FALSE(request.has_time()) << "default: the server's now";
  EXPECT_THAT(request.draft_policy(), IsEmpty());
  EXPECT_THAT(request.resource(), IsEmpty());

  r = Cli({"--json", "policy", "simulate", kGuarded, "--principal", "tenants/acme/principals/app",
           "--action", "Rotate"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"allowed\": false"));
  EXPECT_THAT(r.out, HasSubstr("\"statementIndex\": -1"));
}

TEST_F(CommandsTest, PolicySimulateUsageErrors) {
  const std::string p = "tenants/acme/principals/app";
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--principal", p},       // --action missing
           {"--action", "Decrypt"},  // --principal missing
           {"--principal", p, "--action", "Decrypt", "--context", "novalue"},
           {"--principal", p, "--action", "Decrypt", "--context", "k=1", "--context", "k=2"},
           {"--principal", p, "--action", "Decrypt", "--time", "yesterday"},
           {"--principal", p, "--action", "Decrypt", "--draft-file", "/nonexistent/draft.json"},
       }) {
    std::vector<std::string> argv = {"policy", "simulate", kGuarded};
    argv.insert(argv.end(), args.begin(), args.end());
    const Result r = Cli(argv);
    EXPECT_EQ(r.code, kExitUsage) << args.back() << "\n" << r.err;
    EXPECT_THAT(r.out, IsEmpty());
  }
  const Result r = Cli({"policy", "simulate", kGuarded, "--principal", p});
  EXPECT_THAT(r.err, HasSubstr("--action is required"));
  EXPECT_FALSE(access_.Saw<clavis::v1::SimulatePolicyRequest>());
}

TEST_F(CommandsTest, ApprovalListShowsPendingRequestsAndAllWithAll) {
  Result r = Cli({"approval", "list", kGuarded});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(access_.Last<clavis::v1::ListApprovalRequestsRequest>().include_finished());
  EXPECT_EQ(r.out,
            "NAME                         ACTION               RESOURCE                   "
            "REQUESTER                      APPROVALS  STATE    EXPIRES\n"
            "tenants/acme/approvals/ar-7  ScheduleDestruction  tenants/acme/keys/guarded  "
            "tenants/acme/principals/admin  1/2        PENDING  2026-12-02T00:00:00Z\n");

  r = Cli({"approval", "list", kGuarded, "--all"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(access_.Last<clavis::v1::ListApprovalRequestsRequest>().include_finished());
  EXPECT_THAT(r.out, HasSubstr("2/2        EXECUTED"));

  r = Cli({"approval", "list", kGuarded, "--all", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_EQ(r.out.find("\"requests\""), r.out.rfind("\"requests\""));
  EXPECT_THAT(r.out, HasSubstr("\"state\": \"APPROVAL_EXECUTED\""));

  r = Cli({"approval", "list", kMain});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("no pending approval requests for tenants/acme/keys/main"));
}

TEST_F(CommandsTest, ApprovalGetShowsTheRequest) {
  Result r = Cli({"approval", "get", kApprovalName});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("name       tenants/acme/approvals/ar-7\n"));
  EXPECT_THAT(r.out, HasSubstr("summary    schedule destruction of tenants/acme/keys/guarded\n"));
  EXPECT_THAT(r.out, HasSubstr("approvals  1/2\n"));
  EXPECT_THAT(r.out, HasSubstr("approvers  tenants/acme/principals/ops0\n"));
  EXPECT_THAT(r.out, HasSubstr("state      PENDING\n"));
  EXPECT_THAT(r.out, HasSubstr("expires    2026-12-02T00:00:00Z\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("result")));

  r = Cli({"approval", "get", kApprovalName, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"approvalsRequired\": 2"));

  r = Cli({"approval", "get", "tenants/acme/approvals/ar-0"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.err, "clavisctl: no such approval request\n");
}

TEST_F(CommandsTest, ApprovalApproveReportsProgressAndTheOutcome) {
  Result r = Cli({"approval", "approve", "tenants/acme/approvals/ar-pending"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(access_.Last<clavis::v1::ApproveRequestRequest>().name(),
            "tenants/acme/approvals/ar-pending");
  EXPECT_THAT(r.out, HasSubstr("state      PENDING"));
  EXPECT_THAT(r.err, HasSubstr("1 more approval needed before the ScheduleDestruction runs"));

  r = Cli({"approval", "approve", "tenants/acme/approvals/ar-final"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("state      EXECUTED"));
  EXPECT_THAT(r.out, HasSubstr("result     OK\n"));
  EXPECT_THAT(r.err, HasSubstr("the ScheduleDestruction ran"));

  // The approval counted, but the released action failed: its exit code.
  r = Cli({"approval", "approve", "tenants/acme/approvals/ar-fails"});
  EXPECT_EQ(r.code, kExitFailedPrecondition);
  EXPECT_THAT(r.out, HasSubstr("result     FAILED_PRECONDITION: key is DESTROYED"));
  EXPECT_THAT(r.err, HasSubstr("the ScheduleDestruction ran but failed: key is DESTROYED"));

  r = Cli({"approval", "approve", "tenants/acme/approvals/ar-own", "--json"});
  EXPECT_EQ(r.code, kExitFailedPrecondition);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("cannot approve their own request"));
}

TEST_F(CommandsTest, WhoAmI) {
  Result r = Cli({"whoami"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "principal       tenants/acme/principals/admin\n"
            "groups          tenants/acme/groups/ops, tenants/acme/groups/oncall\n"
            "method          mtls\n"
            "peer            ipv4:127.0.0.1:50000\n"
            "server version  9.8.7\n");
  r = Cli({"whoami", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"principal\": \"tenants/acme/principals/admin\""));
  EXPECT_THAT(r.out, HasSubstr("\"method\": \"mtls\""));
  EXPECT_THAT(r.out, HasSubstr("\"serverVersion\": \"9.8.7\""));
}

TEST_F(CommandsTest, ApprovalDenySendsTheReasonAndShowsWhoDenied) {
  Result r = Cli({"approval", "deny", kApprovalName, "--reason", "change freeze"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto sent = access_.Last<clavis::v1::DenyRequestRequest>();
  EXPECT_EQ(sent.name(), kApprovalName);
  EXPECT_EQ(sent.reason(), "change freeze");
  // One aligned table: the request, then who denied it and why.
  EXPECT_THAT(r.out, HasSubstr("state      DENIED\n"));
  EXPECT_THAT(r.out, HasSubstr("denied by  tenants/acme/principals/ops1\n"
                               "reason     change freeze\n"
                               "denied     2026-12-01T01:00:00Z\n"));
  EXPECT_EQ(r.err, "denied; the ScheduleDestruction will not run\n");

  r = Cli({"approval", "deny", kApprovalName});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(access_.Last<clavis::v1::DenyRequestRequest>().reason(), "") << "no reason: none sent";
  EXPECT_THAT(r.out, HasSubstr("reason     -\n"));

  r = Cli({"approval", "deny", kApprovalName, "--reason", "freeze", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"state\": \"APPROVAL_DENIED\""));
  EXPECT_THAT(r.out, HasSubstr("\"deniedBy\": \"tenants/acme/principals/ops1\""));
  EXPECT_THAT(r.out, HasSubstr("\"denyReason\": \"freeze\""));
  EXPECT_THAT(r.err, IsEmpty());

  r = Cli({"approval", "deny", "tenants/acme/approvals/ar-done"});
  EXPECT_EQ(r.code, kExitFailedPrecondition);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("is EXECUTED (its action already ran)"));

  r = Cli({"approval", "deny"});
  EXPECT_EQ(r.code, kExitUsage);
}

TEST_F(CommandsTest, PolicyValidateSaysValidAndWhetherSettingItNeedsApproval) {
  const std::string file = TempFile("validate_policy.json", kPolicy);
  Result r = Cli({"policy", "validate", kGuarded, "--policy-file", file});
  ASSERT_EQ(r.code, 0) << r.err;
  auto sent = access_.Last<clavis::v1::SetKeyPolicyRequest>();
  EXPECT_EQ(sent.key(), kGuarded);
  EXPECT_EQ(sent.policy(), kPolicy);
  EXPECT_FALSE(sent.has_approvals_required());
  EXPECT_EQ(r.out,
            "valid: a policy for tenants/acme/keys/guarded\n"
            "setting it needs no approval: `policy set` would apply it at once\n");
  EXPECT_EQ(access_.set_calls.load(), 0) << "validating never calls SetKeyPolicy";

  r = Cli({"policy", "validate", kGuarded, "--file", "-", "--approvals", "0"},
          R"({"widen": true})");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(access_.Last<clavis::v1::SetKeyPolicyRequest>().approvals_required(), 0u);
  EXPECT_THAT(r.out, HasSubstr("setting it needs approval: it widens access and lowers "
                               "approvals_required"));

  r = Cli({"policy", "validate", kGuarded, "--file", file, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"policy\": \"{\\\"version\\\""));
  EXPECT_THAT(r.out, HasSubstr("\"approvalsRequired\": 2"));

  r = Cli({"policy", "validate", kGuarded, "--file", "-"},
          R"({"statements": [{"actions": ["Decrpyt"]}]})");
  EXPECT_EQ(r.code, kExitInvalidArgument);
  EXPECT_THAT(r.out, IsEmpty());
  EXPECT_THAT(r.err, HasSubstr("statements[0].actions[0]: unknown action \"Decrpyt\""));

  const std::string empty = TempFile("validate_empty.json", " \n");
  EXPECT_EQ(Cli({"policy", "validate", kGuarded, "--file", empty}).code, kExitUsage);
  EXPECT_EQ(Cli({"policy", "validate", kGuarded}).code, kExitUsage);
}

}  // namespace
}  // namespace clavis::clavisctl
