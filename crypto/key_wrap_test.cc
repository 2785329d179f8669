#include "crypto/key_wrap.h"

#include <functional>
#include <iostream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "crypto/testing/wycheproof.h"
#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

using ::clavis::crypto::testing::HexToBytes;
using ::clavis::crypto::testing::LoadWycheproof;
using ::clavis::crypto::testing::WycheproofCase;
using ::clavis::crypto::testing::WycheproofFile;

using WrapFn = std::function<absl::StatusOr<std::string>(const SecretBytes&, const SecretBytes&)>;
using UnwrapFn = std::function<absl::StatusOr<SecretBytes>(const SecretBytes&, absl::string_view)>;

bool IsUnwrapFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument &&
         status.message() == "key unwrap failed";
}

SecretBytes SecretFromHex(const std::string& hex) { return SecretBytes::CopyOf(HexToBytes(hex)); }

std::string FlipBit(std::string s, size_t bit) {
  s[bit / 8] = static_cast<char>(s[bit / 8] ^ (1 << (bit % 8)));
  return s;
}

// Runs every case of a Wycheproof key-wrap file.
//  - valid: wrap gives exactly ct, unwrap gives exactly msg;
//  - invalid: unwrap is rejected; when msg itself cannot be wrapped (its
//    length is outside what the mode accepts), wrap is rejected too. Some
//    invalid cases pair a wrappable msg with a corrupt ct: only unwrap is
//    checked for those;
//  - acceptable: run without crashing, and checked against our contract.
void RunKeyWrapVectors(const std::string& file_name, const WrapFn& wrap, const UnwrapFn& unwrap,
                       const std::function<bool(size_t)>& wrappable) {
  absl::StatusOr<std::unique_ptr<WycheproofFile>> file = LoadWycheproof(file_name);
  ASSERT_TRUE(file.ok()) << file.status();
  int valid_ok = 0, invalid_rejected = 0, acceptable_ran = 0;
  for (const WycheproofCase& c : (*file)->cases) {
    SCOPED_TRACE(absl::StrCat(file_name, " tcId ", c.tc_id, " (", c.comment, ")"));
    const SecretBytes kek = SecretBytes::CopyOf(c.Hex("key"));
    const SecretBytes msg = SecretBytes::CopyOf(c.Hex("msg"));
    const std::string ct = c.Hex("ct");
    ASSERT_EQ(kek.size() * 8, c.Num("keySize"));
    if (c.result == "valid") {
      ASSERT_TRUE(wrappable(msg.size()));
      absl::StatusOr<std::string> wrapped = wrap(kek, msg);
      absl::StatusOr<SecretBytes> unwrapped = unwrap(kek, ct);
      ASSERT_TRUE(wrapped.ok()) << wrapped.status();
      ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
      EXPECT_EQ(HexEncode(*wrapped), HexEncode(ct));
      EXPECT_TRUE(unwrapped->Equals(msg));
      if (*wrapped == ct && unwrapped->Equals(msg)) ++valid_ok;
    } else if (c.result == "invalid") {
      bool ok = true;
      absl::StatusOr<SecretBytes> unwrapped = unwrap(kek, ct);
      EXPECT_TRUE(IsUnwrapFailure(unwrapped.status())) << unwrapped.status();
      ok &= IsUnwrapFailure(unwrapped.status());
      if (!wrappable(msg.size())) {
        absl::StatusOr<std::string> wrapped = wrap(kek, msg);
        EXPECT_EQ(wrapped.status().code(), absl::StatusCode::kInvalidArgument) << wrapped.status();
        ok &= wrapped.status().code() == absl::StatusCode::kInvalidArgument;
      }
      if (ok) ++invalid_rejected;
    } else {
      // "acceptable" (in these files: wrapping an 8-byte key with RFC 3394).
      // Our contract makes anything that wrap would refuse unwrappable too.
      absl::StatusOr<std::string> wrapped = wrap(kek, msg);
      absl::StatusOr<SecretBytes> unwrapped = unwrap(kek, ct);
      if (!wrappable(msg.size())) {
        EXPECT_EQ(wrapped.status().code(), absl::StatusCode::kInvalidArgument);
        EXPECT_TRUE(IsUnwrapFailure(unwrapped.status())) << unwrapped.status();
      }
      ++acceptable_ran;
    }
  }
  const int total = valid_ok + invalid_rejected + acceptable_ran;
  const std::string summary =
      absl::StrCat(file_name, ": ", total, " vectors: ", valid_ok, " valid ok, ", invalid_rejected,
                   " invalid rejected, ", acceptable_ran, " acceptable ran (rejected by contract)");
  std::cout << summary << std::endl;
  ::testing::Test::RecordProperty("wycheproof", summary);
  EXPECT_EQ(total, static_cast<int>((*file)->cases.size()));
  EXPECT_EQ(total, static_cast<int>((*file)->root.fields().at("numberOfTests").number_value()));
}

