// `clavisctl status` through Run() against an in-process gRPC server with a
// fake AccessControl service and gRPC's default health service, and against
// a port where nothing listens. The integration test
// (tests/integration/clavisctl_profile_test.cc) runs it against clavisd.
#include "tools/clavisctl/status_command.h"
#include "tools/clavisctl/cli_testing.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/run.h"
#include "tools/clavisctl/status_report.pb.h"

namespace clavis::clavisctl {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class FakeAccess final : public clavis::v1::AccessControl::Service {
 public:
  grpc::Status WhoAmI(grpc::ServerContext*, const clavis::v1::WhoAmIRequest*,
                      clavis::v1::WhoAmIResponse* response) override {
    ++calls;
    if (!refuse.ok()) return refuse;
    response->set_principal("tenants/acme/principals/admin");
    response->add_groups("tenants/acme/groups/ops");
    response->add_groups("tenants/acme/groups/oncall");
    response->set_method("insecure-dev");
    response->set_peer("ipv4:127.0.0.1:50000");
    response->set_server_version(server_version);
    return grpc::Status::OK;
  }
  grpc::Status refuse = grpc::Status::OK;
  std::string server_version;  // "": a clavisd from before WhoAmI reported it
  int calls = 0;
};

using Result = cli_testing::CliResult;

Result RunCli(std::vector<std::string> args, const std::string& endpoint) {
  return cli_testing::RunCliInProcess(std::move(args), endpoint.c_str());
}

StatusReport ParseReport(const std::string& json) {
  StatusReport report;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &report);
  EXPECT_TRUE(parsed.ok()) << json;
  return report;
}

class StatusCommandTest : public ::testing::Test {
 protected:
  // A server with the fake AccessControl and, if `health`, gRPC's default
  // health service (what clavisd registers).
  void StartServer(bool health) {
    grpc::EnableDefaultHealthCheckService(health);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&access_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    endpoint_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    grpc::EnableDefaultHealthCheckService(false);
  }

  FakeAccess access_;
  std::unique_ptr<grpc::Server> server_;
  std::string endpoint_;
};

TEST_F(StatusCommandTest, HealthyServerJson) {
  StartServer(/*health=*/true);
  const Result r = RunCli({"status", "--json"}, endpoint_);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const StatusReport report = ParseReport(r.out);
  EXPECT_EQ(report.endpoint(), endpoint_);
  EXPECT_EQ(report.transport(), "plaintext");
  EXPECT_TRUE(report.reachable());
  EXPECT_EQ(report.health(), "SERVING");
  EXPECT_GT(report.latency_ms(), 0.0);
  EXPECT_EQ(report.principal(), "tenants/acme/principals/admin");
  EXPECT_EQ(report.tenant(), "acme");
  EXPECT_THAT(report.groups(),
              ElementsAre("tenants/acme/groups/ops", "tenants/acme/groups/oncall"));
  EXPECT_EQ(report.method(), "insecure-dev");
  EXPECT_EQ(report.client_version(), CLAVIS_VERSION);
  EXPECT_EQ(report.error(), "");
  EXPECT_EQ(access_.calls, 1);
  // The JSON names scripts rely on (docs/clavisctl.md).
  EXPECT_THAT(r.out, AllOf(HasSubstr("\"latencyMs\""), HasSubstr("\"serverVersion\""),
                           HasSubstr("\"reachable\": true")));
}

TEST_F(StatusCommandTest, HealthyServerTable) {
  StartServer(/*health=*/true);
  const Result r = RunCli({"status"}, endpoint_);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, AllOf(HasSubstr("endpoint        " + endpoint_),
                           HasSubstr("reachable       yes"), HasSubstr("health          SERVING"),
                           HasSubstr(" ms (WhoAmI)"), HasSubstr("tenant          acme"),
                           HasSubstr("groups          tenants/acme/groups/ops, "
                                     "tenants/acme/groups/oncall"),
                           HasSubstr("server version  unknown")));
  EXPECT_EQ(r.err, "");
}

TEST_F(StatusCommandTest, ShowsTheVersionClavisdReports) {
  access_.server_version = "1.2.3";
  StartServer(/*health=*/true);
  const Result json = RunCli({"status", "--json"}, endpoint_);
  ASSERT_EQ(json.code, kExitOk) << json.err;
  EXPECT_EQ(ParseReport(json.out).server_version(), "1.2.3");
  const Result table = RunCli({"status"}, endpoint_);
  ASSERT_EQ(table.code, kExitOk) << table.err;
  EXPECT_THAT(table.out, HasSubstr("server version  1.2.3\n"));
  EXPECT_THAT(table.out, Not(HasSubstr("unknown")));
}

TEST_F(StatusCommandTest, ServerWithoutTheHealthServiceIsStillOk) {
  StartServer(/*health=*/false);
  const Result r = RunCli({"status", "--json"}, endpoint_);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const StatusReport report = ParseReport(r.out);
  EXPECT_EQ(report.health(), "NOT_REGISTERED");
  EXPECT_EQ(report.principal(), "tenants/acme/principals/admin");
}

TEST_F(StatusCommandTest, NotServingExitsSeven) {
  StartServer(/*health=*/true);
  server_->GetHealthCheckService()->SetServingStatus(false);
  const Result r = RunCli({"status", "--json"}, endpoint_);
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_EQ(ParseReport(r.out).health(), "NOT_SERVING");
  EXPECT_THAT(r.err, HasSubstr("NOT_SERVING"));
}

TEST_F(StatusCommandTest, RefusedCredentialsExitWithWhoAmIsCode) {
  StartServer(/*health=*/true);
  access_.refuse = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no client certificate");
  const Result r = RunCli({"status", "--json"}, endpoint_);
  EXPECT_EQ(r.code, kExitPermissionDenied);
  const StatusReport report = ParseReport(r.out);
  EXPECT_TRUE(report.reachable());
  EXPECT_EQ(report.principal(), "");
  EXPECT_EQ(report.error(), "no client certificate");
  EXPECT_THAT(r.err, HasSubstr("no client certificate"));
}

TEST_F(StatusCommandTest, NothingListeningExitsSevenAndSaysWhatToCheck) {
  // Port 1 on loopback: connection refused at once.
  const Result r = RunCli({"status"}, "127.0.0.1:1");
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_THAT(r.out, AllOf(HasSubstr("reachable       no"), Not(HasSubstr("principal"))));
  EXPECT_THAT(r.err, AllOf(HasSubstr("cannot reach clavisd at 127.0.0.1:1 over plaintext"),
                           HasSubstr("--endpoint"), HasSubstr("--ca-cert")));

  const Result json = RunCli({"status", "--json"}, "127.0.0.1:1");
  EXPECT_EQ(json.code, kExitUnavailable);
  const StatusReport report = ParseReport(json.out);
  EXPECT_FALSE(report.reachable());
  EXPECT_NE(report.error(), "");
}

TEST(TenantOfPrincipalTest, TakesTheTenantOfAName) {
  EXPECT_EQ(TenantOfPrincipal("tenants/acme/principals/admin"), "acme");
  EXPECT_EQ(TenantOfPrincipal("tenants/acme"), "acme");
  EXPECT_EQ(TenantOfPrincipal("dev"), "");
  EXPECT_EQ(TenantOfPrincipal(""), "");
}

}  // namespace
}  // namespace clavis::clavisctl
