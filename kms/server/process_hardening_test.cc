#include "kms/server/process_hardening.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clavis::hardening {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uid_t kOtherUser = 54321;  // no such user on the test machine

class ProcessHardeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/process_hardening_", ::getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ::chmod(dir_.c_str(), 0700);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A file holding a made-up secret, with exactly `mode`.
  std::string File(const std::string& name, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << "not-a-real-secret\n";
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string Dir(const std::string& name, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::filesystem::create_directory(path);
    ::chmod(path.c_str(), mode);
    return path;
  }

  std::string dir_;
};

// An access ACL in the kernel's xattr form: owner rw, the given named users
// at `user_perm`, group none, mask `mask`, other none.
std::string Acl(const std::vector<uid_t>& users, uint16_t user_perm, uint16_t mask) {
  std::string out;
  auto put = [&out](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put(2, 4);  // version
  auto entry = [&put](uint16_t tag, uint16_t perm, uint32_t id) {
    put(tag, 2);
    put(perm, 2);
    put(id, 4);
  };
  entry(0x01, 06, 0xffffffff);                      // ACL_USER_OBJ
  for (uid_t u : users) entry(0x02, user_perm, u);  // ACL_USER
  entry(0x04, 0, 0xffffffff);                       // ACL_GROUP_OBJ
  entry(0x10, mask, 0xffffffff);                    // ACL_MASK
  entry(0x20, 0, 0xffffffff);                       // ACL_OTHER
  return out;
}

// Sets the ACL, or says why it cannot (file system without ACLs).
bool SetAcl(const std::string& path, const std::string& acl) {
  return ::setxattr(path.c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0) == 0;
}

// Run in a child (the change is irreversible and process-wide); the exit
// code says which expectation failed.
[[noreturn]] void DisableCoreDumpsAndReport() {
  if (!DisableCoreDumps().ok()) ::_exit(1);
  if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) ::_exit(2);
  struct rlimit limit;
  if (::getrlimit(RLIMIT_CORE, &limit) != 0) ::_exit(3);
  if (limit.rlim_cur != 0 || limit.rlim_max != 0) ::_exit(4);
  // Nobody can raise it again, not even the process itself (as non-root;
  // root keeps CAP_SYS_RESOURCE).
  const struct rlimit raise = {RLIM_INFINITY, RLIM_INFINITY};
  if (::geteuid() != 0 && ::setrlimit(RLIMIT_CORE, &raise) == 0) ::_exit(5);
  ::_exit(0);
}

TEST(DisableCoreDumpsTest, MakesTheProcessNonDumpableWithNoCoreLimit) {
  EXPECT_EXIT(DisableCoreDumpsAndReport(), ::testing::ExitedWithCode(0), "");
}

TEST_F(ProcessHardeningTest, PrivateDirectoryIsAccepted) {
  EXPECT_TRUE(CheckPrivateDirectory(Dir("data", 0700), "data directory").ok());
}

TEST_F(ProcessHardeningTest, MissingDirectoryIsAcceptedForTheCallerToCreate) {
  EXPECT_TRUE(CheckPrivateDirectory(dir_ + "/not-yet", "data directory").ok());
}

TEST_F(ProcessHardeningTest, DirectoryOthersCanEnterIsRefusedWithTheFix) {
  for (mode_t mode : {0755, 0750, 0701, 0710, 01777}) {
    const std::string path = Dir(absl::StrCat("data", mode), mode);
    const absl::Status s = CheckPrivateDirectory(path, "data directory");
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << mode;
    EXPECT_THAT(s.message(), AllOf(HasSubstr("data directory " + path),
                                   HasSubstr(absl::StrFormat("(mode %04o)", mode)),
                                   HasSubstr("chmod 700 " + path)));
  }
}

TEST_F(ProcessHardeningTest, DirectoryThatIsAFileIsRefused) {
  const absl::Status s = CheckPrivateDirectory(File("plain", 0600), "audit directory");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("is not a directory"));
}

