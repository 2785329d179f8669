// Tests of the whole CLI through Run(): parsing, help, usage errors and the
// exit code when clavisd is not there. Nothing here needs a running clavisd;
// the end-to-end tests against one live elsewhere.
#include "tools/clavisctl/run.h"
#include "tools/clavisctl/cli_testing.h"

#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/clavisctl/exit_codes.h"

namespace clavis::clavisctl {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

using Result = cli_testing::CliResult;

// Port 1 on loopback: nothing listens there, so an RPC fails at once with
// UNAVAILABLE (connection refused).
constexpr char kDeadEndpoint[] = "127.0.0.1:1";

Result RunCli(std::vector<std::string> args, const std::string& stdin_text = "",
              const char* env_endpoint = kDeadEndpoint) {
  return cli_testing::RunCliInProcess(std::move(args), env_endpoint, stdin_text);
}

TEST(RunTest, HelpExitsZeroAndListsNouns) {
  const Result r = RunCli({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("key"));
  EXPECT_THAT(r.out, HasSubstr("segment"));
  EXPECT_THAT(r.out, HasSubstr("Exit codes"));
}

TEST(RunTest, EveryCommandHasHelpWithAnExample) {
  for (std::vector<std::string> words : std::vector<std::vector<std::string>>{
           {"key"},
           {"key", "create"},
           {"key", "list"},
           {"key", "get"},
           {"key", "rotate"},
           {"key", "enable"},
           {"key", "disable"},
           {"key", "schedule-destroy"},
           {"key", "cancel-destroy"},
           {"key", "destroy"},
           {"key", "set-rotation"},
           {"key", "rewrap"},
           {"key", "version"},
           {"key", "version", "enable"},
           {"key", "version", "disable"},
           {"key", "version", "schedule-destroy"},
           {"key", "version", "cancel-destroy"},
           {"key", "version", "destroy"},
           {"segment"},
           {"segment", "create"},
           {"segment", "get"},
           {"segment", "list"},
           {"segment", "rotate"},
           {"segment", "revoke"},
           {"segment", "enable"},
           {"segment", "schedule-destroy"},
           {"segment", "cancel-destroy"},
           {"segment", "destroy"},
           {"datakey"},
           {"encrypt"},
           {"decrypt"},
           {"policy"},
           {"policy", "get"},
           {"policy", "set"},
           {"policy", "validate"},
           {"policy", "simulate"},
           {"approval"},
           {"approval", "list"},
           {"approval", "get"},
           {"approval", "approve"},
           {"approval", "deny"},
           {"whoami"},
           {"audit"},
           {"audit", "verify"},
           {"audit", "tail"},
           {"audit", "query"},
           {"audit", "export"},
       }) {
    std::string joined;
    for (const std::string& w : words) joined += w + " ";
    words.push_back("--help");
    const Result r = RunCli(words);
    EXPECT_EQ(r.code, 0) << joined;
    EXPECT_THAT(r.out, HasSubstr("Example")) << joined;
    EXPECT_THAT(r.out, HasSubstr("clavisctl " + joined)) << joined;
  }
}

TEST(RunTest, VersionExitsZero) {
  const Result r = RunCli({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("clavisctl "));
}

TEST(RunTest, UsageErrorsExitTwo) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {},                                                     // no command
           {"key"},                                                // noun alone
           {"bogus"},                                              // unknown command
           {"key", "bogus"},                                       // unknown subcommand
           {"key", "get"},                                         // missing name
           {"key", "get", "a", "b"},                               // extra argument
           {"key", "get", "tenants/t/keys/k", "--bogus"},          // unknown option
           {"--timeout", "0s", "key", "get", "tenants/t/keys/k"},  // zero timeout
           {"--timeout", "5x", "key", "get", "tenants/t/keys/k"},  // bad duration
           {"--timeout", "2d", "key", "get", "tenants/t/keys/k"},  // above 1d
           {"key", "create", "tenants/t/keys/k", "--rotation-period", "-1d"},
           {"key", "create", "tenants/t/keys/k", "--label", "novalue"},
           {"key", "create", "tenants/t/keys/k", "--label", "a=1", "--label", "a=2"},
           {"key", "create", "tenants/t"},               // not a key name
           {"key", "set-rotation", "tenants/t/keys/k"},  // --period missing
           {"key", "set-rotation", "tenants/t/keys/k", "--period", "90d", "--next", "tomorrow"},
           {"key", "list", "tenants/t", "--page-size", "0"},
           {"datakey", "tenants/t/keys/k"},  // --segment missing
           {"datakey", "tenants/t/keys/k", "--segment", "s", "--context", "=v"},
           {"datakey", "tenants/t/keys/k", "--segment", "s", "--context", "k"},
           {"datakey", "tenants/t/keys/k", "--segment", "s", "--context", "k=1", "--context",
            "k=2"},
           {"decrypt"},                                               // no blob
           {"decrypt", "--blob-base64", "AQEE", "--blob-file", "f"},  // both
           {"decrypt", "--blob-base64", "not base64!"},
           {"decrypt", "--blob-file", "/nonexistent/clavisctl-test"},
           {"encrypt", "tenants/t/keys/k", "--segment", "s", "--plaintext-file",
            "/nonexistent/clavisctl-test"},
           {"key", "create", "tenants/t/keys/k", "--policy-file", "p.json", "--admin",
            "tenants/t/principals/a"},
           {"key", "create", "tenants/t/keys/k", "--approvals", "11"},
           {"policy"},
           {"policy", "get"},
           {"policy", "set", "tenants/t/keys/k"},  // --file missing
           {"policy", "simulate", "tenants/t/keys/k", "--principal", "tenants/t/principals/a"},
           {"policy", "simulate", "tenants/t/keys/k", "--action", "Decrypt"},
           {"policy", "validate", "tenants/t/keys/k"},  // --file missing
           {"policy", "validate", "tenants/t/keys/k", "--file", "-", "--approvals", "11"},
           {"approval", "list"},
           {"approval", "approve"},
           {"approval", "deny"},
           {"approval", "deny", "a", "b"},
           {"approval", "deny", "a", "--reason"},  // the reason's value missing
           {"approval", "get", "a", "b"},
           {"whoami", "extra"},
           {"audit", "verify", "--public-key", "AAAA"},  // --dir missing
           {"audit", "tail", "--dir", "d", "-n", "0"},
           {"audit", "query", "--dir", "d", "--until", "soon"},
           // BYOK and escrow.
           {"key", "create", "tenants/t/keys/k", "--origin", "imported"},
           {"key", "import-params", "tenants/t/keys/k", "--algorithm", "RSA_PKCS1"},
           {"key", "import-params", "tenants/t/keys/k", "--wrapping-key-spec", "RSA_2048"},
           {"key", "import-params", "tenants/t/keys/k", "--out-dir", "/nonexistent/clavisctl"},
           {"key", "import", "tenants/t/keys/k", "--wrapped-file", "w"},       // token file missing
           {"key", "import", "tenants/t/keys/k", "--import-token-file", "t"},  // wrapped missing
           {"key", "import", "tenants/t/keys/k", "--import-token-file", "t", "--wrapped-file", "w",
            "--new-version", "--version", "2"},
           {"key", "import", "tenants/t/keys/k", "--import-token-file",
            "/nonexistent/clavisctl-test", "--wrapped-file", "w"},
           {"key", "import", "tenants/t/keys/k", "--import-token-file", "t", "--wrapped-file", "w",
            "--valid-to", "next year"},
           {"escrow", "export", "tenants/t/keys/k"},  // --out missing
           {"escrow"},
       }) {
    std::string joined;
    for (const std::string& a : args) joined += a + " ";
    const Result r = RunCli(args);
    EXPECT_EQ(r.code, kExitUsage) << joined << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("clavisctl: ")) << joined;
    EXPECT_THAT(r.out, IsEmpty()) << joined;
  }
}

