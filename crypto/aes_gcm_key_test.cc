#include "crypto/aes_gcm_key.h"

#include <atomic>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/testing/wycheproof.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

using ::clavis::crypto::testing::LoadWycheproof;
using ::clavis::crypto::testing::WycheproofCase;
using ::clavis::crypto::testing::WycheproofFile;

bool IsDecryptionFailure(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument && s.message() == "decryption failed";
}

// Every 256-bit-key, 96-bit-IV, 128-bit-tag vector, with the associated data
// split in two pieces, and every key used twice: the second use runs on a
// pooled context, after a failed tag for invalid vectors.
TEST(AesGcmKeyWycheproofTest, MatchesAllApplicableVectors) {
  absl::StatusOr<std::unique_ptr<WycheproofFile>> file = LoadWycheproof("aes_gcm_test.json");
  ASSERT_TRUE(file.ok()) << file.status();
  int ran = 0;
  int skipped = 0;
  for (const WycheproofCase& c : (*file)->cases) {
    SCOPED_TRACE(absl::StrCat("tcId ", c.tc_id, " (", c.comment, ")"));
    if (c.Num("keySize") != 256 || c.Num("ivSize") != 96 || c.Num("tagSize") != 128) {
      ++skipped;
      continue;
    }
    const std::string iv = c.Hex("iv");
    const std::string aad = c.Hex("aad");
    const std::string msg = c.Hex("msg");
    const std::string ct_and_tag = c.Hex("ct") + c.Hex("tag");
    const absl::string_view aad_view(aad);
    const std::vector<absl::string_view> pieces = {aad_view.substr(0, aad.size() / 2),
                                                   aad_view.substr(aad.size() / 2)};
    absl::StatusOr<std::unique_ptr<AesGcmKey>> key =
        AesGcmKey::New(SecretBytes::CopyOf(c.Hex("key")));
    ASSERT_TRUE(key.ok()) << key.status();
    for (int use = 0; use < 2; ++use) {
      if (c.result == "valid") {
        std::string sealed = "prefix";
        ASSERT_TRUE((*key)->SealAppend(iv, msg, pieces, &sealed).ok());
        EXPECT_EQ(HexEncode(sealed), HexEncode("prefix" + ct_and_tag));
        absl::StatusOr<std::string> opened = (*key)->Open(iv, ct_and_tag, pieces);
        ASSERT_TRUE(opened.ok()) << opened.status();
        EXPECT_EQ(HexEncode(*opened), HexEncode(msg));
      } else if (c.result == "invalid") {
        EXPECT_TRUE(IsDecryptionFailure((*key)->Open(iv, ct_and_tag, pieces).status()));
      }
    }
    ++ran;
  }
  std::cout << "aes_gcm_test.json (AesGcmKey): " << ran << " vectors run, " << skipped
            << " with other key/IV/tag sizes skipped" << std::endl;
  EXPECT_GT(ran, 50);
}

TEST(AesGcmKeyTest, RefusesWrongSizes) {
  EXPECT_EQ(AesGcmKey::New(SecretBytes::CopyOf(std::string(16, 'k'))).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto key = *AesGcmKey::New(RandomSecret(32));
  std::string out;
  EXPECT_EQ(key->SealAppend("short", "x", {}, &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(key->Open("short", std::string(20, 'x'), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsDecryptionFailure(key->Open(std::string(12, 'n'), "tooshort", {}).status()));
}

TEST(AesGcmKeyTest, AssociatedDataIsTheConcatenationOfItsPieces) {
  auto key = *AesGcmKey::New(RandomSecret(32));
  const std::string nonce = RandomBytes(12);
  std::string sealed;
  ASSERT_TRUE(key->SealAppend(nonce, "record", {"ab", "cd"}, &sealed).ok());
  EXPECT_TRUE(key->Open(nonce, sealed, {"abcd"}).ok());
  EXPECT_TRUE(key->Open(nonce, sealed, {"a", "", "bcd"}).ok());
  EXPECT_TRUE(IsDecryptionFailure(key->Open(nonce, sealed, {"abc"}).status()));
  EXPECT_TRUE(IsDecryptionFailure(key->Open(nonce, sealed, {}).status()));
}

TEST(AesGcmKeyTest, ManyThreadsShareOneKey) {
  auto key = *AesGcmKey::New(RandomSecret(32));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 24; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const std::string nonce = RandomBytes(12);
        const std::string msg = absl::StrCat("thread ", t, " message ", i);
        std::string sealed;
        if (!key->SealAppend(nonce, msg, {"ad"}, &sealed).ok()) ++failures;
        // Every few messages a failed tag, which must not spoil the pool.
        if (i % 7 == 0 && key->Open(nonce, sealed, {"other"}).ok()) ++failures;
        absl::StatusOr<std::string> opened = key->Open(nonce, sealed, {"ad"});
        if (!opened.ok() || *opened != msg) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace clavis::crypto
