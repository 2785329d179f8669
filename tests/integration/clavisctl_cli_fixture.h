// Shared pieces of the clavisctl command tests (clavisctl_cli_*_test.cc): one
// real clavisd per test suite (mTLS, as in production), the clavisctl binary
// run as a subprocess with stdout and stderr captured apart, its --json
// output parsed with nlohmann/json, and matchers for the documented exit
// codes (docs/clavisctl.md "Exit codes").
//
// Tests of one suite share the clavisd, so each test uses key names of its
// own. Under ctest every test runs in its own process (and so gets a fresh
// clavisd); run the binary directly to share one.
#ifndef CLAVIS_TESTS_INTEGRATION_CLAVISCTL_CLI_FIXTURE_H_
#define CLAVIS_TESTS_INTEGRATION_CLAVISCTL_CLI_FIXTURE_H_

#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/run_shell.h"

namespace clavis::testing {

using Json = nlohmann::json;

// The documented exit codes (docs/clavisctl.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitGeneric = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotFound = 3;
inline constexpr int kExitFailedPrecondition = 4;
inline constexpr int kExitInvalidArgument = 5;
inline constexpr int kExitPermissionDenied = 6;
inline constexpr int kExitUnavailable = 7;
inline constexpr int kExitAlreadyExists = 8;

// What one clavisctl run printed, and its exit code.
struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  // stdout holds key material, plaintext or a token: never printed.
  bool secret = false;
};

inline std::ostream& operator<<(std::ostream& os, const CliResult& r) {
  os << "exit " << r.exit_code << "\n--- stderr:\n" << r.err << "--- stdout:\n";
  if (r.secret) return os << "(not shown: it holds secrets)\n";
  return os << r.out;
}

// Exit code 0.
inline ::testing::AssertionResult Succeeded(const CliResult& r) {
  if (r.exit_code == kExitOk) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected exit 0, got " << r;
}

// Exit code `code`, and a stderr with a "clavisctl: " error line that
// contains `phrase`: a message a person understands, not just a code.
inline ::testing::AssertionResult FailedWith(const CliResult& r, int code,
                                             const std::string& phrase) {
  if (r.exit_code != code) {
    return ::testing::AssertionFailure() << "expected exit " << code << ", got " << r;
  }
  // Progress lines (key rewrap) may come first.
  if (!absl::StartsWith(r.err, "clavisctl: ") && !absl::StrContains(r.err, "\nclavisctl: ")) {
    return ::testing::AssertionFailure() << "expected an error on stderr, got " << r;
  }
  if (!absl::StrContains(r.err, phrase)) {
    return ::testing::AssertionFailure()
           << "expected stderr to contain \"" << phrase << "\", got " << r;
  }
  return ::testing::AssertionSuccess();
}

// A usage error (exit 2) found before any call: the message names the
// problem and points at --help.
inline ::testing::AssertionResult UsageError(const CliResult& r, const std::string& phrase) {
  ::testing::AssertionResult failed = FailedWith(r, kExitUsage, phrase);
  if (!failed) return failed;
  if (!absl::StrContains(r.err, "--help")) {
    return ::testing::AssertionFailure() << "expected a pointer to --help, got " << r;
  }
  return ::testing::AssertionSuccess();
}

// stdout as one JSON document; a test failure (and null) if it is not one.
inline Json ParseJson(const CliResult& r) {
  Json parsed = Json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    ADD_FAILURE() << "stdout is not one JSON document: " << r;
    return Json();
  }
  return parsed;
}

// stdout as JSON Lines (one object per line).
inline std::vector<Json> ParseJsonLines(const CliResult& r) {
  std::vector<Json> lines;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    Json parsed = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      ADD_FAILURE() << "not a JSON line: " << line;
      continue;
    }
    lines.push_back(std::move(parsed));
  }
  return lines;
}

// The value of `field` in a human field table ("state   ENABLED"), or
// "(missing)".
inline std::string TableField(const std::string& out, const std::string& field) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (!absl::ConsumePrefix(&line, field)) continue;
    // The field name is followed by at least two spaces (column padding).
    if (!absl::StartsWith(line, "  ")) continue;
    return std::string(absl::StripAsciiWhitespace(line));
  }
  return "(missing)";
}

// The lines of `out` that start with `prefix` (rows of a list table).
inline std::vector<std::string> LinesStartingWith(const std::string& out,
                                                  const std::string& prefix) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (absl::StartsWith(line, prefix)) lines.emplace_back(line);
  }
  return lines;
}