TEST(KeyWrapWycheproofTest, AesKeyWrapMatchesAllVectors) {
  RunKeyWrapVectors("aes_wrap_test.json", AesKeyWrap, AesKeyUnwrap,
                    [](size_t n) { return n >= 16 && n % 8 == 0; });
}

TEST(KeyWrapWycheproofTest, AesKeyWrapPadMatchesAllVectors) {
  RunKeyWrapVectors("aes_kwp_test.json", AesKeyWrapPad, AesKeyUnwrapPad,
                    [](size_t n) { return n >= 1; });
}

// RFC 3394 section 4.
TEST(AesKeyWrapTest, MatchesRfc3394Examples) {
  struct Example {
    const char* kek;
    const char* key;
    const char* wrapped;
  };
  const Example examples[] = {
      {"000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
       "1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"},
      {"000102030405060708090a0b0c0d0e0f1011121314151617", "00112233445566778899aabbccddeeff",
       "96778b25ae6ca435f92b5b97c050aed2468ab8a17ad84e5d"},
      {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
       "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
       "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"},
  };
  for (const Example& e : examples) {
    SCOPED_TRACE(e.wrapped);
    const SecretBytes kek = SecretFromHex(e.kek);
    absl::StatusOr<std::string> wrapped = AesKeyWrap(kek, SecretFromHex(e.key));
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    EXPECT_EQ(HexEncode(*wrapped), e.wrapped);
    absl::StatusOr<SecretBytes> unwrapped = AesKeyUnwrap(kek, HexToBytes(e.wrapped));
    ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
    EXPECT_TRUE(unwrapped->Equals(SecretFromHex(e.key)));
  }
}

// RFC 5649 section 6.
TEST(AesKeyWrapPadTest, MatchesRfc5649Examples) {
  const SecretBytes kek = SecretFromHex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
  struct Example {
    const char* key;
    const char* wrapped;
  };
  const Example examples[] = {
      {"c37b7e6492584340bed12207808941155068f738",
       "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
      {"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
  };
  for (const Example& e : examples) {
    SCOPED_TRACE(e.wrapped);
    absl::StatusOr<std::string> wrapped = AesKeyWrapPad(kek, SecretFromHex(e.key));
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    EXPECT_EQ(HexEncode(*wrapped), e.wrapped);
    absl::StatusOr<SecretBytes> unwrapped = AesKeyUnwrapPad(kek, HexToBytes(e.wrapped));
    ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
    EXPECT_TRUE(unwrapped->Equals(SecretFromHex(e.key)));
  }
}

class KeyWrapRoundTripTest : public ::testing::TestWithParam<size_t> {};

INSTANTIATE_TEST_SUITE_P(AllKekSizes, KeyWrapRoundTripTest, ::testing::Values(16, 24, 32),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return absl::StrCat("Kek", info.param, "Bytes");
                         });

TEST_P(KeyWrapRoundTripTest, WrapThenUnwrapRoundTrips) {
  const SecretBytes kek = RandomSecret(GetParam());
  for (size_t size : {16, 24, 32, 64, 512}) {
    SCOPED_TRACE(size);
    const SecretBytes key = RandomSecret(size);
    absl::StatusOr<std::string> wrapped = AesKeyWrap(kek, key);
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    EXPECT_EQ(wrapped->size(), size + 8);
    absl::StatusOr<SecretBytes> unwrapped = AesKeyUnwrap(kek, *wrapped);
    ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
    EXPECT_TRUE(unwrapped->Equals(key));
  }
}

TEST_P(KeyWrapRoundTripTest, WrapPadThenUnwrapPadRoundTrips) {
  const SecretBytes kek = RandomSecret(GetParam());
  for (size_t size : {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 513}) {
    SCOPED_TRACE(size);
    const SecretBytes key = RandomSecret(size);
    absl::StatusOr<std::string> wrapped = AesKeyWrapPad(kek, key);
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    EXPECT_EQ(wrapped->size(), (size + 7) / 8 * 8 + 8);
    absl::StatusOr<SecretBytes> unwrapped = AesKeyUnwrapPad(kek, *wrapped);
    ASSERT_TRUE(unwrapped.ok()) << unwrapped.status();
    EXPECT_TRUE(unwrapped->Equals(key));
  }
}

TEST_P(KeyWrapRoundTripTest, UnwrapFailsWithWrongKek) {
  const SecretBytes key = RandomSecret(32);
  absl::StatusOr<std::string> wrapped = AesKeyWrap(RandomSecret(GetParam()), key);
  absl::StatusOr<std::string> wrapped_pad = AesKeyWrapPad(RandomSecret(GetParam()), key);
  ASSERT_TRUE(wrapped.ok() && wrapped_pad.ok());
  const SecretBytes other = RandomSecret(GetParam());
  EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrap(other, *wrapped).status()));
  EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrapPad(other, *wrapped_pad).status()));
}

