// Small helpers shared by the fuzz targets. Test-only.
#ifndef CLAVIS_TESTS_FUZZ_FUZZ_UTIL_H_
#define CLAVIS_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "absl/strings/string_view.h"

// An invariant the code under test must keep for every input. A violation
// aborts, which libFuzzer reports as a crash and saves the input; assert()
// would vanish in NDEBUG builds.
#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

namespace clavis::fuzz {

inline absl::string_view AsView(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

// `original` with `mask` XORed over its first bytes and whatever of `mask`
// runs past its end appended: every change an attacker can make to stored
// bytes, and the unchanged original for an all-zero mask.
inline std::string XorOnto(absl::string_view original, absl::string_view mask) {
  std::string out(original);
  for (size_t i = 0; i < mask.size() && i < out.size(); ++i) out[i] ^= mask[i];
  if (mask.size() > original.size()) {
    out.append(mask.data() + original.size(), mask.size() - original.size());
  }
  return out;
}

// Reads the framing the multi-part targets share: u8 tag, u16 (big-endian)
// length, that many bytes. Short input ends the sequence; a length running
// past the end takes what is left, so every input means something.
class FrameReader {
 public:
  explicit FrameReader(absl::string_view data) : data_(data) {}
  bool Next(uint8_t* tag, absl::string_view* body) {
    if (data_.size() < 3) return false;
    *tag = static_cast<uint8_t>(data_[0]);
    const size_t len = (static_cast<uint8_t>(data_[1]) << 8) | static_cast<uint8_t>(data_[2]);
    data_.remove_prefix(3);
    *body = data_.substr(0, len);
    data_.remove_prefix(body->size());
    return true;
  }

 private:
  absl::string_view data_;
};

// The inverse, for the seed generator.
inline std::string Frame(uint8_t tag, absl::string_view body) {
  std::string out;
  out.push_back(static_cast<char>(tag));
  out.push_back(static_cast<char>((body.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(body.size() & 0xff));
  out.append(body.data(), body.size() > 0xffff ? 0xffff : body.size());
  return out;
}

// A private scratch directory for this fuzzing process, made on first use
// under $TMPDIR (or /tmp) and reused by every input.
inline const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/clavis-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    return new std::string(tmpl);
  }();
  return *dir;
}

}  // namespace clavis::fuzz

#endif  // CLAVIS_TESTS_FUZZ_FUZZ_UTIL_H_
