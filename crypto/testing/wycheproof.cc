#include "crypto/testing/wycheproof.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace clavis::crypto::testing {
namespace {

const google::protobuf::Value* Field(const google::protobuf::Struct* s, const std::string& name) {
  if (s == nullptr) return nullptr;
  auto it = s->fields().find(name);
  return it == s->fields().end() ? nullptr : &it->second;
}

int HexNibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string HexToBytes(const std::string& hex) {
  std::string out;
  if (hex.size() % 2 != 0) {
    ADD_FAILURE() << "odd-length hex in vector file";
    return out;
  }
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexNibble(hex[i]), lo = HexNibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      ADD_FAILURE() << "bad hex in vector file";
      return {};
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string WycheproofCase::Str(const std::string& name) const {
  const google::protobuf::Value* v = Field(test, name);
  if (v == nullptr) v = Field(group, name);
  return v != nullptr && v->has_string_value() ? v->string_value() : std::string();
}

std::string WycheproofCase::Hex(const std::string& name) const { return HexToBytes(Str(name)); }

double WycheproofCase::Num(const std::string& name) const {
  const google::protobuf::Value* v = Field(test, name);
  if (v == nullptr) v = Field(group, name);
  return v != nullptr && v->has_number_value() ? v->number_value() : 0;
}

bool WycheproofCase::HasFlag(const std::string& flag) const {
  const google::protobuf::Value* v = Field(test, "flags");
  if (v == nullptr || !v->has_list_value()) return false;
  for (const auto& f : v->list_value().values()) {
    if (f.string_value() == flag) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<WycheproofFile>> LoadWycheproof(const std::string& file_name) {
  const std::string path = absl::StrCat(CLAVIS_WYCHEPROOF_DIR, "/", file_name);
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("Wycheproof vectors not found at ", path,
                     " (the repository expects ../shared/vectors/wycheproof beside it)"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto file = std::make_unique<WycheproofFile>();
  auto status = google::protobuf::util::JsonStringToMessage(buffer.str(), &file->root);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse ", path, ": ", status.ToString()));
  }
  const google::protobuf::Value* groups = Field(&file->root, "testGroups");
  if (groups == nullptr || !groups->has_list_value()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " has no testGroups"));
  }
  for (const auto& g : groups->list_value().values()) {
    const google::protobuf::Value* tests = Field(&g.struct_value(), "tests");
    if (tests == nullptr) continue;
    for (const auto& t : tests->list_value().values()) {
      WycheproofCase c;
      c.group = &g.struct_value();
      c.test = &t.struct_value();
      c.tc_id = static_cast<int>(c.Num("tcId"));
      c.result = c.Str("result");
      c.comment = c.Str("comment");
      file->cases.push_back(c);
    }
  }
  if (file->cases.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " has no tests"));
  return file;
}

}  // namespace clavis::crypto::testing
