// clavisctl against a real clavisd: the commands an admin needs to try
// Clavis, their --json output parsed back, and the documented exit codes.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"

namespace clavis::testing {
namespace {

using ::testing::HasSubstr;

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

class ClavisctlTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(clavisd_.Start().ok()); }

  // Runs clavisctl with `args` (shell words), feeding `input` on stdin.
  CommandResult Run(const std::string& args, const std::string& input = "") {
    const std::string input_file = dir_.path() + "/stdin";
    {
      FILE* f = std::fopen(input_file.c_str(), "wb");
      std::fwrite(input.data(), 1, input.size(), f);
      std::fclose(f);
    }
    const std::string command = absl::StrCat(CLAVISCTL_BINARY, " --endpoint ", clavisd_.address(),
                                             " ", args, " < ", input_file, " 2>&1");
    CommandResult result;
    FILE* pipe = ::popen(command.c_str(), "r");
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
    const int status = ::pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
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
  ASSERT_EQ(Run("key create tenants/acme/keys/crm").exit_code, 0);
  auto sealed = Run("encrypt tenants/acme/keys/crm --segment acme/contacts --context customer=42",
                    "jane@example.com");
  ASSERT_EQ(sealed.exit_code, 0) << sealed.out;
  const std::string blob_file = dir_.path() + "/blob.b64";
  {
    FILE* f = std::fopen(blob_file.c_str(), "wb");
    std::fwrite(sealed.out.data(), 1, sealed.out.size(), f);
    std::fclose(f);
  }
  auto plain = Run("decrypt --blob-file " + blob_file + " --context customer=42");
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_EQ(plain.out, "jane@example.com");

  // Wrong context: the server's INVALID_ARGUMENT is exit code 5.
  auto wrong = Run("decrypt --blob-file " + blob_file + " --context customer=43");
  EXPECT_EQ(wrong.exit_code, 5) << wrong.out;
  EXPECT_THAT(wrong.out, HasSubstr("decryption failed"));

  // The kill switch: FAILED_PRECONDITION is exit code 4, with a hint.
  ASSERT_EQ(Run("key disable tenants/acme/keys/crm").exit_code, 0);
  auto refused = Run("decrypt --blob-file " + blob_file + " --context customer=42");
  EXPECT_EQ(refused.exit_code, 4) << refused.out;
  EXPECT_THAT(refused.out, HasSubstr("is DISABLED since"));
  ASSERT_EQ(Run("key enable tenants/acme/keys/crm").exit_code, 0);
  EXPECT_EQ(Run("decrypt --blob-file " + blob_file + " --context customer=42").exit_code, 0);
}

TEST_F(ClavisctlTest, DataKeyAndDestroyAfterTheWindow) {
  ASSERT_EQ(Run("key create tenants/acme/keys/crm").exit_code, 0);
  auto dk = Run("datakey tenants/acme/keys/crm --segment s1 --json");
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

}  // namespace
}  // namespace clavis::testing
