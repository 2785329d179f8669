#include "tools/clavisctl/json_output.h"

#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  std::string json;
  // protobuf 3.21 has its own util::Status, not absl::Status.
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot print the response as JSON: ", status.message().ToString()));
  }
  if (json.empty() || json.back() != '\n') json.push_back('\n');
  return json;
}

namespace {

void NewLine(int depth, std::string* out) {
  out->push_back('\n');
  out->append(static_cast<size_t>(depth) * 2, ' ');
}

// The next character after `i` that is not JSON whitespace, or '\0'.
char NextSignificant(absl::string_view json, size_t i) {
  for (size_t j = i + 1; j < json.size(); ++j) {
    if (!absl::ascii_isspace(static_cast<unsigned char>(json[j]))) return json[j];
  }
  return '\0';
}

}  // namespace

std::string IndentJson(absl::string_view json) {
  std::string out;
  out.reserve(json.size() * 2);
  std::string closers;  // the expected closing brackets, innermost last
  bool in_string = false;
  bool escaped = false;
  bool well_formed = true;
  for (size_t i = 0; i < json.size() && well_formed; ++i) {
    const char c = json[i];
    const unsigned char u = static_cast<unsigned char>(c);
    if (in_string) {
      if (u < 0x20 || u == 0x7f) {
        char escape[8];
        std::snprintf(escape, sizeof(escape), "\\u%04x", u);
        out += escape;
        escaped = false;
        continue;
      }
      out.push_back(c);
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    const int depth = static_cast<int>(closers.size());
    switch (c) {
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        break;
      case '"':
        in_string = true;
        out.push_back(c);
        break;
      case '{':
      case '[': {
        const char closer = c == '{' ? '}' : ']';
        out.push_back(c);
        if (NextSignificant(json, i) == closer) {
          // "{}" and "[]" stay on one line.
          out.push_back(closer);
          i = json.find(closer, i);
          break;
        }
        closers.push_back(closer);
        NewLine(depth + 1, &out);
        break;
      }
      case '}':
      case ']':
        if (closers.empty() || closers.back() != c) {
          well_formed = false;
          break;
        }
        closers.pop_back();
        NewLine(depth - 1, &out);
        out.push_back(c);
        break;
      case ',':
        out.push_back(c);
        NewLine(depth, &out);
        break;
      case ':':
        out += ": ";
        break;
      default:
        if (u < 0x20 || u == 0x7f) well_formed = false;
        out.push_back(c);
        break;
    }
  }
  if (!well_formed || in_string || !closers.empty()) {
    out = TerminalSafe(json);
  }
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

}  // namespace clavis::clavisctl
