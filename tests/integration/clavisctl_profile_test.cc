// clavisctl against a real clavisd with nothing on the command line but the
// command: the connection comes from a profile file (docs/clavisctl.md,
// "Profiles"), and `clavisctl status` reports what it found. Also: status
// when nothing listens (exit 7), and the `certs bootstrap` alias.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/run_shell.h"

namespace clavis::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// A loopback port nothing listens on: bound by the kernel's choice, then
// released.
int UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct object;
  const auto parsed = google::protobuf::util::JsonStringToMessage(json, &object);
  EXPECT_TRUE(parsed.ok()) << json;
  return object;
}

std::string Field(const google::protobuf::Struct& object, const std::string& name) {
  auto it = object.fields().find(name);
  return it == object.fields().end() ? "<missing>" : it->second.string_value();
}

class ClavisctlProfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(clavisd_.Start().ok());
    // The profile file where clavisctl looks by default, beside copies of
    // the credential files, which it names by relative paths.
    config_dir_ = dir_.path() + "/config/clavis";
    std::filesystem::create_directories(config_dir_);
    const std::string prefix = clavisd_.client_cert_prefix(PrincipalName("acme"));
    Copy(clavisd_.ca_cert_file(), "ca.crt");
    Copy(prefix + ".crt", "admin.crt");
    Copy(prefix + ".key", "admin.key");
    std::ofstream(config_dir_ + "/app.token")
        << clavisd_.IssueToken(PrincipalName("acme", "app")) << "\n";
    // The certificate's server name is localhost.
    WriteProfiles(absl::StrCat(R"({
      "defaultProfile": "admin",
      "profiles": {
        "admin": {"endpoint": "localhost:)",
                               clavisd_.port(), R"(", "caCert": "ca.crt",
                  "cert": "admin.crt", "key": "admin.key", "timeout": "20s"},
        "app": {"endpoint": "localhost:)",
                               clavisd_.port(), R"(", "caCert": "ca.crt",
                      "tokenFile": "app.token"}
      }
    })"));
  }

  void Copy(const std::string& from, const std::string& name) {
    const std::string to = config_dir_ + "/" + name;
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
    ::chmod(to.c_str(), 0600);
  }

  void WriteProfiles(const std::string& json) {
    const std::string file = config_dir_ + "/clavisctl.json";
    std::ofstream(file, std::ios::trunc) << json;
    ::chmod(file.c_str(), 0600);
  }

  // clavisctl with `args` only: no connection option, no connection variable
  // (cleared), the profile file found through XDG_CONFIG_HOME.
  CommandResult Run(const std::string& args) {
    return RunShell(absl::StrCat(
        "env -u CLAVIS_ENDPOINT -u CLAVIS_CA_CERT -u CLAVIS_CLIENT_CERT -u CLAVIS_CLIENT_KEY "
        "-u CLAVIS_TOKEN_FILE -u CLAVIS_PROFILE -u CLAVIS_PROFILE_FILE XDG_CONFIG_HOME=",
        dir_.path(), "/config HOME=", dir_.path(), " ", CLAVISCTL_BINARY, " ", args,
        " </dev/null 2>&1"));
  }

  TempDir dir_;
  ClavisdProcess clavisd_{ClavisdOptions(dir_.path() + "/data")};
  std::string config_dir_;
};

