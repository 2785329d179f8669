#include "crypto/kdf.h"

#include <atomic>
#include <iostream>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "crypto/secret_bytes.h"
#include "crypto/testing/wycheproof.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

using ::clavis::crypto::testing::HexToBytes;
using ::clavis::crypto::testing::LoadWycheproof;
using ::clavis::crypto::testing::WycheproofCase;

SecretBytes Secret(absl::string_view bytes) { return SecretBytes::CopyOf(bytes); }

int NumberOfTests(const testing::WycheproofFile& file) {
  auto it = file.root.fields().find("numberOfTests");
  return it == file.root.fields().end() ? -1 : static_cast<int>(it->second.number_value());
}

// ---------------------------------------------------------------- HKDF

TEST(HkdfSha256Test, MatchesAllWycheproofVectors) {
  const std::string name = "hkdf_sha256_test.json";
  auto file = LoadWycheproof(name);
  ASSERT_TRUE(file.ok()) << file.status();
  int valid_ok = 0, invalid_rejected = 0;
  for (const WycheproofCase& c : (*file)->cases) {
    SCOPED_TRACE(::testing::Message() << name << " tcId " << c.tc_id << " " << c.comment);
    const double size = c.Num("size");
    ASSERT_GT(size, 0);
    auto okm =
        HkdfSha256(Secret(c.Hex("ikm")), c.Hex("salt"), c.Hex("info"), static_cast<size_t>(size));
    if (c.result == "valid") {
      ASSERT_TRUE(okm.ok()) << okm.status();
      EXPECT_EQ(absl::BytesToHexString(okm->view()), c.Str("okm"));
      ++valid_ok;
    } else {
      ASSERT_EQ(c.result, "invalid");
      EXPECT_EQ(okm.status().code(), absl::StatusCode::kInvalidArgument);
      ++invalid_rejected;
    }
  }
  std::cout << name << ": " << (*file)->cases.size() << " vectors: " << valid_ok << " valid ok, "
            << invalid_rejected << " invalid rejected" << std::endl;
  EXPECT_EQ(valid_ok + invalid_rejected, static_cast<int>((*file)->cases.size()));
  EXPECT_EQ(static_cast<int>((*file)->cases.size()), NumberOfTests(**file));
}

