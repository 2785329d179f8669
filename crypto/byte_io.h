// Bounds-checked readers and writers for the length-prefixed binary formats
// of docs/FORMAT.md (big-endian integers). Every read that would run past the
// end fails and leaves the reader unusable, so a parser never does pointer
// arithmetic by hand (the BoringSSL CBS idea).
#ifndef CLAVIS_CRYPTO_BYTE_IO_H_
#define CLAVIS_CRYPTO_BYTE_IO_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace clavis::crypto {

class ByteReader {
 public:
  explicit ByteReader(absl::string_view input) : rest_(input) {}

  // Each returns false (and reads nothing more, ever) if the input is short.
  bool ReadU8(uint8_t* out);
  bool ReadU16(uint16_t* out);
  bool ReadU32(uint32_t* out);
  bool ReadU64(uint64_t* out);
  bool ReadBytes(size_t n, absl::string_view* out);
  // A u8/u16/u32 length followed by that many bytes.
  bool ReadU8Prefixed(absl::string_view* out);
  bool ReadU16Prefixed(absl::string_view* out);
  bool ReadU32Prefixed(absl::string_view* out);

  absl::string_view rest() const { return rest_; }
  size_t remaining() const { return rest_.size(); }
  bool ok() const { return ok_; }
  // Consumed and returned the rest.
  absl::string_view ReadRest();

 private:
  bool Fail();
  absl::string_view rest_;
  bool ok_ = true;
};

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}
  void U8(uint8_t v);
  void U16(uint16_t v);
  void U32(uint32_t v);
  void U64(uint64_t v);
  void Bytes(absl::string_view b);
  // REQUIRES: b.size() fits the prefix (checked; aborts otherwise, since it
  // is a programming error caught by validation earlier).
  void U8Prefixed(absl::string_view b);
  void U16Prefixed(absl::string_view b);
  void U32Prefixed(absl::string_view b);

 private:
  std::string* out_;
};

}  // namespace clavis::crypto

#endif  // CLAVIS_CRYPTO_BYTE_IO_H_