// Counts and sizes say what they accept, not CLI::PositiveNumber's
// "Value 0 not in range 0.000000 to 1.797...e+308".
TEST(RunTest, CountOptionsExplainTheirRange) {
  for (const auto& [args, option] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"key", "list", "tenants/t", "--page-size"}, "--page-size"},
           {{"segment", "list", "tenants/t/keys/k", "--page-size"}, "--page-size"},
           {{"key", "rewrap", "tenants/t/keys/k", "--batch-size"}, "--batch-size"},
           {{"key", "import", "tenants/t/keys/k", "--import-token-file", "t", "--wrapped-file", "w",
             "--version"},
            "--version"},
           {{"audit", "tail", "--dir", "d", "-n"}, "--lines"},
           {{"audit", "query", "--dir", "d", "--limit"}, "--limit"},
       }) {
    for (const char* value : {"0", "-3", "1.5", "lots", "99999999999"}) {
      std::vector<std::string> with_value = args;
      with_value.push_back(value);
      const Result r = RunCli(with_value);
      EXPECT_EQ(r.code, kExitUsage) << option << " " << value << "\n" << r.err;
      EXPECT_THAT(r.err, HasSubstr(option)) << value;
      EXPECT_THAT(r.err, HasSubstr("must be a whole number of at least 1, not \"" +
                                   std::string(value) + "\""))
          << option << " " << value;
      EXPECT_THAT(r.err, Not(HasSubstr("not in range"))) << option;
      EXPECT_THAT(r.err, Not(HasSubstr("1.797"))) << option;
    }
  }
  // 1 is accepted: the command goes on to call the (dead) server.
  EXPECT_EQ(RunCli({"key", "list", "tenants/t", "--page-size", "1"}).code, kExitUnavailable);
  EXPECT_EQ(RunCli({"segment", "list", "tenants/t/keys/k", "--page-size", "1"}).code,
            kExitUnavailable);
  EXPECT_EQ(RunCli({"key", "rewrap", "tenants/t/keys/k", "--batch-size", "1"}).code,
            kExitUnavailable);
}