// The first approval request name ("tenants/T/approvals/ar-<hex>") in
// `text`, or "".
inline std::string ApprovalRequestIn(const std::string& text, const std::string& tenant) {
  const std::string prefix = absl::StrCat("tenants/", tenant, "/approvals/ar-");
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return "";
  size_t end = at + prefix.size();
  while (end < text.size() && absl::ascii_isxdigit(static_cast<unsigned char>(text[end]))) ++end;
  return text.substr(at, end - at);
}

inline void WriteTestFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

inline std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// One clavisd (mTLS) per test suite, and clavisctl run against it.
class ClavisctlCliTest : public ::testing::Test {
 protected:
  // The tenant most tests work in; its admin is a tenant administrator.
  static constexpr char kTenant[] = "cli";

  static void SetUpTestSuite() {
    suite_dir_ = new TempDir();
    clavisd_ = new ClavisdProcess(ClavisdOptions(suite_dir_->path() + "/data"));
    start_status_ = new absl::Status(clavisd_->Start());
  }

  static void TearDownTestSuite() {
    if (clavisd_->running()) {
      absl::Status stopped = clavisd_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
    delete clavisd_;
    delete start_status_;
    delete suite_dir_;
    clavisd_ = nullptr;
    start_status_ = nullptr;
    suite_dir_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(start_status_->ok()) << *start_status_; }

  static std::string Principal(const std::string& id, const std::string& tenant = kTenant) {
    return PrincipalName(tenant, id);
  }
  static std::string Admin() { return Principal("admin"); }
  static std::string KeyName(const std::string& id, const std::string& tenant = kTenant) {
    return absl::StrCat("tenants/", tenant, "/keys/", id);
  }

  // clavisctl `args` (shell words) over mTLS as `principal`, with `input` on
  // stdin. Credentials go before the command words (decrypt has a --key of
  // its own).
  CliResult Cli(const std::string& args, const std::string& principal = Admin(),
                const std::string& input = "") {
    const std::string prefix = clavisd_->client_cert_prefix(principal);
    return RunCli(absl::StrCat("--endpoint localhost:", clavisd_->port(), " --ca-cert ",
                               clavisd_->ca_cert_file(), " --cert ", prefix, ".crt --key ", prefix,
                               ".key ", args),
                  input);
  }

  // clavisctl `args` authenticated by the service token in `token_file`.
  CliResult CliWithToken(const std::string& args, const std::string& token_file) {
    return RunCli(absl::StrCat("--endpoint localhost:", clavisd_->port(), " --ca-cert ",
                               clavisd_->ca_cert_file(), " --token-file ", token_file, " ", args));
  }

  // clavisctl `args` exactly as given: no connection options (the local
  // commands, or a test's own).
  CliResult RunCli(const std::string& args, const std::string& input = "") {
    const std::string in_file = absl::StrCat(work_.path(), "/stdin-", ++runs_);
    const std::string err_file = absl::StrCat(work_.path(), "/stderr-", runs_);
    WriteTestFile(in_file, input);
    // The CLAVIS_* variables of whoever runs the tests must not change what
    // clavisctl does.
    CommandResult run = RunShell(absl::StrCat(
        "env -u CLAVIS_ENDPOINT -u CLAVIS_CA_CERT -u CLAVIS_CLIENT_CERT -u CLAVIS_CLIENT_KEY "
        "-u CLAVIS_TOKEN_FILE ",
        CLAVISCTL_BINARY, " ", args, " < ", in_file, " 2> ", err_file));
    CliResult result;
    result.exit_code = run.exit_code;
    result.out = std::move(run.out);
    result.err = ReadTestFile(err_file);
    return result;
  }

  // Creates `key` as the tenant admin, with `options`; fails the test if
  // it cannot.
  void MakeKey(const std::string& key, const std::string& options = "") {
    CliResult created = Cli(absl::StrCat("key create ", key, " ", options));
    ASSERT_TRUE(Succeeded(created)) << "key create " << key;
  }

  // A file in the test's own directory.
  std::string Path(const std::string& name) const { return work_.path() + "/" + name; }

  static TempDir* suite_dir_;
  static ClavisdProcess* clavisd_;
  static absl::Status* start_status_;
  TempDir work_;  // per test
  int runs_ = 0;
};

inline TempDir* ClavisctlCliTest::suite_dir_ = nullptr;
inline ClavisdProcess* ClavisctlCliTest::clavisd_ = nullptr;
inline absl::Status* ClavisctlCliTest::start_status_ = nullptr;

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_INTEGRATION_CLAVISCTL_CLI_FIXTURE_H_
