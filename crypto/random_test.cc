#include "crypto/random.h"

#include <string>

#include "crypto/secret_bytes.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

TEST(RandomBytesTest, ReturnsTheRequestedSize) {
  for (size_t size : {0, 1, 12, 24, 32, 1000, 65536}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(RandomBytes(size).size(), size);
  }
}

TEST(RandomBytesTest, TwoDrawsDiffer) {
  // A collision of 256 random bits has probability 2^-256.
  EXPECT_NE(RandomBytes(32), RandomBytes(32));
}

TEST(RandomBytesTest, IsNotAllZero) { EXPECT_NE(RandomBytes(32), std::string(32, '\0')); }

TEST(RandomBytesTest, UsesAllByteValuesOverALargeDraw) {
  // 64 KiB of uniform bytes miss one of the 256 values with negligible
  // probability (about 256 * e^-256).
  const std::string bytes = RandomBytes(65536);
  bool seen[256] = {};
  for (char c : bytes) seen[static_cast<unsigned char>(c)] = true;
  for (int v = 0; v < 256; ++v) EXPECT_TRUE(seen[v]) << v;
}

TEST(RandomSecretTest, ReturnsTheRequestedSize) {
  for (size_t size : {0, 1, 16, 32, 64, 4096}) {
    SCOPED_TRACE(size);
    EXPECT_EQ(RandomSecret(size).size(), size);
  }
  EXPECT_TRUE(RandomSecret(0).empty());
}

TEST(RandomSecretTest, TwoDrawsDiffer) { EXPECT_FALSE(RandomSecret(32).Equals(RandomSecret(32))); }

TEST(RandomSecretTest, IsNotAllZero) { EXPECT_FALSE(RandomSecret(32).Equals(SecretBytes(32))); }

}  // namespace
}  // namespace clavis::crypto