TEST_F(ProcessHardeningTest, DirectorySymlinkIsJudgedByItsTarget) {
  const std::string target = Dir("target", 0700);
  std::filesystem::create_directory_symlink(target, dir_ + "/link");
  EXPECT_TRUE(CheckPrivateDirectory(dir_ + "/link", "data directory").ok());
  ::chmod(target.c_str(), 0755);
  EXPECT_EQ(CheckPrivateDirectory(dir_ + "/link", "data directory").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ProcessHardeningTest, DirectoryOfAnotherUserIsRefused) {
  const std::string path = Dir("theirs", 0700);
  PermissionOptions options;
  options.expected_owner = kOtherUser;  // as if this process ran as someone else
  const absl::Status s = CheckPrivateDirectory(path, "data directory", options);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("is owned by"), HasSubstr("uid 54321"),
                                 HasSubstr("chown -R 54321 " + path)));
}

TEST_F(ProcessHardeningTest, OwnerOnlySecretFileIsAccepted) {
  EXPECT_TRUE(CheckSecretFile(File("server.key", 0600), "TLS private key file").ok());
  EXPECT_TRUE(CheckSecretFile(File("ro.key", 0400), "TLS private key file").ok());
}

TEST_F(ProcessHardeningTest, MissingSecretFileIsLeftToItsReader) {
  EXPECT_TRUE(CheckSecretFile(dir_ + "/root.key", "root key file").ok());
  EXPECT_TRUE(CheckSecretFile("", "root key file").ok());
}

TEST_F(ProcessHardeningTest, SecretFileGroupOrOthersCanAccessIsRefusedWithTheFix) {
  for (mode_t mode : {0640, 0644, 0604, 0660, 0610}) {
    const std::string path = File(absl::StrCat("pin", mode), mode);
    const absl::Status s = CheckSecretFile(path, "PKCS#11 PIN file");
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << mode;
    EXPECT_THAT(s.message(), AllOf(HasSubstr("PKCS#11 PIN file " + path),
                                   HasSubstr(absl::StrFormat("mode %04o", mode)),
                                   HasSubstr("chmod 600 " + path)));
    // Never the contents.
    EXPECT_THAT(s.message(), Not(HasSubstr("not-a-real-secret")));
  }
}

TEST_F(ProcessHardeningTest, SecretFileSymlinkIsJudgedByItsTarget) {
  const std::string target = File("real.key", 0600);
  const std::string link = dir_ + "/link.key";
  std::filesystem::create_symlink(target, link);  // Kubernetes mounts secrets like this
  EXPECT_TRUE(CheckSecretFile(link, "TLS private key file").ok());
  ::chmod(target.c_str(), 0644);
  const absl::Status s = CheckSecretFile(link, "TLS private key file");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(link));
}

TEST_F(ProcessHardeningTest, DanglingSymlinkIsLeftToItsReader) {
  std::filesystem::create_symlink(dir_ + "/gone", dir_ + "/dangling");
  EXPECT_TRUE(CheckSecretFile(dir_ + "/dangling", "passphrase file").ok());
}

TEST_F(ProcessHardeningTest, PipeIsNotChecked) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  EXPECT_TRUE(CheckSecretFile(absl::StrCat("/dev/fd/", fds[0]), "passphrase file").ok());
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_F(ProcessHardeningTest, SecretFileOfAnotherUserIsRefused) {
  // A file we own, judged as if this process ran as kOtherUser. (Unless we
  // are root: root-owned files are accepted, see below.)
  if (::geteuid() == 0) {
    const std::string path = File("theirs.key", 0600);
    ASSERT_EQ(::chown(path.c_str(), kOtherUser + 1, static_cast<gid_t>(-1)), 0);
    const absl::Status s = CheckSecretFile(path, "root key file");
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(s.message(), AllOf(HasSubstr("is owned by uid 54322"), HasSubstr("chown root ")));
    return;
  }
  PermissionOptions options;
  options.expected_owner = kOtherUser;
  const absl::Status s = CheckSecretFile(File("mine.key", 0600), "root key file", options);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("is owned by"), HasSubstr("chown 54321 ")));
}

TEST_F(ProcessHardeningTest, RootOwnedSecretFileIsAccepted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs a root-owned file (run as root)";
  PermissionOptions options;
  options.expected_owner = kOtherUser;  // the service user; the file is root's
  EXPECT_TRUE(CheckSecretFile(File("root-owned.key", 0400), "TLS private key file", options).ok());
}

