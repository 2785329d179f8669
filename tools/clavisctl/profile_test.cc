// The profile file: parsing and its refusals (profile.h), then the whole CLI
// through Run() for which option wins (command line > environment > profile
// > default). Nothing here needs clavisd: `status --json` against a dead
// endpoint prints the endpoint and transport the options resolved to.
#include "tools/clavisctl/profile.h"
#include "tools/clavisctl/cli_testing.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/global_options.h"
#include "tools/clavisctl/run.h"
#include "tools/clavisctl/status_report.pb.h"

namespace clavis::clavisctl {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Nothing listens on port 1 of loopback: RPCs fail at once (UNAVAILABLE).
constexpr char kDeadEndpoint[] = "127.0.0.1:1";
constexpr char kFakeCertificate[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "/clavisctl_profile_XXXXXX";
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

  // Writes `content` to `name` with `mode`; returns the path.
  std::string Write(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string file = absl::StrCat(path_, "/", name);
    std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
    ::chmod(file.c_str(), mode);
    return file;
  }

 private:
  std::string path_;
};

::testing::AssertionResult IsUsage(const absl::Status& status) {
  if (status.ok()) return ::testing::AssertionFailure() << "expected a usage error, got OK";
  if (!IsUsageError(status))
    return ::testing::AssertionFailure() << "not a usage error: " << status;
  return ::testing::AssertionSuccess();
}

// ---- DefaultProfileFile ----

TEST(DefaultProfileFileTest, XdgConfigHomeThenHome) {
  EXPECT_EQ(DefaultProfileFile("/xdg", "/home/ann"), "/xdg/clavis/clavisctl.json");
  EXPECT_EQ(DefaultProfileFile(nullptr, "/home/ann"), "/home/ann/.config/clavis/clavisctl.json");
  // The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
  EXPECT_EQ(DefaultProfileFile("rel", "/home/ann"), "/home/ann/.config/clavis/clavisctl.json");
  EXPECT_EQ(DefaultProfileFile("", "/home/ann"), "/home/ann/.config/clavis/clavisctl.json");
  EXPECT_EQ(DefaultProfileFile(nullptr, nullptr), "");
  EXPECT_EQ(DefaultProfileFile(nullptr, ""), "");
}

// ---- ParseProfiles ----

TEST(ParseProfilesTest, ReadsProfilesInJsonAndProtoFieldNames) {
  absl::StatusOr<ClavisctlProfiles> p = ParseProfiles(R"({
    "defaultProfile": "dev",
    "profiles": {
      "dev": {"endpoint": "127.0.0.1:7370"},
      "prod": {"endpoint": "kms.internal:7370", "caCert": "pki/ca.crt", "cert": "me.crt",
               "key": "me.key", "timeout": "30s"},
      "ci": {"endpoint": "kms.ci:7370", "ca_cert": "/etc/ca.crt", "token_file": "ci.token"}
    }
  })",
                                                      "p.json");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->default_profile(), "dev");
  ASSERT_EQ(p->profiles().size(), 3u);
  EXPECT_EQ(p->profiles().at("prod").ca_cert(), "pki/ca.crt");
  EXPECT_EQ(p->profiles().at("prod").timeout(), "30s");
  EXPECT_EQ(p->profiles().at("ci").token_file(), "ci.token");
}

TEST(ParseProfilesTest, TruncatedJsonSaysWhere) {
  const absl::Status s =
      ParseProfiles("{\n  \"profiles\": {\n    \"prod\": {\"endpoint\": \"x\"", "p.json").status();
  EXPECT_TRUE(IsUsage(s));
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("p.json"), HasSubstr("invalid JSON"), HasSubstr("line 3, column")));
}

TEST(ParseProfilesTest, SyntaxErrorsNeverEchoTheFile) {
  // A token pasted where it does not belong must not end up on the screen.
  const absl::Status s =
      ParseProfiles("{\"profiles\": {\"prod\": {\"endpoint\": \"clavis-token.v1.SECRET", "p.json")
          .status();
  EXPECT_TRUE(IsUsage(s));
  EXPECT_THAT(s.message(), Not(HasSubstr("SECRET")));
}

