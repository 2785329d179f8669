// clavisctl against a real clavisd: the commands an admin needs to try
// Clavis, their --json output parsed back, and the documented exit codes.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/run_shell.h"

namespace clavis::testing {
namespace {

using ::testing::HasSubstr;

class ClavisctlTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(clavisd_.Start().ok()); }

  // Runs clavisctl with `args` (shell words), feeding `input` on stdin,
  // authenticated by mTLS as `principal` (default: acme's admin).
  CommandResult Run(const std::string& args, const std::string& input = "",
                    const std::string& principal = PrincipalName("acme")) {
    const std::string prefix = clavisd_.client_cert_prefix(principal);
    const std::string input_file = dir_.path() + "/stdin";
    {
      FILE* f = std::fopen(input_file.c_str(), "wb");
      std::fwrite(input.data(), 1, input.size(), f);
      std::fclose(f);
    }
    // The certificate server name is localhost; credentials come before the
    // command words (decrypt has a --key option of its own).
    const std::string command =
        absl::StrCat(CLAVISCTL_BINARY, " --endpoint localhost:", clavisd_.port(), " --ca-cert ",
                     clavisd_.ca_cert_file(), " --cert ", prefix, ".crt --key ", prefix, ".key ",
                     args, " < ", input_file, " 2>&1");
    return RunShell(command);
  }

  TempDir dir_;
  ClavisdProcess clavisd_{ClavisdOptions(dir_.path() + "/data")};
};

TEST_F(ClavisctlTest, CreateRotateAndGetWithJsonOutput) {
  auto created = Run("key create tenants/acme/keys/crm --description records --json");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  clavis::v1::Key key;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(created.out, &key).ok()) << created.out;
  EXPECT_EQ(key.name(), "tenants/acme/keys/crm");
  EXPECT_EQ(key.state(), clavis::v1::ENABLED);

  ASSERT_EQ(Run("key rotate tenants/acme/keys/crm").exit_code, 0);
  auto got = Run("key get tenants/acme/keys/crm --json");
  ASSERT_EQ(got.exit_code, 0) << got.out;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(got.out, &key).ok());
  EXPECT_EQ(key.primary_version(), 2u);
  EXPECT_EQ(key.versions_size(), 2);

  auto human = Run("key get tenants/acme/keys/crm");
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_THAT(human.out, HasSubstr("2 (primary)"));
}

TEST_F(ClavisctlTest, EncryptDecryptAndTheKillSwitch) {
  // Separation of duties: the admin administers, the app uses the key.
  const std::string app = PrincipalName("acme", "app");
  ASSERT_EQ(Run("key create tenants/acme/keys/crm --user " + app).exit_code, 0);
  auto refused_admin =
      Run("encrypt tenants/acme/keys/crm --segment acme/contacts --context customer=42", "x");
  EXPECT_EQ(refused_admin.exit_code, 6) << refused_admin.out;  // PERMISSION_DENIED
  auto sealed = Run("encrypt tenants/acme/keys/crm --segment acme/contacts --context customer=42",
                    "jane@example.com", app);
  ASSERT_EQ(sealed.exit_code, 0) << sealed.out;
  const std::string blob_file = dir_.path() + "/blob.b64";
  {
    FILE* f = std::fopen(blob_file.c_str(), "wb");
    std::fwrite(sealed.out.data(), 1, sealed.out.size(), f);
    std::fclose(f);
  }
  auto plain = Run("decrypt --blob-file " + blob_file + " --context customer=42", "", app);
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_EQ(plain.out, "jane@example.com");

  // Wrong context: the server's INVALID_ARGUMENT is exit code 5.
  auto wrong = Run("decrypt --blob-file " + blob_file + " --context customer=43", "", app);
  EXPECT_EQ(wrong.exit_code, 5) << wrong.out;
  EXPECT_THAT(wrong.out, HasSubstr("decryption failed"));

  // The kill switch: FAILED_PRECONDITION is exit code 4, with a hint.
  ASSERT_EQ(Run("key disable tenants/acme/keys/crm").exit_code, 0);
  auto refused = Run("decrypt --blob-file " + blob_file + " --context customer=42", "", app);
  EXPECT_EQ(refused.exit_code, 4) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("is DISABLED since"));
  ASSERT_EQ(Run("key enable tenants/acme/keys/crm").exit_code, 0);
  EXPECT_EQ(Run("decrypt --blob-file " + blob_file + " --context customer=42", "", app).exit_code,
            0);
}

