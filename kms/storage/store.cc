#include "kms/storage/store.h"

#include <utility>

namespace clavis::kms {

WriteBatch& WriteBatch::Expect(absl::string_view key, std::optional<std::string> expected_value) {
  preconditions_.push_back(Precondition{std::string(key), std::move(expected_value)});
  return *this;
}

WriteBatch& WriteBatch::Put(absl::string_view key, std::string value) {
  operations_.push_back(Operation{std::string(key), std::move(value)});
  return *this;
}

WriteBatch& WriteBatch::Delete(absl::string_view key) {
  operations_.push_back(Operation{std::string(key), std::nullopt});
  return *this;
}

}  // namespace clavis::kms