TEST(ParseProfilesTest, WrongTypesNameTheProfileAndField) {
  const absl::Status s =
      ParseProfiles(R"({"profiles": {"prod": {"endpoint": 7370}}})", "p.json").status();
  EXPECT_TRUE(IsUsage(s));
  EXPECT_THAT(s.message(), AllOf(HasSubstr("profiles.prod"), HasSubstr("endpoint")));

  EXPECT_TRUE(IsUsage(ParseProfiles(R"({"defaultProfile": ["a"]})", "p.json").status()));
  EXPECT_TRUE(IsUsage(ParseProfiles(R"({"profiles": ["a"]})", "p.json").status()));
  EXPECT_TRUE(IsUsage(ParseProfiles(R"({"profiles": {"prod": "x"}})", "p.json").status()));
  EXPECT_TRUE(IsUsage(ParseProfiles(R"(["not", "an", "object"])", "p.json").status()));
  EXPECT_TRUE(IsUsage(ParseProfiles("", "p.json").status()));
}

TEST(ParseProfilesTest, UnknownFieldsAreErrorsNamingTheField) {
  const absl::Status in_profile =
      ParseProfiles(R"({"profiles": {"prod": {"endpont": "x"}}})", "p.json").status();
  EXPECT_TRUE(IsUsage(in_profile));
  EXPECT_THAT(in_profile.message(), AllOf(HasSubstr("profiles.prod"), HasSubstr("endpont")));

  const absl::Status at_top = ParseProfiles(R"({"default": "prod"})", "p.json").status();
  EXPECT_TRUE(IsUsage(at_top));
  EXPECT_THAT(at_top.message(), HasSubstr("default"));

  // A token does not belong in the file at all.
  const absl::Status token =
      ParseProfiles(R"({"profiles": {"prod": {"token": "clavis-token.v1.SECRET"}}})", "p.json")
          .status();
  EXPECT_TRUE(IsUsage(token));
  EXPECT_THAT(token.message(), AllOf(HasSubstr("token"), Not(HasSubstr("SECRET"))));
}

TEST(ParseProfilesTest, BadTimeoutsAndEmptyNamesAreRefused) {
  for (const char* timeout : {"10", "0s", "2d", "soon"}) {
    const absl::Status s =
        ParseProfiles(absl::StrCat(R"({"profiles": {"prod": {"timeout": ")", timeout, "\"}}}"),
                      "p.json")
            .status();
    EXPECT_TRUE(IsUsage(s)) << timeout;
    EXPECT_THAT(s.message(), HasSubstr("profiles.prod.timeout")) << timeout;
  }
  EXPECT_TRUE(IsUsage(ParseProfiles(R"({"profiles": {"": {}}})", "p.json").status()));
}

// ---- ReadProfileFile ----

TEST(ReadProfileFileTest, MissingFileIsNotFoundSoTheDefaultCanBeIgnored) {
  TempDir dir;
  const absl::Status s = ReadProfileFile(dir.path() + "/none.json").status();
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_FALSE(IsUsageError(s));
}

TEST(ReadProfileFileTest, RefusesAFileOthersCanWrite) {
  TempDir dir;
  const std::string json = R"({"profiles": {"prod": {"endpoint": "x:1"}}})";
  EXPECT_TRUE(ReadProfileFile(dir.Write("ok.json", json, 0644)).ok());
  EXPECT_TRUE(ReadProfileFile(dir.Write("ok2.json", json, 0600)).ok());

  const absl::Status group = ReadProfileFile(dir.Write("g.json", json, 0664)).status();
  EXPECT_TRUE(IsUsage(group));
  EXPECT_THAT(group.message(), AllOf(HasSubstr("writable by its group"), HasSubstr("0664")));
  const absl::Status world = ReadProfileFile(dir.Write("w.json", json, 0602)).status();
  EXPECT_TRUE(IsUsage(world));
  EXPECT_THAT(world.message(), HasSubstr("writable by others"));
}

TEST(ReadProfileFileTest, RefusesAnOversizedFile) {
  TempDir dir;
  // Valid JSON, just too large: the size alone is the reason.
  std::string json = R"({"profiles": {"prod": {"endpoint": "x:1"}}})";
  json.append(kMaxProfileFileBytes, ' ');
  const absl::Status s = ReadProfileFile(dir.Write("big.json", json)).status();
  EXPECT_TRUE(IsUsage(s));
  EXPECT_THAT(s.message(), HasSubstr("larger than 1048576 bytes"));
}

