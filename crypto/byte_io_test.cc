#include "crypto/byte_io.h"

#include <string>

#include "gtest/gtest.h"

namespace clavis::crypto {
namespace {

TEST(ByteIoTest, RoundTripsEveryFieldKind) {
  std::string buf;
  ByteWriter w(&buf);
  w.U8(0xab);
  w.U16(0x1234);
  w.U32(0xdeadbeef);
  w.U64(0x0102030405060708ull);
  w.U8Prefixed("tenant");
  w.U16Prefixed(std::string("seg\0ment", 8));
  w.U32Prefixed("");
  w.Bytes("tail");

  ByteReader r(buf);
  uint8_t a;
  uint16_t b;
  uint32_t c;
  uint64_t d;
  absl::string_view e, f, g;
  ASSERT_TRUE(r.ReadU8(&a) && r.ReadU16(&b) && r.ReadU32(&c) && r.ReadU64(&d));
  ASSERT_TRUE(r.ReadU8Prefixed(&e) && r.ReadU16Prefixed(&f) && r.ReadU32Prefixed(&g));
  EXPECT_EQ(a, 0xab);
  EXPECT_EQ(b, 0x1234);
  EXPECT_EQ(c, 0xdeadbeefu);
  EXPECT_EQ(d, 0x0102030405060708ull);
  EXPECT_EQ(e, "tenant");
  EXPECT_EQ(f, std::string("seg\0ment", 8));
  EXPECT_EQ(g, "");
  EXPECT_EQ(r.ReadRest(), "tail");
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_TRUE(r.ok());
}

TEST(ByteIoTest, ReadPastTheEndFailsAndStaysFailed) {
  std::string buf;
  ByteWriter(&buf).U16Prefixed("abc");
  buf.pop_back();  // truncated: the prefix promises 3 bytes, 2 follow
  ByteReader r(buf);
  absl::string_view out;
  EXPECT_FALSE(r.ReadU16Prefixed(&out));
  EXPECT_FALSE(r.ok());
  uint8_t byte;
  EXPECT_FALSE(r.ReadU8(&byte));  // nothing more is ever read
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(ByteIoTest, EveryTruncationOfAnIntegerFails) {
  const std::string eight(8, '\x7f');
  for (size_t n = 0; n < 8; ++n) {
    ByteReader r(absl::string_view(eight).substr(0, n));
    uint64_t v;
    EXPECT_FALSE(r.ReadU64(&v)) << n;
  }
}

TEST(ByteIoTest, HugeLengthPrefixDoesNotOverread) {
  std::string buf(
      "\xff\xff\xff\xff"
      "x",
      5);
  ByteReader r(buf);
  absl::string_view out;
  EXPECT_FALSE(r.ReadU32Prefixed(&out));
}

}  // namespace
}  // namespace clavis::crypto