TEST_F(ClavisctlTest, DataKeyAndDestroyAfterTheWindow) {
  const std::string app = PrincipalName("acme", "app");
  ASSERT_EQ(Run("key create tenants/acme/keys/crm --user " + app).exit_code, 0);
  auto dk = Run("datakey tenants/acme/keys/crm --segment s1 --json", "", app);
  ASSERT_EQ(dk.exit_code, 0) << dk.out;
  clavis::v1::GenerateDataKeyResponse response;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(dk.out, &response).ok()) << dk.out;
  EXPECT_EQ(response.plaintext().size(), 32u);

  auto early = Run("key destroy tenants/acme/keys/crm");
  EXPECT_EQ(early.exit_code, 4) << early.out;
  ASSERT_EQ(Run("key schedule-destroy tenants/acme/keys/crm --pending-window 1s").exit_code, 0);
  absl::SleepFor(absl::Milliseconds(1100));
  auto destroyed = Run("key destroy tenants/acme/keys/crm --json");
  ASSERT_EQ(destroyed.exit_code, 0) << destroyed.out;
  EXPECT_THAT(destroyed.out, HasSubstr("\"DESTROYED\""));
}

TEST_F(ClavisctlTest, ErrorsGiveTheDocumentedExitCodes) {
  EXPECT_EQ(Run("key get tenants/acme/keys/nope").exit_code, 3);  // NOT_FOUND
  ASSERT_EQ(Run("key create tenants/acme/keys/crm").exit_code, 0);
  EXPECT_EQ(Run("key create tenants/acme/keys/crm").exit_code, 8);  // ALREADY_EXISTS
  EXPECT_EQ(Run("key frobnicate").exit_code, 2);                    // usage
  EXPECT_EQ(Run("key get not-a-name").exit_code, 5);                // server: INVALID_ARGUMENT
}

// The walkthrough of docs/ACCESS.md, "Securing a deployment in five
// commands", exactly with clavisctl: its own CA and certificates, clavisd on
// TLS with client certificates, then policies, M-of-N approval of a
// destruction, and an offline verification of the audit log that catches a
// flipped byte.
class SecureDeploymentTest : public ::testing::Test {
 protected:
  CommandResult Cli(const std::string& args, const std::string& principal = "") {
    std::string credentials;
    if (!principal.empty()) {
      const std::string prefix = Pki() + "/" + principal;
      credentials = absl::StrCat(" --endpoint localhost:", clavisd_->port(), " --ca-cert ", Pki(),
                                 "/ca.crt --cert ", prefix, ".crt --key ", prefix, ".key");
    }
    const std::string command = absl::StrCat(CLAVISCTL_BINARY, credentials, " ", args, " 2>&1");
    return RunShell(command);
  }

  std::string Pki() const { return dir_.path() + "/pki"; }
  std::string Data() const { return dir_.path() + "/data"; }

  TempDir dir_;
  std::unique_ptr<ClavisdProcess> clavisd_;
};

