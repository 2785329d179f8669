// The bytes that encrypt and decrypt work on: read from a file or stdin
// (bounded, so piping a stream in by mistake fails fast instead of filling
// memory) and decoded from base64 where the CLI takes text.
#ifndef CLAVIS_TOOLS_CLAVISCTL_INPUT_H_
#define CLAVIS_TOOLS_CLAVISCTL_INPUT_H_

#include <cstddef>
#include <istream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::clavisctl {

// Far above anything the API accepts (Encrypt takes 4 KiB, a blob is at most
// 8 KiB); the server enforces the real limits and says so.
constexpr size_t kMaxInputBytes = 1 << 20;

// All of `in`, or InvalidArgument naming `what` if it holds more than
// max_bytes.
absl::StatusOr<std::string> ReadStream(std::istream& in, absl::string_view what,
                                       size_t max_bytes = kMaxInputBytes);
// All of the file at `path` (binary). Any failure to open or read it is
// InvalidArgument naming the path: it is the caller's argument that is wrong,
// and NotFound would exit with the code that means "no such key".
absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes = kMaxInputBytes);

// Standard base64 (padding optional, surrounding whitespace ignored), as
// encrypt and datakey print it. `what` names the argument in errors; the text
// itself is not echoed.
absl::StatusOr<std::string> DecodeBase64(absl::string_view text, absl::string_view what);

// A --blob-file's contents: base64 text (what `clavisctl encrypt > f` writes)
// or the raw blob bytes. A raw blob starts with its format version byte (1),
// never a base64 character, so the first byte decides.
absl::StatusOr<std::string> DecodeBlobFile(absl::string_view contents);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_INPUT_H_
