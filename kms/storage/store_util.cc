#include "kms/storage/store_util.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace clavis::kms::storage_internal {

std::optional<std::string> PrefixSuccessor(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::nullopt;
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

absl::Status PreconditionFailedError(const WriteBatch::Precondition& failed) {
  return absl::AbortedError(absl::StrCat(
      "precondition failed: key \"", absl::CHexEscape(failed.key), "\" changed concurrently: ",
      failed.expected_value.has_value() ? "it no longer holds the expected value"
                                        : "it exists but was expected to be absent"));
}

}  // namespace clavis::kms::storage_internal