TEST_F(SecureDeploymentTest, FiveCommandsThenPoliciesApprovalsAndAuditVerification) {
  ASSERT_EQ(Cli("pki init-ca --out " + Pki()).exit_code, 0);
  auto server = Cli("pki issue-server --ca " + Pki() + " --dns localhost --ip 127.0.0.1 --out " +
                    Pki() + "/server");
  ASSERT_EQ(server.exit_code, 0) << server.out;
  for (const char* who : {"admin", "ops2", "ops3", "app"}) {
    auto issued = Cli(absl::StrCat("pki issue-client --ca ", Pki(), " --principal ",
                                   PrincipalName("acme", who), " --out ", Pki(), "/", who));
    ASSERT_EQ(issued.exit_code, 0) << issued.out;
  }
  ClavisdOptions options(Data());
  options.auth = HarnessAuth::kExternal;
  options.external_pki_dir = Pki();
  options.extra_args = {
      "--tls_cert_file=" + Pki() + "/server.crt", "--tls_key_file=" + Pki() + "/server.key",
      "--client_ca_file=" + Pki() + "/ca.crt", "--tenant_admin=" + PrincipalName("acme", "admin")};
  clavisd_ = std::make_unique<ClavisdProcess>(options);
  ASSERT_TRUE(clavisd_->Start().ok());

  const std::string key = "tenants/acme/keys/crm";
  auto created =
      Cli(absl::StrCat("key create ", key, " --admin ", PrincipalName("acme", "admin"), " --admin ",
                       PrincipalName("acme", "ops2"), " --admin ", PrincipalName("acme", "ops3"),
                       " --user ", PrincipalName("acme", "app"), " --approvals 2"),
          "admin");
  ASSERT_EQ(created.exit_code, 0) << created.out;
  auto who = Cli("whoami --json", "app");
  ASSERT_EQ(who.exit_code, 0) << who.out;
  EXPECT_THAT(who.out, HasSubstr(PrincipalName("acme", "app")));
  EXPECT_THAT(who.out, HasSubstr("mtls"));

  // The app encrypts; the admin may not; the simulator says why.
  const std::string record = dir_.path() + "/record.txt";
  std::ofstream(record) << "jane@example.com";
  auto sealed = Cli(absl::StrCat("encrypt ", key,
                                 " --segment acme/contacts --context c=1 "
                                 "--plaintext-file ",
                                 record),
                    "app");
  EXPECT_EQ(sealed.exit_code, 0) << sealed.out;
  auto denied = Cli(absl::StrCat("datakey ", key, " --segment acme/contacts"), "admin");
  EXPECT_EQ(denied.exit_code, 6) << denied.out;
  auto simulated =
      Cli(absl::StrCat("policy simulate ", key, " --principal ", PrincipalName("acme", "admin"),
                       " --action Decrypt --segment acme/contacts"),
          "admin");
  EXPECT_EQ(simulated.exit_code, 0) << simulated.out;
  EXPECT_THAT(simulated.out, HasSubstr("DENY"));

  // Destruction needs two approvers other than the requester.
  auto scheduled = Cli(absl::StrCat("key schedule-destroy ", key), "admin");
  EXPECT_EQ(scheduled.exit_code, 4) << scheduled.out;
  const size_t at = scheduled.out.find("tenants/acme/approvals/ar-");
  ASSERT_NE(at, std::string::npos) << scheduled.out;
  const std::string request = scheduled.out.substr(
      at, scheduled.out.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789/-", at) - at);
  EXPECT_NE(Cli("approval approve " + request, "admin").exit_code, 0) << "no self-approval";
  EXPECT_EQ(Cli("approval approve " + request, "app").exit_code, 6) << "app may not approve";
  ASSERT_EQ(Cli("approval approve " + request, "ops2").exit_code, 0);
  auto done = Cli("approval approve " + request + " --json", "ops3");
  ASSERT_EQ(done.exit_code, 0) << done.out;
  EXPECT_THAT(done.out, HasSubstr("APPROVAL_EXECUTED"));
  auto got = Cli("key get " + key + " --json", "admin");
  EXPECT_THAT(got.out, HasSubstr("PENDING_DESTRUCTION"));

  // Offline: the audit log verifies, shows who did what, and a flipped byte
  // is caught and located.
  ASSERT_TRUE(clavisd_->Stop().ok());
  const std::string audit = Data() + "/audit";
  const std::string verify = absl::StrCat("audit verify --dir ", audit, " --public-key-file ",
                                          Data(), "/audit-signing.pub");
  auto clean = Cli(verify);
  EXPECT_EQ(clean.exit_code, 0) << clean.out;
  auto approvals = Cli(absl::StrCat("audit query --dir ", audit, " --action ApproveRequest"));
  EXPECT_EQ(approvals.exit_code, 0) << approvals.out;
  EXPECT_THAT(approvals.out, HasSubstr(PrincipalName("acme", "ops3")));
  auto files = ReadAllFiles(audit);
  std::string log_file;
  for (const auto& [path, content] : files) {
    if (path.find(".log") != std::string::npos && content.size() > 200) log_file = path;
  }
  ASSERT_FALSE(log_file.empty());
  {
    std::fstream f(log_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(150);
    char c = 0;
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(150);
    f.write(&c, 1);
  }
  auto tampered = Cli(verify);
  EXPECT_EQ(tampered.exit_code, 1) << tampered.out;
  EXPECT_THAT(tampered.out, HasSubstr("offset"));
}

}  // namespace
}  // namespace clavis::testing
