// Helpers shared by the Store backends. Not part of the Store contract.
#ifndef CLAVIS_KMS_STORAGE_STORE_UTIL_H_
#define CLAVIS_KMS_STORAGE_STORE_UTIL_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "kms/storage/store.h"

namespace clavis::kms::storage_internal {

// The smallest key that sorts after every key starting with `prefix`, i.e. the
// exclusive upper bound of the prefix's key range: trailing 0xff bytes are
// dropped and the last remaining byte is incremented ("a\xff" -> "b").
// nullopt if there is no such key (`prefix` is empty or all 0xff): then the
// range is unbounded above, since every key >= such a prefix starts with it.
std::optional<std::string> PrefixSuccessor(absl::string_view prefix);

// The Aborted status every backend returns when `failed` does not hold. It
// names the key (escaped, so binary keys print safely) but never a value:
// values are often key material.
absl::Status PreconditionFailedError(const WriteBatch::Precondition& failed);

}  // namespace clavis::kms::storage_internal

#endif  // CLAVIS_KMS_STORAGE_STORE_UTIL_H_