TEST(ReadProfileFileTest, RefusesADirectoryAndAnUnreadableFile) {
  TempDir dir;
  EXPECT_TRUE(IsUsage(ReadProfileFile(dir.path()).status()));
  if (::geteuid() != 0) {  // root reads anything
    const std::string file = dir.Write("secret.json", "{}", 0200);
    const absl::Status s = ReadProfileFile(file).status();
    EXPECT_TRUE(IsUsage(s));
    EXPECT_THAT(s.message(), HasSubstr("cannot open"));
  }
}

// ---- SelectProfile ----

ClavisctlProfiles TwoProfiles(const std::string& default_profile) {
  absl::StatusOr<ClavisctlProfiles> p =
      ParseProfiles(absl::StrCat(R"({"defaultProfile": ")", default_profile, R"(", "profiles": {
        "prod": {"caCert": "pki/ca.crt", "cert": "/abs/me.crt", "key": "me.key",
                 "tokenFile": "t"},
        "dev": {"endpoint": "127.0.0.1:7370"}}})"),
                    "p.json");
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : ClavisctlProfiles();
}

TEST(SelectProfileTest, UnknownNameListsTheKnownOnes) {
  const absl::Status s = SelectProfile(TwoProfiles(""), "staging", "/etc/p.json").status();
  EXPECT_TRUE(IsUsage(s));
  EXPECT_THAT(s.message(), AllOf(HasSubstr("\"staging\""), HasSubstr("known profiles: dev, prod")));
  // A default that names no profile is the same mistake.
  const absl::Status d = SelectProfile(TwoProfiles("gone"), "", "/etc/p.json").status();
  EXPECT_TRUE(IsUsage(d));
  EXPECT_THAT(d.message(), AllOf(HasSubstr("\"gone\""), HasSubstr("defaultProfile")));
}

TEST(SelectProfileTest, NameThenDefaultThenNone) {
  auto named = SelectProfile(TwoProfiles("dev"), "prod", "p.json");
  ASSERT_TRUE(named.ok() && named->has_value());
  EXPECT_EQ((*named)->name, "prod");
  auto by_default = SelectProfile(TwoProfiles("dev"), "", "p.json");
  ASSERT_TRUE(by_default.ok() && by_default->has_value());
  EXPECT_EQ((*by_default)->name, "dev");
  auto none = SelectProfile(TwoProfiles(""), "", "p.json");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(SelectProfileTest, RelativePathsAreResolvedAgainstTheFilesDirectory) {
  auto selected = SelectProfile(TwoProfiles(""), "prod", "/home/ann/.config/clavis/clavisctl.json");
  ASSERT_TRUE(selected.ok() && selected->has_value());
  const Profile& p = (*selected)->profile;
  EXPECT_EQ(p.ca_cert(), "/home/ann/.config/clavis/pki/ca.crt");
  EXPECT_EQ(p.cert(), "/abs/me.crt");
  EXPECT_EQ(p.key(), "/home/ann/.config/clavis/me.key");
  EXPECT_EQ(p.token_file(), "/home/ann/.config/clavis/t");
}

// ---- ResolveProfile: precedence option by option ----

TEST(ResolveProfileTest, NoFileGivesTheBuiltInDefaults) {
  TempDir dir;
  GlobalOptions options;
  ASSERT_TRUE(ResolveProfile(dir.path() + "/none.json", &options).ok());
  EXPECT_EQ(options.endpoint, "127.0.0.1:7370");
  EXPECT_EQ(options.timeout, "10s");
  EXPECT_EQ(options.profile_used, "");
  EXPECT_EQ(options.ca_cert_file, "");
  // No default location at all (neither $XDG_CONFIG_HOME nor $HOME).
  GlobalOptions nowhere;
  ASSERT_TRUE(ResolveProfile("", &nowhere).ok());
  EXPECT_EQ(nowhere.endpoint, "127.0.0.1:7370");
}

TEST(ResolveProfileTest, TheProfileFillsOnlyWhatIsUnset) {
  TempDir dir;
  const std::string file = dir.Write("p.json", R"({"defaultProfile": "prod", "profiles": {
    "prod": {"endpoint": "kms:7370", "caCert": "ca.crt", "cert": "me.crt", "key": "me.key",
             "tokenFile": "t", "timeout": "30s"}}})");
  GlobalOptions options;
  options.profile_file = file;
  options.endpoint = "env-or-flag:1";  // what --endpoint or $CLAVIS_ENDPOINT set
  options.client_cert_file = "/flag.crt";
  ASSERT_TRUE(ResolveProfile("", &options).ok());
  EXPECT_EQ(options.profile_used, "prod");
  EXPECT_EQ(options.endpoint, "env-or-flag:1");
  EXPECT_EQ(options.timeout, "30s");
  EXPECT_EQ(options.ca_cert_file, dir.path() + "/ca.crt");
  EXPECT_TRUE(options.from_profile.ca_cert);
  EXPECT_EQ(options.client_cert_file, "/flag.crt");
  EXPECT_FALSE(options.from_profile.cert);
  EXPECT_EQ(options.client_key_file, dir.path() + "/me.key");
  EXPECT_EQ(options.token_file, dir.path() + "/t");

  // An explicit --endpoint "" is kept, so that it stays a usage error.
  GlobalOptions empty;
  empty.profile_file = file;
  empty.endpoint_given = true;
  ASSERT_TRUE(ResolveProfile("", &empty).ok());
  EXPECT_EQ(empty.endpoint, "");
}

