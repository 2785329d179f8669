#include "crypto/secret_bytes.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

TEST(SecretBytesTest, DefaultIsEmptyWithoutAllocation) {
  SecretBytes s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.data(), nullptr);
  EXPECT_TRUE(s.view().empty());
  EXPECT_TRUE(s.span().empty());
}

TEST(SecretBytesTest, SizedConstructorGivesZeroBytes) {
  SecretBytes s(48);
  ASSERT_EQ(s.size(), 48u);
  ASSERT_NE(s.data(), nullptr);
  EXPECT_FALSE(s.empty());
  EXPECT_EQ(s.view(), std::string(48, '\0'));
  SecretBytes zero(0);
  EXPECT_TRUE(zero.empty());
}

TEST(SecretBytesTest, CopyOfStringViewCopiesTheBytes) {
  const std::string source("key\0material", 12);
  SecretBytes s = SecretBytes::CopyOf(source);
  EXPECT_EQ(s.size(), source.size());
  EXPECT_EQ(s.view(), source);
  EXPECT_NE(reinterpret_cast<const char*>(s.data()), source.data());
}

TEST(SecretBytesTest, CopyOfSpanCopiesTheBytes) {
  const std::vector<uint8_t> source = {0x00, 0x01, 0xfe, 0xff};
  SecretBytes s = SecretBytes::CopyOf(absl::MakeConstSpan(source));
  ASSERT_EQ(s.size(), source.size());
  EXPECT_EQ(std::vector<uint8_t>(s.span().begin(), s.span().end()), source);
}

TEST(SecretBytesTest, CopyOfEmptyIsEmpty) {
  EXPECT_TRUE(SecretBytes::CopyOf(absl::string_view()).empty());
  EXPECT_TRUE(SecretBytes::CopyOf(absl::Span<const uint8_t>()).empty());
}

TEST(SecretBytesTest, MoveConstructionLeavesSourceEmpty) {
  SecretBytes source = SecretBytes::CopyOf("0123456789abcdef");
  const uint8_t* data = source.data();
  SecretBytes target(std::move(source));
  EXPECT_EQ(target.view(), "0123456789abcdef");
  EXPECT_EQ(target.data(), data);  // the buffer moved, it was not copied
  EXPECT_TRUE(source.empty());     // NOLINT(bugprone-use-after-move): checked on purpose
  EXPECT_EQ(source.data(), nullptr);
}

TEST(SecretBytesTest, MoveAssignmentLeavesSourceEmptyAndReplacesTarget) {
  SecretBytes source = SecretBytes::CopyOf("new contents");
  SecretBytes target = SecretBytes::CopyOf("old");
  target = std::move(source);
  EXPECT_EQ(target.view(), "new contents");
  EXPECT_TRUE(source.empty());  // NOLINT(bugprone-use-after-move): checked on purpose
  EXPECT_EQ(source.data(), nullptr);
}

TEST(SecretBytesTest, MovedFromObjectIsReusable) {
  SecretBytes a = SecretBytes::CopyOf("first");
  SecretBytes b = std::move(a);
  a = SecretBytes::CopyOf("second");  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.view(), "second");
  EXPECT_EQ(b.view(), "first");
}

TEST(SecretBytesTest, CloneIsAnEqualIndependentCopy) {
  SecretBytes original = SecretBytes::CopyOf("secret value");
  SecretBytes clone = original.Clone();
  EXPECT_TRUE(clone.Equals(original));
  EXPECT_EQ(clone.view(), original.view());
  EXPECT_NE(clone.data(), original.data());
  clone.data()[0] ^= 1;
  EXPECT_FALSE(clone.Equals(original));
  EXPECT_EQ(original.view(), "secret value");
}

TEST(SecretBytesTest, CloneOfEmptyIsEmpty) { EXPECT_TRUE(SecretBytes().Clone().empty()); }

