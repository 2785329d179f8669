#include "crypto/secure_heap.h"

#include "crypto/rsa_oaep.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

// The point of the secure heap for BYOK: a generated RSA key's private parts
// land in it (and leave it when the key is freed).
TEST(SecureHeapTest, RsaPrivateKeysLiveInTheSecureHeap) {
  absl::Status init = InitSecureHeap(1 << 20);
  // A container without CAP_IPC_LOCK headroom may refuse the lock; the heap
  // is then on but unlocked, which is still what this test checks.
  ASSERT_TRUE(init.ok() || absl::IsFailedPrecondition(init)) << init;
  // The first key also sets up OpenSSL's random generator, whose state
  // stays in the secure heap for good; measure with the second.
  ASSERT_TRUE(RsaOaepPrivateKey::Generate(2048).ok());
  const size_t before = SecureHeapUsed();
  size_t during = 0;
  {
    auto key = RsaOaepPrivateKey::Generate(3072);
    ASSERT_TRUE(key.ok());
    during = SecureHeapUsed();
    EXPECT_GT(during, before + 3072 / 8);
  }
  EXPECT_LT(SecureHeapUsed(), during);
  EXPECT_TRUE(InitSecureHeap(1 << 20).ok() || absl::IsFailedPrecondition(init));
}

}  // namespace
}  // namespace clavis::crypto