TEST_F(ProcessHardeningTest, AllowSharedSecretFilesTurnsRefusalIntoWarning) {
  PermissionOptions options;
  options.allow_shared_secret_files = true;
  EXPECT_TRUE(CheckSecretFile(File("k8s.key", 0644), "TLS private key file", options).ok());
  // Directories are never relaxed.
  EXPECT_FALSE(CheckPrivateDirectory(Dir("data", 0755), "data directory", options).ok());
}

TEST_F(ProcessHardeningTest, TrustFilesMayBeReadButNotWrittenByOthers) {
  EXPECT_TRUE(CheckTrustFile(File("issuers", 0644), "token issuers file").ok());
  EXPECT_TRUE(CheckTrustFile(File("ca.crt", 0444), "client CA file").ok());
  EXPECT_TRUE(CheckTrustFile(dir_ + "/missing", "token revocation file").ok());
  for (mode_t mode : {0664, 0646, 0666}) {
    SCOPED_TRACE(mode);
    const std::string path = File(absl::StrCat("issuers-", mode), mode);
    const absl::Status s = CheckTrustFile(path, "token issuers file");
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(s.message(), AllOf(HasSubstr("token issuers file " + path),
                                   HasSubstr("can be written by group or others"),
                                   HasSubstr("chmod go-w " + path)));
  }
  PermissionOptions relaxed;
  relaxed.allow_shared_secret_files = true;
  EXPECT_TRUE(CheckTrustFile(File("k8s-issuers", 0666), "token issuers file", relaxed).ok());
}

TEST_F(ProcessHardeningTest, TrustFileOfAnotherUserIsRefused) {
  PermissionOptions options;
  options.expected_owner = kOtherUser;
  const std::string path = File("revoked", 0644);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(path.c_str(), kOtherUser + 1, static_cast<gid_t>(-1)), 0);
  }
  const absl::Status s = CheckTrustFile(path, "token revocation file", options);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("is owned by"));
}

TEST_F(ProcessHardeningTest, AclGrantingAnotherUserIsRefused) {
  const std::string path = File("acl.key", 0600);
  if (!SetAcl(path, Acl({kOtherUser}, 04, 04))) {
    GTEST_SKIP() << "no POSIX ACLs on this file system: " << std::strerror(errno);
  }
  // The mode now shows the mask (0640); the ACL says who.
  const absl::Status s = CheckSecretFile(path, "TLS private key file");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("ACL entry for uid 54321"), HasSubstr("chmod 600")));
}

TEST_F(ProcessHardeningTest, AclMaskedToNothingIsAccepted) {
  const std::string path = File("masked.key", 0600);
  if (!SetAcl(path, Acl({kOtherUser}, 04, 0))) {
    GTEST_SKIP() << "no POSIX ACLs on this file system: " << std::strerror(errno);
  }
  EXPECT_TRUE(CheckSecretFile(path, "TLS private key file").ok());
}

TEST_F(ProcessHardeningTest, SystemdCredentialAclForTheServiceUserIsAccepted) {
  // systemd's LoadCredential= on tmpfs: root-owned 0400, plus an ACL entry
  // letting the service user read it (the mode then shows 0440).
  if (::geteuid() != 0) GTEST_SKIP() << "needs a root-owned file (run as root)";
  const std::string path = File("credential", 0400);
  if (!SetAcl(path, Acl({kOtherUser}, 04, 04))) {
    GTEST_SKIP() << "no POSIX ACLs on this file system: " << std::strerror(errno);
  }
  PermissionOptions options;
  options.expected_owner = kOtherUser;
  EXPECT_TRUE(CheckSecretFile(path, "TLS private key file", options).ok());
  // The same credential shared with one more user is not.
  ASSERT_TRUE(SetAcl(path, Acl({kOtherUser, kOtherUser + 1}, 04, 04)));
  EXPECT_FALSE(CheckSecretFile(path, "TLS private key file", options).ok());
}

}  // namespace
}  // namespace clavis::hardening
