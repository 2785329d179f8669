#include "crypto/openssl_process.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

void ExitWithCodeThree() { ::_exit(3); }

TEST(OpenSslProcessTest, ExitsWithTheCodeWithoutRunningExitHandlers) {
  // An exit handler that would change the exit code: it must not run (and
  // neither does OpenSSL's, registered the same way).
  EXPECT_EXIT(
      {
        std::atexit(ExitWithCodeThree);
        ExitWithoutLibraryCleanUp(0);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        std::atexit(ExitWithCodeThree);
        ExitWithoutLibraryCleanUp(7);
      },
      ::testing::ExitedWithCode(7), "");
}

TEST(OpenSslProcessTest, BufferedOutputIsWrittenFirst) {
  const std::string path = ::testing::TempDir() + "/openssl_process_test_output";
  std::remove(path.c_str());
  EXPECT_EXIT(
      {
        FILE* out = std::fopen(path.c_str(), "w");
        if (out == nullptr) ::_exit(4);
        std::fputs("written before the exit", out);  // buffered, not flushed
        ExitWithoutLibraryCleanUp(0);
      },
      ::testing::ExitedWithCode(0), "");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "written before the exit");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace clavis::crypto
