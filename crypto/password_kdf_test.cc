#include "crypto/password_kdf.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "crypto/secret_bytes.h"
#include "crypto/testing/wycheproof.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

using ::clavis::crypto::testing::HexToBytes;

// Small parameters so the tests stay fast: 8 MiB, 1 or 2 passes.
Argon2idParams FastParams(uint64_t ops = 1) {
  Argon2idParams params;
  params.ops_limit = ops;
  params.mem_limit_bytes = 8ull << 20;
  return params;
}

const std::string kSalt = "0123456789abcdef";  // 16 bytes

SecretBytes Pass(absl::string_view s) { return SecretBytes::CopyOf(s); }

TEST(Argon2idTest, DefaultParamsAreTheDocumentedOnes) {
  const Argon2idParams params;
  EXPECT_EQ(params.ops_limit, 3u);
  EXPECT_EQ(params.mem_limit_bytes, 256ull << 20);
  EXPECT_EQ(Argon2idParams::kSaltSize, 16u);
}

// Known answer from libsodium's own test suite (test/default/pwhash_argon2id.c,
// tv() vector 6, expected output from pwhash_argon2id.exp): pins the mapping
// of ops_limit / mem_limit_bytes onto crypto_pwhash and the choice of Argon2id.
TEST(Argon2idTest, MatchesLibsodiumKnownAnswer) {
  const SecretBytes passphrase = SecretBytes::CopyOf(
      HexToBytes("b540beb016a5366524d4605156493f9874514a5aa58818cd0c6dfffaa9e90205f17b"));
  const std::string salt = HexToBytes("44071f6d181561670bda728d43fb79b4");
  Argon2idParams params;
  params.ops_limit = 1;
  params.mem_limit_bytes = 1631659;
  auto out = Argon2id(passphrase, salt, params, 231);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(absl::BytesToHexString(out->view()),
            "7fb72409b0987f8190c3729710e98c3f80c5a8727d425fdcde7f3644d467fe973f5b5fee683bd3fce812c"
            "b9ae5e9921a2d06c2f1905e4e839692f2b934b682f11a2fe2b90482ea5dd234863516dba6f52dc0702d32"
            "4ec77d860c2e181f84472bd7104fedce071ffa93c5309494ad51623d214447a7b2b1462dc7d5d55a1f6fd"
            "5b54ce024118d86f0c6489d16545aaa87b6689dad9f2fb47fda9894f8e12b87d978b483ccd4cc5fd9595c"
            "dc7a818452f915ce2f7df95ec12b1c72e3788d473441d884f9748eb14703c21b45d82fd667b85f5b2d98c"
            "13303b3fe76285531a826b6fc0fe8e3dddecf");
}

TEST(Argon2idTest, SameInputsGiveTheSameKey) {
  for (uint64_t ops : {1, 2}) {
    auto a = Argon2id(Pass("correct horse battery staple"), kSalt, FastParams(ops), 32);
    auto b = Argon2id(Pass("correct horse battery staple"), kSalt, FastParams(ops), 32);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(a->size(), 32u);
    EXPECT_EQ(*a, *b) << "ops " << ops;
  }
}

TEST(Argon2idTest, EachInputChangesTheKey) {
  auto base = Argon2id(Pass("passphrase"), kSalt, FastParams(1), 32);
  auto other_pass = Argon2id(Pass("passphrasE"), kSalt, FastParams(1), 32);
  auto other_salt = Argon2id(Pass("passphrase"), "0123456789abcdeF", FastParams(1), 32);
  auto other_ops = Argon2id(Pass("passphrase"), kSalt, FastParams(2), 32);
  Argon2idParams more_memory = FastParams(1);
  more_memory.mem_limit_bytes += 1 << 20;
  auto other_mem = Argon2id(Pass("passphrase"), kSalt, more_memory, 32);
  for (const auto* r : {&base, &other_pass, &other_salt, &other_ops, &other_mem}) {
    ASSERT_TRUE(r->ok()) << r->status();
  }
  EXPECT_NE(*base, *other_pass);
  EXPECT_NE(*base, *other_salt);
  EXPECT_NE(*base, *other_ops);
  EXPECT_NE(*base, *other_mem);
}

TEST(Argon2idTest, EmptyPassphraseIsAccepted) {
  auto out = Argon2id(SecretBytes(), kSalt, FastParams(1), 32);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->size(), 32u);
}

TEST(Argon2idTest, RejectsSaltsThatAreNot16Bytes) {
  for (size_t size : {0, 8, 15, 17, 32}) {
    auto out = Argon2id(Pass("passphrase"), std::string(size, 's'), FastParams(1), 32);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << size;
  }
}

TEST(Argon2idTest, RejectsOpsLimitBelowMinimum) {
  auto out = Argon2id(Pass("passphrase"), kSalt, FastParams(0), 32);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Argon2idTest, RejectsMemoryLimitBelowMinimum) {
  Argon2idParams params = FastParams(1);
  params.mem_limit_bytes = 8191;  // libsodium's minimum is 8 KiB
  auto out = Argon2id(Pass("passphrase"), kSalt, params, 32);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  params.mem_limit_bytes = 0;
  EXPECT_EQ(Argon2id(Pass("passphrase"), kSalt, params, 32).status().code(),
            absl::StatusCode::kInvalidArgument);
  params.mem_limit_bytes = 8192;
  EXPECT_TRUE(Argon2id(Pass("passphrase"), kSalt, params, 32).ok());
}

TEST(Argon2idTest, RejectsOutputShorterThan16Bytes) {
  EXPECT_EQ(Argon2id(Pass("passphrase"), kSalt, FastParams(1), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Argon2id(Pass("passphrase"), kSalt, FastParams(1), 15).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Argon2id(Pass("passphrase"), kSalt, FastParams(1), 16).ok());
}

TEST(Argon2idTest, ErrorMessagesNeverContainPassphraseOrSaltBytes) {
  const SecretBytes passphrase = Pass("PASSPHRASE-SECRET-BYTES");
  for (const absl::Status& s : {Argon2id(passphrase, "SALTSALT", FastParams(1), 32).status(),
                                Argon2id(passphrase, kSalt, FastParams(0), 32).status()}) {
    ASSERT_FALSE(s.ok());
    const std::string text = s.ToString();
    EXPECT_EQ(text.find("PASSPHRASE"), std::string::npos) << text;
    EXPECT_EQ(text.find("SECRET"), std::string::npos) << text;
    EXPECT_EQ(text.find("SALTSALT"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace clavis::crypto
