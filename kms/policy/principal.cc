#include "kms/policy/principal.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kms/keys/names.h"
#include "kms/policy/policy.h"

namespace clavis::kms::policy {
namespace {

absl::Status ValidatePrincipalId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxPrincipalIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal id must be 1-", kMaxPrincipalIdLength, " characters"));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) {
    return absl::InvalidArgumentError(
        absl::StrCat("principal id ", QuoteForError(id), " must start with a letter or digit"));
  }
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '@' &&
        c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("principal id ", QuoteForError(id),
                       " may contain only A-Z, a-z, 0-9, '.', '_', '@', '-'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PrincipalName> ParsePrincipalOrGroup(absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "tenants" ||
      (parts[2] != "principals" && parts[2] != "groups")) {
    return absl::InvalidArgumentError(
        absl::StrCat(QuoteForError(name),
                     " is not tenants/{tenant}/principals/{id} or tenants/{tenant}/groups/{id}"));
  }
  if (absl::Status s = ValidateTenantId(parts[1]); !s.ok()) return s;
  if (absl::Status s = ValidatePrincipalId(parts[3]); !s.ok()) return s;
  return PrincipalName{std::string(parts[1]), parts[2] == "groups", std::string(parts[3])};
}

absl::StatusOr<PrincipalName> ParsePrincipal(absl::string_view name) {
  absl::StatusOr<PrincipalName> parsed = ParsePrincipalOrGroup(name);
  if (!parsed.ok()) return parsed.status();
  if (parsed->is_group) {
    return absl::InvalidArgumentError(
        absl::StrCat(QuoteForError(name), " is a group; a request is made by a principal"));
  }
  return parsed;
}

}  // namespace clavis::kms::policy