TEST(ResolveProfileTest, AMissingFileMattersOnlyWhenAskedFor) {
  TempDir dir;
  GlobalOptions named;
  named.profile = "prod";
  EXPECT_TRUE(IsUsage(ResolveProfile(dir.path() + "/none.json", &named)));
  GlobalOptions explicit_file;
  explicit_file.profile_file = dir.path() + "/none.json";
  EXPECT_TRUE(IsUsage(ResolveProfile("", &explicit_file)));
  GlobalOptions nowhere;
  nowhere.profile = "prod";
  EXPECT_TRUE(IsUsage(ResolveProfile("", &nowhere)));
}

// ---- The whole CLI: precedence ----

using Result = cli_testing::CliResult;

Result RunCli(std::vector<std::string> args, const char* env_endpoint = nullptr) {
  return cli_testing::RunCliInProcess(std::move(args), env_endpoint);
}

class ProfileCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Hermetic: no profile or credential from the developer's environment.
    for (const char* var : {kProfileEnvVar, kProfileFileEnvVar, "CLAVIS_CA_CERT",
                            "CLAVIS_CLIENT_CERT", "CLAVIS_CLIENT_KEY", "CLAVIS_TOKEN_FILE"}) {
      ::unsetenv(var);
    }
    ::setenv("XDG_CONFIG_HOME", (dir_.path() + "/xdg").c_str(), 1);
    ca_ = dir_.Write("ca.crt", kFakeCertificate);
  }
  void TearDown() override {
    ::unsetenv("XDG_CONFIG_HOME");
    ::unsetenv(kProfileEnvVar);
    ::unsetenv(kProfileFileEnvVar);
    ::unsetenv("CLAVIS_CA_CERT");
  }

  // `status --json` against whatever the options resolve to; the endpoints
  // are dead, so it exits 7 after printing the report.
  StatusReport Status(std::vector<std::string> args, const char* env_endpoint = nullptr) {
    args.insert(args.begin(), {"status", "--json", "--timeout", "2s"});
    const Result r = RunCli(args, env_endpoint);
    EXPECT_EQ(r.code, kExitUnavailable) << r.err;
    StatusReport report;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.out;
    return report;
  }

  // Profiles "a" (default, plaintext) and "tls" (TLS with the fake CA, by a
  // path relative to the file).
  std::string WriteProfiles(const std::string& name = "p.json") {
    return dir_.Write(name, R"({"defaultProfile": "a", "profiles": {
      "a": {"endpoint": "127.0.0.1:2", "timeout": "3s"},
      "tls": {"endpoint": "127.0.0.1:3", "caCert": "ca.crt"}}})");
  }

  TempDir dir_;
  std::string ca_;
};

TEST_F(ProfileCliTest, WithoutAProfileFileEverythingWorksAsBefore) {
  // (The built-in endpoint is not dialled here: a developer's clavisd may
  // listen on it. ResolveProfileTest covers that default.)
  const StatusReport r = Status({}, kDeadEndpoint);
  EXPECT_EQ(r.endpoint(), kDeadEndpoint);
  EXPECT_EQ(r.transport(), "plaintext");
  EXPECT_EQ(r.profile(), "");
  EXPECT_FALSE(r.reachable());
}

