#include "tools/clavisctl/input.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace clavis::clavisctl {
namespace {

bool IsBase64Char(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=';
}

}  // namespace

absl::StatusOr<std::string> ReadStream(std::istream& in, absl::string_view what, size_t max_bytes) {
  std::string out;
  char buffer[4096];
  while (in) {
    in.read(buffer, sizeof(buffer));
    out.append(buffer, static_cast<size_t>(in.gcount()));
    if (out.size() > max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " is larger than ", max_bytes, " bytes"));
    }
  }
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", what));
  return out;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, size_t max_bytes) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return absl::InvalidArgumentError(absl::StrCat("cannot open ", absl::CHexEscape(path)));
  }
  return ReadStream(file, absl::CHexEscape(path), max_bytes);
}

absl::StatusOr<std::string> DecodeBase64(absl::string_view text, absl::string_view what) {
  text = absl::StripAsciiWhitespace(text);
  std::string out;
  for (const char c : text) {
    // absl::Base64Unescape skips some characters it should reject; check the
    // alphabet first so a typo is an error, not a silently different blob.
    if (!IsBase64Char(c)) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is not valid base64"));
    }
  }
  if (text.empty() || !absl::Base64Unescape(text, &out)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid base64"));
  }
  return out;
}

absl::StatusOr<std::string> DecodeBlobFile(absl::string_view contents) {
  if (contents.empty()) return absl::InvalidArgumentError("the blob file is empty");
  if (IsBase64Char(contents.front())) return DecodeBase64(contents, "the blob file");
  return std::string(contents);
}

}  // namespace clavis::clavisctl