TEST_F(ClavisctlProfileTest, ConnectsUsingOnlyAProfile) {
  const CommandResult status = Run("status --json");
  ASSERT_EQ(status.exit_code, 0) << status.out;
  const google::protobuf::Struct report = ParseJson(status.out);
  EXPECT_EQ(Field(report, "endpoint"), absl::StrCat("localhost:", clavisd_.port()));
  EXPECT_EQ(Field(report, "transport"), "mTLS");
  EXPECT_EQ(Field(report, "profile"), "admin");
  EXPECT_TRUE(report.fields().at("reachable").bool_value());
  EXPECT_EQ(Field(report, "health"), "SERVING");
  EXPECT_GT(report.fields().at("latencyMs").number_value(), 0.0);
  EXPECT_EQ(Field(report, "principal"), PrincipalName("acme"));
  EXPECT_EQ(Field(report, "tenant"), "acme");
  EXPECT_EQ(Field(report, "method"), "mtls");
  EXPECT_EQ(Field(report, "error"), "");

  // Real commands too, still with nothing but the profile.
  const CommandResult created = Run("key create tenants/acme/keys/profiled --json");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  const CommandResult listed = Run("key list tenants/acme");
  ASSERT_EQ(listed.exit_code, 0) << listed.out;
  EXPECT_THAT(listed.out, HasSubstr("tenants/acme/keys/profiled"));
}

TEST_F(ClavisctlProfileTest, ANamedProfileWithAToken) {
  const CommandResult status = Run("--profile app status --json");
  ASSERT_EQ(status.exit_code, 0) << status.out;
  const google::protobuf::Struct report = ParseJson(status.out);
  EXPECT_EQ(Field(report, "transport"), "TLS+token");
  EXPECT_EQ(Field(report, "principal"), PrincipalName("acme", "app"));
  EXPECT_EQ(Field(report, "method"), "token");
  // The token is never printed.
  EXPECT_THAT(status.out, Not(HasSubstr("clavis-token.v1.")));

  const CommandResult human = Run("--profile app status");
  ASSERT_EQ(human.exit_code, 0) << human.out;
  EXPECT_THAT(human.out, AllOf(HasSubstr("health          SERVING"),
                               HasSubstr("principal       " + PrincipalName("acme", "app"))));
}

TEST_F(ClavisctlProfileTest, TheCommandLineStillWins) {
  // The profile points at the right server; --endpoint at an empty port.
  const int port = UnusedPort();
  ASSERT_NE(port, 0);
  const CommandResult status = Run(absl::StrCat("--endpoint localhost:", port, " status --json"));
  EXPECT_EQ(status.exit_code, 7) << status.out;
  EXPECT_THAT(status.out, HasSubstr(absl::StrCat("localhost:", port)));
}

TEST_F(ClavisctlProfileTest, StatusWithNothingListeningExitsSeven) {
  const int port = UnusedPort();
  ASSERT_NE(port, 0);
  const CommandResult status = Run(absl::StrCat("--endpoint localhost:", port, " status"));
  EXPECT_EQ(status.exit_code, 7) << status.out;
  EXPECT_THAT(status.out, AllOf(HasSubstr("reachable       no"),
                                HasSubstr(absl::StrCat("cannot reach clavisd at localhost:", port)),
                                HasSubstr("check the endpoint"), HasSubstr("--ca-cert")));
}

TEST_F(ClavisctlProfileTest, AProfileOthersCanWriteIsRefused) {
  ::chmod((config_dir_ + "/clavisctl.json").c_str(), 0666);
  const CommandResult status = Run("status");
  EXPECT_EQ(status.exit_code, 2) << status.out;
  EXPECT_THAT(status.out, HasSubstr("writable by others"));
}

TEST_F(ClavisctlProfileTest, CertsBootstrapIsPkiInitCa) {
  const std::string out = dir_.path() + "/newca";
  const CommandResult made = Run("certs bootstrap --out " + out + " --json");
  ASSERT_EQ(made.exit_code, 0) << made.out;
  EXPECT_TRUE(ParseJson(made.out).fields().at("isCa").bool_value());
  EXPECT_TRUE(std::filesystem::exists(out + "/ca.crt"));
  EXPECT_TRUE(std::filesystem::exists(out + "/ca.key"));
  // The alias reaches the same commands: issue a server certificate from it.
  const CommandResult issued = Run("certs issue-server --ca " + out + " --out " + out + "/server");
  EXPECT_EQ(issued.exit_code, 0) << issued.out;
  EXPECT_TRUE(std::filesystem::exists(out + "/server.crt"));
}

}  // namespace
}  // namespace clavis::testing
