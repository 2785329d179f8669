#include "kms/root/secret_input.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/root/root_key_testing.h"

namespace clavis::kms {
namespace {

using root_testing::ScopedTempDir;
using root_testing::WriteFile;
using ::testing::HasSubstr;
using ::testing::Not;

StartupSecretSource PinSource() {
  StartupSecretSource source;
  source.default_env = "CLAVIS_TEST_SECRET_INPUT_PIN";
  source.what = "PIN";
  source.needed_by = "the pkcs11 root key";
  source.file_setting = "pin_file";
  return source;
}

TEST(ReadStartupSecretTest, ReadsTheFirstLineOfAFile) {
  ScopedTempDir dir;
  WriteFile(dir.Join("pin"), "1234-secret\nsecond line\n");
  StartupSecretSource source = PinSource();
  source.file = dir.Join("pin");
  absl::StatusOr<crypto::SecretBytes> pin = ReadStartupSecret(source);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(pin->view(), "1234-secret");
}

TEST(ReadStartupSecretTest, AFileWithoutNewlineIsReadWhole) {
  ScopedTempDir dir;
  WriteFile(dir.Join("pin"), "no-newline");
  StartupSecretSource source = PinSource();
  source.file = dir.Join("pin");
  absl::StatusOr<crypto::SecretBytes> pin = ReadStartupSecret(source);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(pin->view(), "no-newline");
}

TEST(ReadStartupSecretTest, ReadsFromAPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread writer([fd = fds[1]] {
    const std::string text = "piped-pin\n";
    EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
  });
  StartupSecretSource source = PinSource();
  source.file = "/dev/fd/" + std::to_string(fds[0]);
  absl::StatusOr<crypto::SecretBytes> pin = ReadStartupSecret(source);
  writer.join();
  ::close(fds[0]);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(pin->view(), "piped-pin");
}

TEST(ReadStartupSecretTest, AMissingFileIsNotFoundNamingIt) {
  ScopedTempDir dir;
  StartupSecretSource source = PinSource();
  source.file = dir.Join("absent");
  absl::StatusOr<crypto::SecretBytes> pin = ReadStartupSecret(source);
  EXPECT_EQ(pin.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(pin.status().message(), HasSubstr("cannot read PIN file " + source.file));
}

TEST(ReadStartupSecretTest, AnOverlongLineIsRefused) {
  ScopedTempDir dir;
  WriteFile(dir.Join("big"), std::string(70 * 1024, 'x'));
  StartupSecretSource source = PinSource();
  source.file = dir.Join("big");
  EXPECT_EQ(ReadStartupSecret(source).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReadStartupSecretTest, TheEnvironmentVariableIsWipedAndUnset) {
  ASSERT_EQ(::setenv("CLAVIS_TEST_SECRET_INPUT_PIN", "env-pin-5678", 1), 0);
  const char* before = std::getenv("CLAVIS_TEST_SECRET_INPUT_PIN");
  ASSERT_NE(before, nullptr);
  absl::StatusOr<crypto::SecretBytes> pin = ReadStartupSecret(PinSource());
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(pin->view(), "env-pin-5678");
  EXPECT_EQ(std::getenv("CLAVIS_TEST_SECRET_INPUT_PIN"), nullptr);
  // The old value's bytes were overwritten before the variable went (glibc
  // keeps the string setenv made; it is still mapped).
  EXPECT_THAT(std::string(before, 12), Not(HasSubstr("env-pin")));
}

TEST(ReadStartupSecretTest, AnotherVariableCanBeNamed) {
  ASSERT_EQ(::setenv("CLAVIS_TEST_OTHER_PIN", "other", 1), 0);
  StartupSecretSource source = PinSource();
  source.env = "CLAVIS_TEST_OTHER_PIN";
  absl::StatusOr<crypto::SecretBytes> pin = ReadStartupSecret(source);
  ASSERT_TRUE(pin.ok()) << pin.status();
  EXPECT_EQ(pin->view(), "other");
  EXPECT_EQ(std::getenv("CLAVIS_TEST_OTHER_PIN"), nullptr);
}

TEST(ReadStartupSecretTest, AMissingOrEmptyVariableSaysWhatToSet) {
  ::unsetenv("CLAVIS_TEST_SECRET_INPUT_PIN");
  absl::StatusOr<crypto::SecretBytes> pin = ReadStartupSecret(PinSource());
  EXPECT_EQ(pin.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(pin.status().message(),
            "the pkcs11 root key needs a PIN: set CLAVIS_TEST_SECRET_INPUT_PIN or pin_file");
  ASSERT_EQ(::setenv("CLAVIS_TEST_SECRET_INPUT_PIN", "", 1), 0);
  EXPECT_EQ(ReadStartupSecret(PinSource()).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace clavis::kms
