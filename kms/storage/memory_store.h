// MemoryStore: a Store kept in process memory, for tests of the layers above
// storage (a fast, dependency-free seam) and as the reference implementation
// of the Store semantics.
//
// Not durable: everything is lost when the object is destroyed, so "durable
// when it returns" holds only for the lifetime of the process. CommitAndPurge
// just deletes (there are no files to purge); freed memory is not scrubbed.
//
// Thread safety: all methods may be called concurrently. One mutex guards the
// whole map, so every operation, Scan included, is trivially atomic and sees a
// consistent state.
#ifndef CLAVIS_KMS_STORAGE_MEMORY_STORE_H_
#define CLAVIS_KMS_STORAGE_MEMORY_STORE_H_

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kms/storage/store.h"

namespace clavis::kms {

class MemoryStore : public Store {
 public:
  MemoryStore() = default;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override;
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  absl::Status Delete(absl::string_view key) override;
  absl::StatusOr<std::vector<KeyValue>> Scan(absl::string_view prefix,
                                             absl::string_view start_after, size_t limit) override;
  absl::Status Commit(const WriteBatch& batch) override;
  absl::Status CommitAndPurge(const WriteBatch& batch,
                              const std::vector<std::string>& delete_prefixes) override;
  // Copies the map under the lock, then visits the copy: the export is
  // consistent and never holds the lock while `visit` runs.
  absl::Status ExportSnapshot(const ExportVisitor& visit) override;

 private:
  // Checks the preconditions and applies the operations, or changes nothing.
  absl::Status CommitLocked(const WriteBatch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  std::mutex mu_;
  // std::less<> compares std::string bytewise (char_traits<char>::compare is
  // memcmp-like, unsigned), which is the key order the contract requires.
  std::map<std::string, std::string, std::less<>> data_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_STORAGE_MEMORY_STORE_H_
