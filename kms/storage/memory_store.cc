#include "kms/storage/memory_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "kms/storage/store_util.h"

namespace clavis::kms {

absl::StatusOr<std::optional<std::string>> MemoryStore::Get(absl::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

absl::Status MemoryStore::Put(absl::string_view key, absl::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  data_.insert_or_assign(std::string(key), std::string(value));
  return absl::OkStatus();
}

absl::Status MemoryStore::Delete(absl::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = data_.find(key);
  if (it != data_.end()) data_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<KeyValue>> MemoryStore::Scan(absl::string_view prefix,
                                                        absl::string_view start_after,
                                                        size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<KeyValue> result;
  auto it = data_.lower_bound(std::max(prefix, start_after));
  if (it != data_.end() && it->first == start_after) ++it;
  for (; it != data_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (limit != 0 && result.size() == limit) break;
    result.push_back(KeyValue{it->first, it->second});
  }
  return result;
}

absl::Status MemoryStore::Commit(const WriteBatch& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  return CommitLocked(batch);
}

absl::Status MemoryStore::CommitAndPurge(const WriteBatch& batch,
                                         const std::vector<std::string>& delete_prefixes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::Status status = CommitLocked(batch); !status.ok()) return status;
  for (const std::string& prefix : delete_prefixes) {
    auto first = data_.lower_bound(prefix);
    auto last = first;
    while (last != data_.end() && absl::StartsWith(last->first, prefix)) ++last;
    data_.erase(first, last);
  }
  return absl::OkStatus();
}

absl::Status MemoryStore::ExportSnapshot(const ExportVisitor& visit) {
  std::map<std::string, std::string, std::less<>> copy;
  {
    std::lock_guard<std::mutex> lock(mu_);
    copy = data_;
  }
  for (const auto& [key, value] : copy) {
    if (absl::Status visited = visit(key, value); !visited.ok()) return visited;
  }
  return absl::OkStatus();
}

absl::Status MemoryStore::CommitLocked(const WriteBatch& batch) {
  for (const WriteBatch::Precondition& precondition : batch.preconditions()) {
    auto it = data_.find(precondition.key);
    const bool holds = precondition.expected_value.has_value()
                           ? it != data_.end() && it->second == *precondition.expected_value
                           : it == data_.end();
    if (!holds) return storage_internal::PreconditionFailedError(precondition);
  }
  for (const WriteBatch::Operation& operation : batch.operations()) {
    if (operation.value.has_value()) {
      data_.insert_or_assign(operation.key, *operation.value);
    } else {
      data_.erase(operation.key);
    }
  }
  return absl::OkStatus();
}

}  // namespace clavis::kms