TEST_P(KeyWrapRoundTripTest, UnwrapFailsOnAnyFlippedBit) {
  const SecretBytes kek = RandomSecret(GetParam());
  absl::StatusOr<std::string> wrapped = AesKeyWrap(kek, RandomSecret(16));
  absl::StatusOr<std::string> wrapped_pad = AesKeyWrapPad(kek, RandomSecret(13));
  ASSERT_TRUE(wrapped.ok() && wrapped_pad.ok());
  for (size_t bit = 0; bit < wrapped->size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrap(kek, FlipBit(*wrapped, bit)).status()));
  }
  for (size_t bit = 0; bit < wrapped_pad->size() * 8; ++bit) {
    SCOPED_TRACE(bit);
    EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrapPad(kek, FlipBit(*wrapped_pad, bit)).status()));
  }
}

TEST_P(KeyWrapRoundTripTest, WrapAndWrapPadAreNotInterchangeable) {
  const SecretBytes kek = RandomSecret(GetParam());
  const SecretBytes key = RandomSecret(32);
  absl::StatusOr<std::string> wrapped = AesKeyWrap(kek, key);
  absl::StatusOr<std::string> wrapped_pad = AesKeyWrapPad(kek, key);
  ASSERT_TRUE(wrapped.ok() && wrapped_pad.ok());
  EXPECT_NE(*wrapped, *wrapped_pad);
  EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrapPad(kek, *wrapped).status()));
  EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrap(kek, *wrapped_pad).status()));
}

TEST(AesKeyWrapTest, WrapRejectsKeysThatAreNotMultiplesOf8OrShorterThan16) {
  const SecretBytes kek = RandomSecret(32);
  for (size_t size : {0, 1, 7, 8, 9, 15, 17, 20, 31}) {
    SCOPED_TRACE(size);
    absl::StatusOr<std::string> wrapped = AesKeyWrap(kek, RandomSecret(size));
    ASSERT_FALSE(wrapped.ok());
    EXPECT_EQ(wrapped.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(AesKeyWrapPadTest, WrapPadRejectsEmptyKey) {
  absl::StatusOr<std::string> wrapped = AesKeyWrapPad(RandomSecret(32), SecretBytes());
  ASSERT_FALSE(wrapped.ok());
  EXPECT_EQ(wrapped.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(KeyWrapTest, AllFunctionsRejectWrongKekSize) {
  const SecretBytes key = RandomSecret(32);
  for (size_t size : {0, 8, 15, 17, 20, 31, 33, 64}) {
    SCOPED_TRACE(size);
    const SecretBytes kek = RandomSecret(size);
    const absl::Status statuses[] = {
        AesKeyWrap(kek, key).status(),
        AesKeyWrapPad(kek, key).status(),
        AesKeyUnwrap(kek, std::string(40, 'x')).status(),
        AesKeyUnwrapPad(kek, std::string(40, 'x')).status(),
    };
    for (const absl::Status& status : statuses) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
      EXPECT_NE(status.message().find("16, 24 or 32"), absl::string_view::npos) << status;
    }
  }
}

TEST(KeyWrapTest, UnwrapRejectsBadLengthsUniformly) {
  const SecretBytes kek = RandomSecret(32);
  for (size_t size : {0, 1, 7, 8, 15, 16, 17, 23, 25, 33, 39}) {
    SCOPED_TRACE(size);
    const std::string wrapped = RandomBytes(size);
    EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrap(kek, wrapped).status()));
    EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrapPad(kek, wrapped).status()));
  }
}

TEST(KeyWrapTest, UnwrapFailsOnTruncatedOrExtendedInput) {
  const SecretBytes kek = RandomSecret(32);
  absl::StatusOr<std::string> wrapped = AesKeyWrap(kek, RandomSecret(32));
  absl::StatusOr<std::string> wrapped_pad = AesKeyWrapPad(kek, RandomSecret(32));
  ASSERT_TRUE(wrapped.ok() && wrapped_pad.ok());
  for (size_t size = 0; size < wrapped->size(); ++size) {
    SCOPED_TRACE(size);
    EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrap(kek, wrapped->substr(0, size)).status()));
    EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrapPad(kek, wrapped_pad->substr(0, size)).status()));
  }
  EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrap(kek, *wrapped + std::string(8, '\0')).status()));
  EXPECT_TRUE(IsUnwrapFailure(AesKeyUnwrapPad(kek, *wrapped_pad + std::string(8, '\0')).status()));
}

TEST(KeyWrapTest, FailedUnwrapErrorDoesNotContainKek) {
  const SecretBytes kek = RandomSecret(32);
  absl::StatusOr<std::string> wrapped = AesKeyWrap(kek, RandomSecret(32));
  ASSERT_TRUE(wrapped.ok());
  const absl::Status status = AesKeyUnwrap(kek, FlipBit(*wrapped, 9)).status();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.ToString().find(HexEncode(kek.view())), std::string::npos) << status;
  EXPECT_EQ(status.ToString().find(std::string(kek.view())), std::string::npos);
}

}  // namespace
}  // namespace clavis::crypto
