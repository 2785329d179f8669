// The commands end to end through Run(), against fake KeyAdmin and
// KeyManagement services in this process (not clavisd): what each command
// sends, what it prints, paging, and exit codes for server errors.
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
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
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
constexpr int kKeyCount = 5;

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

class FakeAdmin final : public clavis::v1::KeyAdmin::Service {
 public:
  grpc::Status GetKey(grpc::ServerContext*, const clavis::v1::GetKeyRequest* request,
                      clavis::v1::Key* response) override {
    if (request->name() != kMain) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("key ", request->name(), " not found"));
    }
    *response = MainKey();
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

  grpc::Status ScheduleKeyDestruction(grpc::ServerContext*,
                                      const clavis::v1::ScheduleDestructionRequest* request,
                                      clavis::v1::Key* response) override {
    Record(*request);
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

  template <typename T>
  T Last() {
    std::lock_guard<std::mutex> lock(mu_);
    T message;
    EXPECT_TRUE(message.ParseFromString(last_[T::descriptor()->full_name()]));
    return message;
  }
  int list_calls() const { return list_calls_; }

 private:
  void Record(const google::protobuf::Message& request) {
    std::lock_guard<std::mutex> lock(mu_);
    last_[request.GetDescriptor()->full_name()] = request.SerializeAsString();
  }

  std::mutex mu_;
  std::map<std::string, std::string> last_;
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

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&admin_);
    builder.RegisterService(&data_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    endpoint_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override { server_->Shutdown(); }

  struct Result {
    int code;
    std::string out;
    std::string err;
  };

  Result Cli(std::vector<std::string> args, const std::string& stdin_text = "") {
    args.insert(args.begin(), "clavisctl");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    std::istringstream in(stdin_text);
    std::ostringstream out, err;
    Io io;
    io.in = &in;
    io.out = &out;
    io.err = &err;
    const int code =
        clavisctl::Run(static_cast<int>(argv.size()), argv.data(), io, endpoint_.c_str());
    return {code, out.str(), err.str()};
  }

  FakeAdmin admin_;
  FakeData data_;
  std::unique_ptr<grpc::Server> server_;
  std::string endpoint_;
};

TEST_F(CommandsTest, KeyGetPrintsFieldsAndVersions) {
  const Result r = Cli({"key", "get", kMain});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("name               tenants/acme/keys/main\n"));
  EXPECT_THAT(r.out, HasSubstr("1 (primary)  ENABLED  -        0011223344556677\n"));
  EXPECT_THAT(r.err, IsEmpty());
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

}  // namespace
}  // namespace clavis::clavisctl
