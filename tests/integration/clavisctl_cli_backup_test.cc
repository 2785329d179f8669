// clavisctl backup create against a real clavisd (mTLS) that names one
// backup operator: the file it writes (mode 0600, nothing left beside it),
// --force, an existing --out, and a principal without the permission.
#include <sys/stat.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/integration/clavisctl_cli_fixture.h"

namespace clavis::testing {
namespace {

class ClavisctlBackupTest : public ClavisctlCliTest {
 protected:
  static std::string Operator() { return PrincipalName("ops", "backup"); }

  // Hides ClavisctlCliTest's: the same clavisd, with a backup operator.
  static void SetUpTestSuite() {
    suite_dir_ = new TempDir();
    ClavisdOptions options(suite_dir_->path() + "/data");
    options.extra_args = {"--backup_operator", Operator()};
    clavisd_ = new ClavisdProcess(options);
    start_status_ = new absl::Status(clavisd_->Start());
  }

  // Files in the test's directory other than `keep`.
  std::vector<std::string> OtherFiles(const std::string& keep) const {
    std::vector<std::string> others;
    for (const auto& entry : std::filesystem::directory_iterator(work_.path())) {
      const std::string name = entry.path().filename().string();
      if (name != keep && !absl::StartsWith(name, "stdin-") && !absl::StartsWith(name, "stderr-")) {
        others.push_back(name);
      }
    }
    return others;
  }

  static int Mode(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
  }
};

TEST_F(ClavisctlBackupTest, WritesAPrivateFileAndRefusesToOverwriteWithoutForce) {
  MakeKey(KeyName("backed-up"));
  const std::string out = Path("clavis.backup");
  CliResult made = Cli("--json backup create --out " + out, Operator());
  ASSERT_TRUE(Succeeded(made)) << made;
  const Json summary = ParseJson(made);
  EXPECT_EQ(summary["file"], out);
  EXPECT_GT(summary["entries"].get<double>(), 0);
  EXPECT_EQ(summary["bytes"].get<double>(), std::filesystem::file_size(out));
  EXPECT_EQ(Mode(out), 0600);
  EXPECT_TRUE(OtherFiles("clavis.backup").empty()) << "a temporary file was left behind";
  const std::string first = ReadTestFile(out);

  // An existing --out is kept without --force (usage error, exit 2)...
  CliResult again = Cli("backup create --out " + out, Operator());
  EXPECT_TRUE(FailedWith(again, kExitUsage, "exists; remove it or pass --force")) << again;
  EXPECT_EQ(ReadTestFile(out), first);
  // ...and replaced with it, by a new backup (another id, so other bytes).
  CliResult forced = Cli("backup create --force --out " + out, Operator());
  ASSERT_TRUE(Succeeded(forced)) << forced;
  EXPECT_NE(ReadTestFile(out), first);
  EXPECT_EQ(Mode(out), 0600);
  EXPECT_TRUE(OtherFiles("clavis.backup").empty());
}

TEST_F(ClavisctlBackupTest, APrincipalWithoutThePermissionGetsNoFile) {
  const std::string out = Path("refused.backup");
  // The tenant administrator of another tenant: no key policy can grant it.
  CliResult refused = Cli("backup create --out " + out);
  EXPECT_TRUE(FailedWith(refused, kExitPermissionDenied, "CreateBackup")) << refused;
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_TRUE(OtherFiles("").empty()) << "a temporary file was left behind";
}

TEST_F(ClavisctlBackupTest, AnUnwritableDirectoryIsAClearError) {
  CliResult r = Cli("backup create --out " + Path("no/such/dir/x.backup"), Operator());
  EXPECT_TRUE(FailedWith(r, kExitUsage, "cannot create a file beside")) << r;
}

}  // namespace
}  // namespace clavis::testing
