#include "kms/escrow/escrow_bundle.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "crypto/encoding.h"
#include "kms/keys/resource_views.h"
#include "nlohmann/json.hpp"

namespace clavis::kms {
namespace {

using Json = nlohmann::json;

constexpr size_t kWrappedKeySize = 12 + 32 + 16;
constexpr int64_t kMaxVersion = 0xffffffffLL;

absl::Status LineError(size_t line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("escrow bundle line ", line, ": ", what));
}

// The unsigned 32-bit member `name` of `object`, at least 1.
absl::StatusOr<uint32_t> VersionField(const Json& object, const char* name, size_t line) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_number_integer() || it->get<int64_t>() < 1 ||
      it->get<int64_t>() > kMaxVersion) {
    return LineError(line, absl::StrCat("\"", name, "\" must be a whole number from 1 to 2^32-1"));
  }
  return static_cast<uint32_t>(it->get<int64_t>());
}

absl::StatusOr<std::string> StringField(const Json& object, const char* name, size_t line) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) {
    return LineError(line, absl::StrCat("\"", name, "\" must be a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<EscrowHeader> ParseHeader(const Json& j, size_t line) {
  auto format = StringField(j, "format", line);
  if (!format.ok() || *format != kEscrowBundleFormat) {
    return LineError(line,
                     "not an escrow bundle (the first line must have \"format\": "
                     "\"clavis-escrow-bundle\")");
  }
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer()) {
    return LineError(line, "\"version\" is missing");
  }
  if (version->get<int64_t>() != kEscrowBundleVersion) {
    return LineError(line,
                     absl::StrCat("unsupported escrow bundle version ", version->get<int64_t>(),
                                  " (this tool reads version ", kEscrowBundleVersion, ")"));
  }
  EscrowHeader header;
  auto key = StringField(j, "key", line);
  if (!key.ok()) return key.status();
  auto name = ParseKeyName(*key);
  if (!name.ok()) return LineError(line, name.status().message());
  header.key = *std::move(name);
  auto created = StringField(j, "createTime", line);
  if (!created.ok()) return created.status();
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, *created, &header.create_time, &error)) {
    return LineError(line, "\"createTime\" is not an RFC 3339 time");
  }
  auto versions = j.find("keyVersions");
  if (versions == j.end() || !versions->is_array()) {
    return LineError(line, "\"keyVersions\" must be an array");
  }
  for (const Json& v : *versions) {
    if (!v.is_object()) return LineError(line, "\"keyVersions\" entries must be objects");
    EscrowKeyVersion out;
    auto number = VersionField(v, "version", line);
    if (!number.ok()) return number.status();
    out.version = *number;
    auto kcv = StringField(v, "keyCheckValue", line);
    if (!kcv.ok()) return kcv.status();
    out.key_check_value = *std::move(kcv);
    header.key_versions.push_back(std::move(out));
  }
  return header;
}

absl::StatusOr<EscrowSegment> ParseSegment(const Json& j, size_t line) {
  EscrowSegment segment;
  auto label = StringField(j, "segment", line);
  if (!label.ok()) return label.status();
  if (auto s = ValidateSegment(*label); !s.ok()) return LineError(line, s.message());
  segment.segment = *std::move(label);
  auto state = StringField(j, "state", line);
  if (!state.ok()) return state.status();
  segment.state = *std::move(state);
  auto versions = j.find("versions");
  if (versions == j.end() || !versions->is_array()) {
    return LineError(line, "\"versions\" must be an array");
  }
  for (const Json& v : *versions) {
    if (!v.is_object()) return LineError(line, "\"versions\" entries must be objects");
    EscrowSegmentVersion out;
    auto number = VersionField(v, "version", line);
    if (!number.ok()) return number.status();
    auto key_version = VersionField(v, "keyVersion", line);
    if (!key_version.ok()) return key_version.status();
    auto wrapped = StringField(v, "wrappedKey", line);
    if (!wrapped.ok()) return wrapped.status();
    auto bytes = crypto::Base64Decode(*wrapped);
    if (!bytes.ok() || bytes->size() != kWrappedKeySize) {
      return LineError(line, absl::StrCat("\"wrappedKey\" of segment-key version ", *number,
                                          " must be ", kWrappedKeySize, " bytes in base64"));
    }
    out.version = *number;
    out.key_version = *key_version;
    out.wrapped_key = *std::move(bytes);
    segment.versions.push_back(std::move(out));
  }
  return segment;
}

}  // namespace

std::string EncodeEscrowHeader(const EscrowHeader& header) {
  Json versions = Json::array();
  for (const auto& v : header.key_versions) {
    versions.push_back({{"version", v.version}, {"keyCheckValue", v.key_check_value}});
  }
  Json j = {{"format", std::string(kEscrowBundleFormat)},
            {"version", kEscrowBundleVersion},
            {"key", header.key.ToString()},
            {"createTime", FormatTimestamp(header.create_time)},
            {"keyVersions", versions}};
  return j.dump() + "\n";
}

std::string EncodeEscrowSegment(const EscrowSegment& segment) {
  Json versions = Json::array();
  for (const auto& v : segment.versions) {
    versions.push_back({{"version", v.version},
                        {"keyVersion", v.key_version},
                        {"wrappedKey", crypto::Base64Encode(v.wrapped_key)}});
  }
  Json j = {{"segment", segment.segment}, {"state", segment.state}, {"versions", versions}};
  return j.dump() + "\n";
}

std::string EncodeEscrowTrailer(uint64_t segments) {
  return Json{{"end", {{"segments", segments}}}}.dump() + "\n";
}

absl::StatusOr<EscrowBundle> ParseEscrowBundle(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("escrow bundle is empty");
  if (text.back() != '\n') {
    return absl::InvalidArgumentError(
        "escrow bundle is truncated: it does not end with a complete line");
  }
  text.remove_suffix(1);
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  EscrowBundle bundle;
  bool ended = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t line = i + 1;
    if (ended) return LineError(line, "nothing may follow the end line");
    Json j = Json::parse(lines[i].begin(), lines[i].end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return LineError(line, "not a JSON object");
    if (i == 0) {
      auto header = ParseHeader(j, line);
      if (!header.ok()) return header.status();
      bundle.header = *std::move(header);
      continue;
    }
    if (auto end = j.find("end"); end != j.end()) {
      auto count = end->is_object() ? end->find("segments") : end->end();
      if (!end->is_object() || count == end->end() || !count->is_number_unsigned() ||
          count->get<uint64_t>() != bundle.segments.size()) {
        return LineError(line, absl::StrCat("the end line must count the ", bundle.segments.size(),
                                            " segment lines before it"));
      }
      ended = true;
      continue;
    }
    auto segment = ParseSegment(j, line);
    if (!segment.ok()) return segment.status();
    bundle.segments.push_back(*std::move(segment));
  }
  if (!ended) {
    return absl::InvalidArgumentError("escrow bundle is truncated: its end line is missing");
  }
  return bundle;
}

}  // namespace clavis::kms