TEST(RunTest, UnreachableServerExitsSevenWithAHint) {
  const Result r = RunCli({"key", "get", "tenants/t/keys/k"});
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is clavisd running on 127.0.0.1:1?"));
  EXPECT_THAT(r.out, IsEmpty());
}

TEST(RunTest, EndpointFlagOverridesTheEnvironment) {
  const Result r = RunCli({"key", "get", "tenants/t/keys/k", "--endpoint", "127.0.0.1:2"});
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_THAT(r.err, HasSubstr("127.0.0.1:2"));
}

TEST(RunTest, GlobalOptionsWorkAfterTheCommand) {
  const Result r = RunCli({"segment", "list", "tenants/t/keys/k", "--json", "--timeout", "3s"});
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
}

TEST(RunTest, DataPlaneUnavailableToo) {
  const Result r =
      RunCli({"encrypt", "tenants/t/keys/k", "--segment", "s", "--context", "a=b"}, "secret");
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("secret")));
}

TEST(RunTest, WarnsAboutPlaintextToANonLoopbackHost) {
  // 192.0.2.0/24 is TEST-NET-1: never routed, so this fails without waiting
  // long (the short timeout bounds it either way).
  const Result r =
      RunCli({"--endpoint", "192.0.2.1:7370", "--timeout", "1s", "key", "get", "tenants/t/keys/k"});
  EXPECT_EQ(r.code, kExitUnavailable) << r.err;
  EXPECT_THAT(r.err, HasSubstr("not a loopback address"));
}

}  // namespace
}  // namespace clavis::clavisctl