TEST(HkdfSha256Test, MatchesRfc5869TestCase1) {
  auto okm =
      HkdfSha256(Secret(HexToBytes("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")),
                 HexToBytes("000102030405060708090a0b0c"), HexToBytes("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(absl::BytesToHexString(okm->view()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfSha256Test, EmptySaltEqualsThirtyTwoZeroBytes) {
  const SecretBytes ikm = Secret("input key material");
  auto with_empty = HkdfSha256(ikm, "", "context", 64);
  auto with_zeros = HkdfSha256(ikm, std::string(32, '\0'), "context", 64);
  ASSERT_TRUE(with_empty.ok()) << with_empty.status();
  ASSERT_TRUE(with_zeros.ok()) << with_zeros.status();
  EXPECT_EQ(*with_empty, *with_zeros);
}

TEST(HkdfSha256Test, EmptyInputKeyMaterialAndInfoWork) {
  auto okm = HkdfSha256(SecretBytes(), "", "", 32);
  ASSERT_TRUE(okm.ok()) << okm.status();
  EXPECT_EQ(okm->size(), 32u);
}

TEST(HkdfSha256Test, DifferentInfoGivesDifferentKeys) {
  const SecretBytes ikm = Secret("input key material");
  auto a = HkdfSha256(ikm, "salt", "purpose a", 32);
  auto b = HkdfSha256(ikm, "salt", "purpose b", 32);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(HkdfSha256Test, RejectsOutputSizeZero) {
  auto okm = HkdfSha256(Secret("ikm"), "salt", "info", 0);
  EXPECT_EQ(okm.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HkdfSha256Test, AcceptsMaximumOutputSizeAndRejectsOneMore) {
  EXPECT_TRUE(HkdfSha256(Secret("ikm"), "salt", "info", 8160).ok());
  auto too_long = HkdfSha256(Secret("ikm"), "salt", "info", 8161);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HkdfSha256Test, RejectsInfoLongerThan1024BytesWithInvalidArgument) {
  EXPECT_TRUE(HkdfSha256(Secret("ikm"), "salt", std::string(1024, 'i'), 32).ok());
  auto too_long = HkdfSha256(Secret("ikm"), "salt", std::string(1025, 'i'), 32);
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- HMAC

TEST(HmacSha256Test, MatchesAllWycheproofVectors) {
  const std::string name = "hmac_sha256_test.json";
  auto file = LoadWycheproof(name);
  ASSERT_TRUE(file.ok()) << file.status();
  int valid_ok = 0, invalid_rejected = 0;
  for (const WycheproofCase& c : (*file)->cases) {
    SCOPED_TRACE(::testing::Message() << name << " tcId " << c.tc_id << " " << c.comment);
    const SecretBytes key = Secret(c.Hex("key"));
    const std::string msg = c.Hex("msg");
    const std::string tag = c.Hex("tag");
    ASSERT_EQ(key.size() * 8, static_cast<size_t>(c.Num("keySize")));
    ASSERT_EQ(tag.size() * 8, static_cast<size_t>(c.Num("tagSize")));
    // Every tag in the file is at least 16 bytes, so none is refused by
    // design; a shorter one would fail this assertion rather than be skipped.
    ASSERT_GE(tag.size(), 16u);
    const absl::Status verified = VerifyHmacSha256(key, msg, tag);
    if (c.result == "valid") {
      auto full = HmacSha256(key, msg);
      ASSERT_TRUE(full.ok()) << full.status();
      ASSERT_EQ(full->size(), 32u);
      EXPECT_EQ(absl::BytesToHexString(full->substr(0, tag.size())), c.Str("tag"));
      // The pre-keyed form gives the same tag.
      auto keyed = HmacSha256Key::New(key);
      ASSERT_TRUE(keyed.ok()) << keyed.status();
      auto again = keyed->Compute(msg);
      ASSERT_TRUE(again.ok()) << again.status();
      EXPECT_EQ(*again, *full);
      EXPECT_TRUE(verified.ok()) << verified;
      ++valid_ok;
    } else {
      ASSERT_EQ(c.result, "invalid");
      EXPECT_EQ(verified, absl::InvalidArgumentError("MAC verification failed"));
      ++invalid_rejected;
    }
  }
  std::cout << name << ": " << (*file)->cases.size() << " vectors: " << valid_ok << " valid ok, "
            << invalid_rejected << " invalid rejected, 0 refused by design (tags < 16 bytes)"
            << std::endl;
  EXPECT_EQ(valid_ok + invalid_rejected, static_cast<int>((*file)->cases.size()));
  EXPECT_EQ(static_cast<int>((*file)->cases.size()), NumberOfTests(**file));
}

TEST(HmacSha256Test, MatchesRfc4231TestCase2) {
  auto tag = HmacSha256(Secret("Jefe"), "what do ya want for nothing?");
  ASSERT_TRUE(tag.ok()) << tag.status();
  EXPECT_EQ(absl::BytesToHexString(*tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256KeyTest, EachComputeStartsFromTheKeyAloneAndCopiesShareIt) {
  auto key = HmacSha256Key::New(Secret("Jefe"));
  ASSERT_TRUE(key.ok()) << key.status();
  const HmacSha256Key copy = *key;
  // Twice the same message: nothing of the first computation carries over.
  const HmacSha256Key& original = *key;
  for (const HmacSha256Key* k : {&original, &original, &copy}) {
    auto tag = k->Compute("what do ya want for nothing?");
    ASSERT_TRUE(tag.ok()) << tag.status();
    EXPECT_EQ(absl::BytesToHexString(*tag),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
  auto empty = HmacSha256Key::New(SecretBytes());
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(absl::BytesToHexString(*empty->Compute("")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(HmacSha256KeyTest, ConcurrentComputesEachGetTheirOwnMessagesTag) {
  const SecretBytes secret = Secret("a key shared by every thread of a server");
  auto key = HmacSha256Key::New(secret);
  ASSERT_TRUE(key.ok()) << key.status();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const std::string message = absl::StrCat("thread ", t, " message ", i);
        auto tag = key->Compute(message);
        if (!tag.ok() || *tag != *HmacSha256(secret, message)) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(HmacSha256Test, EmptyKeyAndEmptyMessageWork) {
  auto tag = HmacSha256(SecretBytes(), "");
  ASSERT_TRUE(tag.ok()) << tag.status();
  EXPECT_EQ(absl::BytesToHexString(*tag),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_TRUE(VerifyHmacSha256(SecretBytes(), "", *tag).ok());
}

TEST(HmacSha256Test, VerifyAcceptsFullAndTruncatedTags) {
  const SecretBytes key = Secret("0123456789abcdef0123456789abcdef");
  auto tag = HmacSha256(key, "message");
  ASSERT_TRUE(tag.ok());
  EXPECT_TRUE(VerifyHmacSha256(key, "message", *tag).ok());
  EXPECT_TRUE(VerifyHmacSha256(key, "message", tag->substr(0, 16)).ok());
  EXPECT_TRUE(VerifyHmacSha256(key, "message", tag->substr(0, 20)).ok());
}

TEST(HmacSha256Test, VerifyRejectsFlippedBitWrongKeyAndWrongMessage) {
  const SecretBytes key = Secret("0123456789abcdef0123456789abcdef");
  auto tag = HmacSha256(key, "message");
  ASSERT_TRUE(tag.ok());
  const absl::Status mismatch = absl::InvalidArgumentError("MAC verification failed");
  for (size_t i = 0; i < tag->size(); ++i) {
    std::string flipped = *tag;
    flipped[i] ^= 0x01;
    EXPECT_EQ(VerifyHmacSha256(key, "message", flipped), mismatch) << "byte " << i;
  }
  EXPECT_EQ(VerifyHmacSha256(Secret("another key"), "message", *tag), mismatch);
  EXPECT_EQ(VerifyHmacSha256(key, "messagE", *tag), mismatch);
}

TEST(HmacSha256Test, VerifyRefusesTagsShorterThan16Bytes) {
  const SecretBytes key = Secret("key");
  auto tag = HmacSha256(key, "message");
  ASSERT_TRUE(tag.ok());
  // Even a correct prefix is refused: 15 bytes is too weak.
  for (size_t len : {0, 1, 8, 15}) {
    absl::Status s = VerifyHmacSha256(key, "message", tag->substr(0, len));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << len;
    EXPECT_FALSE(s.ok()) << len;
  }
}

TEST(HmacSha256Test, VerifyRefusesTagsLongerThan32Bytes) {
  const SecretBytes key = Secret("key");
  auto tag = HmacSha256(key, "message");
  ASSERT_TRUE(tag.ok());
  EXPECT_EQ(VerifyHmacSha256(key, "message", *tag + "x").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HmacSha256Test, ErrorMessagesNeverContainKeyOrTagBytes) {
  const std::string key_bytes = "KEYBYTES-0123456789-SECRET";
  const SecretBytes key = Secret(key_bytes);
  auto tag = HmacSha256(key, "message");
  ASSERT_TRUE(tag.ok());
  std::string wrong = *tag;
  wrong[0] ^= 1;
  for (const absl::Status& s :
       {VerifyHmacSha256(key, "message", wrong), VerifyHmacSha256(key, "message", "short")}) {
    ASSERT_FALSE(s.ok());
    const std::string text = s.ToString();
    EXPECT_EQ(text.find("KEYBYTES"), std::string::npos) << text;
    EXPECT_EQ(text.find(tag->substr(0, 4)), std::string::npos) << text;
    EXPECT_EQ(text.find(absl::BytesToHexString(tag->substr(0, 4))), std::string::npos) << text;
  }
}

// ---------------------------------------------------------------- SHA-256

TEST(Sha256Test, MatchesFips180Vectors) {
  EXPECT_EQ(absl::BytesToHexString(Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(absl::BytesToHexString(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(
      absl::BytesToHexString(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

}  // namespace
}  // namespace clavis::crypto