TEST_F(ProfileCliTest, TheDefaultFileAndItsDefaultProfileAreUsed) {
  ::mkdir((dir_.path() + "/xdg").c_str(), 0700);
  ::mkdir((dir_.path() + "/xdg/clavis").c_str(), 0700);
  WriteProfiles("xdg/clavis/clavisctl.json");
  dir_.Write("xdg/clavis/ca.crt", kFakeCertificate);  // "tls" names it relative to the file
  const StatusReport r = Status({});
  EXPECT_EQ(r.profile(), "a");
  EXPECT_EQ(r.endpoint(), "127.0.0.1:2");
  const StatusReport tls = Status({"--profile", "tls"});
  EXPECT_EQ(tls.endpoint(), "127.0.0.1:3");
  EXPECT_EQ(tls.transport(), "TLS");
}

TEST_F(ProfileCliTest, CommandLineBeatsEnvironmentBeatsProfileBeatsDefault) {
  const std::string file = WriteProfiles();
  // Profile over the built-in default.
  EXPECT_EQ(Status({"--profile-file", file, "--profile", "tls"}).endpoint(), "127.0.0.1:3");
  // The environment over the profile.
  EXPECT_EQ(Status({"--profile-file", file, "--profile", "tls"}, kDeadEndpoint).endpoint(),
            kDeadEndpoint);
  // The command line over both.
  EXPECT_EQ(Status({"--profile-file", file, "--profile", "tls", "--endpoint", "127.0.0.1:4"},
                   kDeadEndpoint)
                .endpoint(),
            "127.0.0.1:4");
  // $CLAVIS_PROFILE and $CLAVIS_PROFILE_FILE name them too; --profile wins.
  ::setenv(kProfileFileEnvVar, file.c_str(), 1);
  ::setenv(kProfileEnvVar, "tls", 1);
  EXPECT_EQ(Status({}).transport(), "TLS");
  EXPECT_EQ(Status({"--profile", "a"}).transport(), "plaintext");
}

TEST_F(ProfileCliTest, CredentialFilesFollowThePrecedenceToo) {
  // The profile's CA does not exist; the environment's or the command
  // line's replaces it before anything is read.
  const std::string file = dir_.Write(
      "p.json", R"({"profiles": {"x": {"endpoint": "127.0.0.1:3", "caCert": "missing.crt"}}})");
  const Result from_profile = RunCli({"--profile-file", file, "--profile", "x", "whoami"});
  EXPECT_EQ(from_profile.code, kExitUsage);
  EXPECT_THAT(from_profile.err,
              AllOf(HasSubstr("--ca-cert (from profile \"x\")"), HasSubstr("missing.crt")));

  ::setenv("CLAVIS_CA_CERT", ca_.c_str(), 1);
  EXPECT_EQ(Status({"--profile-file", file, "--profile", "x"}).transport(), "TLS");
  ::unsetenv("CLAVIS_CA_CERT");
  EXPECT_EQ(Status({"--profile-file", file, "--profile", "x", "--ca-cert", ca_}).transport(),
            "TLS");
}

TEST_F(ProfileCliTest, ProblemsAreUsageErrors) {
  const std::string file = WriteProfiles();
  const Result unknown = RunCli({"--profile-file", file, "--profile", "nope", "whoami"});
  EXPECT_EQ(unknown.code, kExitUsage);
  EXPECT_THAT(unknown.err, HasSubstr("known profiles: a, tls"));

  const Result missing = RunCli({"--profile-file", dir_.path() + "/none.json", "whoami"});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_THAT(missing.err, HasSubstr("cannot open"));

  // --profile without any profile file.
  const Result no_file = RunCli({"--profile", "a", "whoami"});
  EXPECT_EQ(no_file.code, kExitUsage);
  EXPECT_THAT(no_file.err, HasSubstr("clavisctl.json"));

  const Result bad_json =
      RunCli({"--profile-file", dir_.Write("bad.json", "{\"profiles\": {"), "whoami"});
  EXPECT_EQ(bad_json.code, kExitUsage);
  EXPECT_THAT(bad_json.err, HasSubstr("line 1, column"));

  const Result writable =
      RunCli({"--profile-file", dir_.Write("w.json", "{}", 0666), "--profile", "a", "whoami"});
  EXPECT_EQ(writable.code, kExitUsage);
  EXPECT_THAT(writable.err, HasSubstr("writable by others"));
}

TEST_F(ProfileCliTest, LocalCommandsDoNotReadTheProfileFile) {
  // A broken profile file must not stop commands that use none of it.
  const std::string broken = dir_.Write("broken.json", "{", 0666);
  const Result r = RunCli({"--profile-file", broken, "--profile", "x", "completion", "bash"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("complete -F _clavisctl clavisctl"));
}

}  // namespace
}  // namespace clavis::clavisctl
