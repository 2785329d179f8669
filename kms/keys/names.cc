#include "kms/keys/names.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace clavis::kms {
namespace {

bool IsIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool IsSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '/' || c == '=' || c == '-';
}

absl::Status ValidateId(absl::string_view what, absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " id is empty"));
  if (id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " id ", QuoteForError(id), " is longer than ", kMaxIdLength, " characters"));
  }
  if (id[0] == '_' || id[0] == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " id ", QuoteForError(id), " must start with a letter or digit"));
  }
  for (char c : id) {
    if (!IsIdChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " id ", QuoteForError(id), " may contain only a-z, 0-9, '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

// Splits "tenants/{t}/keys/{k}" off the front of `name`; the rest (after a
// '/') goes to `rest`, empty if none.
absl::StatusOr<KeyName> ParseKeyPrefix(absl::string_view name, absl::string_view* rest) {
  constexpr absl::string_view kUsage = "expected tenants/{tenant}/keys/{key}";
  std::vector<absl::string_view> parts = absl::StrSplit(name, absl::MaxSplits('/', 4));
  if (parts.size() < 4 || parts[0] != "tenants" || parts[2] != "keys") {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed key name ", QuoteForError(name), ": ", kUsage));
  }
  KeyName key{std::string(parts[1]), std::string(parts[3])};
  if (auto s = ValidateTenantId(key.tenant); !s.ok()) return s;
  if (auto s = ValidateKeyId(key.key_id); !s.ok()) return s;
  *rest = parts.size() == 5 ? parts[4] : absl::string_view();
  if (parts.size() == 5 && rest->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed name ", QuoteForError(name), ": trailing '/'"));
  }
  return key;
}

}  // namespace

std::string QuoteForError(absl::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "\"" + absl::CHexEscape(text.substr(0, kMax)) + "\"";
  if (text.size() > kMax) absl::StrAppend(&out, "...");
  return out;
}

absl::Status ValidateTenantId(absl::string_view tenant) { return ValidateId("tenant", tenant); }
absl::Status ValidateKeyId(absl::string_view key_id) { return ValidateId("key", key_id); }

absl::Status ValidateSegment(absl::string_view segment) {
  if (segment.empty()) return absl::InvalidArgumentError("segment is empty");
  if (segment.size() > kMaxSegmentLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segment ", QuoteForError(segment), " is longer than ", kMaxSegmentLength, " characters"));
  }
  for (char c : segment) {
    if (!IsSegmentChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "segment ", QuoteForError(segment), " may contain only letters, digits and . _ / = -"));
    }
  }
  for (absl::string_view part : absl::StrSplit(segment, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("segment ", QuoteForError(segment),
                       " has an empty, '.' or '..' part between '/' separators"));
    }
  }
  return absl::OkStatus();
}

std::string KeyName::ToString() const { return absl::StrCat("tenants/", tenant, "/keys/", key_id); }

std::string KeyVersionName::ToString() const {
  return absl::StrCat(key.ToString(), "/versions/", version);
}

std::string SegmentName::ToString() const {
  return absl::StrCat(key.ToString(), "/segments/", segment);
}

absl::StatusOr<std::string> ParseTenantName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, "tenants/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed tenant name ", QuoteForError(name), ": expected tenants/{tenant}"));
  }
  if (auto s = ValidateTenantId(name); !s.ok()) return s;
  return std::string(name);
}

absl::StatusOr<KeyName> ParseKeyName(absl::string_view name) {
  absl::string_view rest;
  auto key = ParseKeyPrefix(name, &rest);
  if (!key.ok()) return key.status();
  if (!rest.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("malformed key name ", QuoteForError(name),
                                                   ": expected tenants/{tenant}/keys/{key}"));
  }
  return key;
}

absl::StatusOr<KeyVersionName> ParseKeyVersionName(absl::string_view name) {
  absl::string_view rest;
  auto key = ParseKeyPrefix(name, &rest);
  if (!key.ok()) return key.status();
  uint32_t version = 0;
  const bool digits_only = absl::ConsumePrefix(&rest, "versions/") && !rest.empty() &&
                           rest.size() <= 10 && rest[0] != '0' &&
                           rest.find_first_not_of("0123456789") == absl::string_view::npos;
  if (!digits_only || !absl::SimpleAtoi(rest, &version) || version == 0 || version > 0x7fffffffu) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed key version name ", QuoteForError(name),
                     ": expected tenants/{tenant}/keys/{key}/versions/{n} with n >= 1"));
  }
  return KeyVersionName{*std::move(key), version};
}

absl::StatusOr<SegmentName> ParseSegmentName(absl::string_view name) {
  absl::string_view rest;
  auto key = ParseKeyPrefix(name, &rest);
  if (!key.ok()) return key.status();
  if (!absl::ConsumePrefix(&rest, "segments/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed segment name ", QuoteForError(name),
                     ": expected tenants/{tenant}/keys/{key}/segments/{segment}"));
  }
  if (auto s = ValidateSegment(rest); !s.ok()) return s;
  return SegmentName{*std::move(key), std::string(rest)};
}

}  // namespace clavis::kms
