#include "crypto/openssl_process.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>

#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

// Runs at exit after every handler registered later, OpenSSL's included
// (handlers run in reverse order). OpenSSL refuses to initialise again once
// OPENSSL_cleanup has run, so exit code 0 here means it did not run.
void ExitWithWhetherOpenSslStillWorks() {
  const bool works = OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CRYPTO_STRINGS, nullptr) == 1;
  ::_exit(works ? 0 : 3);
}

TEST(OpenSslProcessTest, ExitDoesNotRunOpenSslsCleanUp) {
  // "threadsafe" death tests run this test alone in a fresh process, where
  // nothing has initialised OpenSSL yet.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        std::atexit(ExitWithWhetherOpenSslStillWorks);
        if (!InitOpenSslForProcess().ok()) ::_exit(4);
        // Use OpenSSL as a program would, so that it is fully loaded.
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int length = 0;
        if (EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1 ||
            EVP_DigestFinal_ex(ctx, digest, &length) != 1) {
          ::_exit(5);
        }
        EVP_MD_CTX_free(ctx);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(OpenSslProcessTest, CallingItAgainIsHarmless) {
  EXPECT_TRUE(InitOpenSslForProcess().ok());
  EXPECT_TRUE(InitOpenSslForProcess().ok());
}

}  // namespace
}  // namespace clavis::crypto
