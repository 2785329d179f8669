#include "crypto/byte_io.h"

#include <cstdlib>

namespace clavis::crypto {

bool ByteReader::Fail() {
  ok_ = false;
  rest_ = {};
  return false;
}

bool ByteReader::ReadBytes(size_t n, absl::string_view* out) {
  if (!ok_ || rest_.size() < n) return Fail();
  *out = rest_.substr(0, n);
  rest_.remove_prefix(n);
  return true;
}

bool ByteReader::ReadU8(uint8_t* out) {
  absl::string_view b;
  if (!ReadBytes(1, &b)) return false;
  *out = static_cast<uint8_t>(b[0]);
  return true;
}

bool ByteReader::ReadU16(uint16_t* out) {
  absl::string_view b;
  if (!ReadBytes(2, &b)) return false;
  *out = static_cast<uint16_t>((static_cast<uint8_t>(b[0]) << 8) | static_cast<uint8_t>(b[1]));
  return true;
}

bool ByteReader::ReadU32(uint32_t* out) {
  absl::string_view b;
  if (!ReadBytes(4, &b)) return false;
  uint32_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  *out = v;
  return true;
}

bool ByteReader::ReadU64(uint64_t* out) {
  absl::string_view b;
  if (!ReadBytes(8, &b)) return false;
  uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  *out = v;
  return true;
}

bool ByteReader::ReadU8Prefixed(absl::string_view* out) {
  uint8_t n;
  return ReadU8(&n) && ReadBytes(n, out);
}

bool ByteReader::ReadU16Prefixed(absl::string_view* out) {
  uint16_t n;
  return ReadU16(&n) && ReadBytes(n, out);
}

bool ByteReader::ReadU32Prefixed(absl::string_view* out) {
  uint32_t n;
  return ReadU32(&n) && ReadBytes(n, out);
}

absl::string_view ByteReader::ReadRest() {
  absl::string_view r = rest_;
  rest_ = {};
  return r;
}

void ByteWriter::U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
void ByteWriter::U16(uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out_->append(b, 2);
}
void ByteWriter::U32(uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out_->append(b, 4);
}
void ByteWriter::U64(uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out_->append(b, 8);
}
void ByteWriter::Bytes(absl::string_view b) { out_->append(b.data(), b.size()); }

void ByteWriter::U8Prefixed(absl::string_view b) {
  if (b.size() > 0xff) std::abort();
  U8(static_cast<uint8_t>(b.size()));
  Bytes(b);
}
void ByteWriter::U16Prefixed(absl::string_view b) {
  if (b.size() > 0xffff) std::abort();
  U16(static_cast<uint16_t>(b.size()));
  Bytes(b);
}
void ByteWriter::U32Prefixed(absl::string_view b) {
  if (b.size() > 0xffffffffull) std::abort();
  U32(static_cast<uint32_t>(b.size()));
  Bytes(b);
}

}  // namespace clavis::crypto