TEST(SecretBytesTest, EqualsComparesContents) {
  EXPECT_TRUE(SecretBytes::CopyOf("abc").Equals(SecretBytes::CopyOf("abc")));
  EXPECT_TRUE(SecretBytes().Equals(SecretBytes()));
  EXPECT_TRUE(SecretBytes().Equals(SecretBytes::CopyOf("")));
  EXPECT_TRUE(SecretBytes::CopyOf("abc") == SecretBytes::CopyOf("abc"));
  EXPECT_FALSE(SecretBytes::CopyOf("abc") != SecretBytes::CopyOf("abc"));
}

TEST(SecretBytesTest, EqualsIsFalseForDifferentContents) {
  EXPECT_FALSE(SecretBytes::CopyOf("abc").Equals(SecretBytes::CopyOf("abd")));
  EXPECT_FALSE(SecretBytes::CopyOf("abc").Equals(SecretBytes::CopyOf("Abc")));
  EXPECT_TRUE(SecretBytes::CopyOf("abc") != SecretBytes::CopyOf("xbc"));
}

TEST(SecretBytesTest, EqualsIsFalseForDifferentSizes) {
  EXPECT_FALSE(SecretBytes::CopyOf("abc").Equals(SecretBytes::CopyOf("abcd")));
  EXPECT_FALSE(SecretBytes::CopyOf("abcd").Equals(SecretBytes::CopyOf("abc")));
  EXPECT_FALSE(SecretBytes::CopyOf(std::string("a\0", 2)).Equals(SecretBytes::CopyOf("a")));
  EXPECT_FALSE(SecretBytes().Equals(SecretBytes(1)));
}

TEST(ConstantTimeEqualsTest, ComparesContentsAndLengths) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("same", "same"));
  EXPECT_FALSE(ConstantTimeEquals("same", "sAme"));
  EXPECT_FALSE(ConstantTimeEquals("same", "same!"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
}

TEST(SecureWipeTest, ZeroesTheBuffer) {
  std::string buffer = "sensitive data";
  SecureWipe(buffer.data(), buffer.size());
  EXPECT_EQ(buffer, std::string(14, '\0'));
  SecureWipe(nullptr, 0);  // a no-op, not a crash
}

}  // namespace
}  // namespace clavis::crypto

namespace clavis::crypto {
namespace {

// Keys share pooled arenas: a cache's worth of live keys must not exhaust
// the process's memory mappings (sodium_malloc alone maps 4 pages per key,
// and Linux allows 65,530 mappings by default).
TEST(SecretBytesPoolTest, TwoHundredThousandLiveKeysFitAndStayDistinct) {
  std::vector<SecretBytes> keys;
  keys.reserve(200000);
  for (int i = 0; i < 200000; ++i) {
    SecretBytes k(32);
    k.data()[0] = static_cast<uint8_t>(i);
    k.data()[31] = static_cast<uint8_t>(i >> 8);
    keys.push_back(std::move(k));
  }
  for (int i = 0; i < 200000; i += 997) {
    EXPECT_EQ(keys[i].data()[0], static_cast<uint8_t>(i));
    EXPECT_EQ(keys[i].data()[31], static_cast<uint8_t>(i >> 8));
  }
}

TEST(SecretBytesPoolTest, FreedSlotsComeBackZeroed) {
  for (int round = 0; round < 3; ++round) {
    std::vector<SecretBytes> keys;
    for (int i = 0; i < 2000; ++i) {
      SecretBytes k(64);
      for (size_t j = 0; j < k.size(); ++j) {
        EXPECT_EQ(k.data()[j], 0) << "slot reused without wiping";
        k.data()[j] = 0xA5;
      }
      keys.push_back(std::move(k));
    }
  }
}

TEST(SecretBytesPoolTest, SizesAroundTheSlotLimitWork) {
  for (size_t size : {1u, 63u, 64u, 65u, 4096u}) {
    SecretBytes a(size);
    std::memset(a.data(), 7, size);
    SecretBytes b = a.Clone();
    EXPECT_TRUE(a == b);
    b.data()[size - 1] ^= 1;
    EXPECT_FALSE(a == b);
  }
}

}  // namespace
}  // namespace clavis::crypto
