// Store: the small key-value interface every piece of persistent Clavis state
// goes through. The domain layer knows nothing else about storage, so the
// embedded RocksDB backend and the etcd backend are interchangeable.
//
// Semantics every backend must provide (tests/store_conformance checks them):
//  - Keys and values are arbitrary bytes; keys sort bytewise.
//  - Every successful write (Put, Delete, Commit) is durable when it returns:
//    the backend has synced it (RocksDB: WAL fsync; etcd: Raft commit).
//  - Commit applies a batch atomically: all of it or none of it, and only if
//    every precondition holds at the moment it applies; otherwise it returns
//    Aborted("... changed concurrently ...") and writes nothing. That is the
//    compare-and-set every read-modify-write in the domain layer uses.
//  - Scan returns keys in order; it sees a consistent snapshot.
//  - CommitAndPurge commits a batch (and deletes whole prefixes) atomically,
//    then makes the backend drop every stored copy of the old values of the
//    keys it touched (RocksDB: flush + forced compaction over those ranges so
//    the bytes leave the data files and the WAL; etcd: compaction + defrag).
//    It is how destroyed key material is crypto-shredded.
//  - ExportSnapshot visits every entry from one point-in-time view: the
//    logical content backups are made of (kms/backup, docs/BACKUP.md), so a
//    backup restores into any backend.
//
//  - WatchChanges (optional) reports every committed change, whoever made
//    it, for backends that several clavisd replicas share (etcd): it is how
//    a replica learns that another one changed a key it caches. Backends
//    only one process writes (RocksDB, memory) return Unimplemented: every
//    write passes through the process that caches, which needs no feed.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_STORAGE_STORE_H_
#define CLAVIS_KMS_STORAGE_STORE_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clavis::kms {

struct KeyValue {
  std::string key;
  std::string value;
};

// An atomic, conditional batch of writes.
class WriteBatch {
 public:
  struct Precondition {
    std::string key;
    // nullopt: the key must be absent. Otherwise its value must equal this.
    std::optional<std::string> expected_value;
  };
  struct Operation {
    std::string key;
    std::optional<std::string> value;  // nullopt: delete
  };

  // The batch applies only if `key` currently holds `expected_value`
  // (nullopt: is absent).
  WriteBatch& Expect(absl::string_view key, std::optional<std::string> expected_value);
  WriteBatch& Put(absl::string_view key, std::string value);
  WriteBatch& Delete(absl::string_view key);

  const std::vector<Precondition>& preconditions() const { return preconditions_; }
  const std::vector<Operation>& operations() const { return operations_; }
  bool empty() const { return operations_.empty(); }

 private:
  std::vector<Precondition> preconditions_;
  std::vector<Operation> operations_;
};

// One committed change of one entry, as a change feed reports it.
struct StoreChange {
  std::string key;                       // as the Store's methods name it
  std::optional<std::string> old_value;  // nullopt: it did not exist (or unknown)
  std::optional<std::string> new_value;  // nullopt: deleted
};

// What a change feed calls, always from the feed's own thread, one call at
// a time, changes in commit order. The calls must be quick and must not
// call the store (they may hold the feed's resources).
struct StoreChangeHandler {
  // Committed changes, in commit order (one commit's changes together).
  std::function<void(const std::vector<StoreChange>&)> on_changes;
  // connected == false: the feed lost its source (an outage); changes made
  // from now on may not be reported until it is back, so anything derived
  // from the store must not be trusted meanwhile. connected == true: the
  // feed follows every change again, from this point on; changes made while
  // it was down may never be reported one by one, so anything derived from
  // the store before this call must be dropped. The first call after
  // WatchChanges returns is connected == true once the feed is live.
  std::function<void(bool connected)> on_resync;
};

// A running change feed; destroying it stops it and waits until no handler
// call is running any more.
class StoreChangeFeed {
 public:
  virtual ~StoreChangeFeed() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // The value, or nullopt if absent. Errors only for backend failures
  // (Unavailable, DataLoss for detected corruption).
  virtual absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) = 0;

  virtual absl::Status Put(absl::string_view key, absl::string_view value) = 0;
  // Deleting an absent key is OK.
  virtual absl::Status Delete(absl::string_view key) = 0;

  // Up to `limit` entries whose key starts with `prefix` and sorts strictly
  // after `start_after` (empty: from the start of the prefix), in key order.
  // limit == 0 means no limit.
  virtual absl::StatusOr<std::vector<KeyValue>> Scan(absl::string_view prefix,
                                                     absl::string_view start_after,
                                                     size_t limit) = 0;

  // Atomic conditional batch; Aborted if a precondition does not hold.
  virtual absl::Status Commit(const WriteBatch& batch) = 0;

  // Commits `batch` and deletes every key under each of `delete_prefixes`, in
  // one atomic step (Aborted, nothing written, if a precondition fails). Then
  // purges the old values of every touched key from the backend's files
  // before returning (see above). Slow: meant for destruction, not for the
  // hot path. If the purge step fails after the commit, the returned error
  // says so (the commit stands; calling it again with an empty batch and the
  // same prefixes finishes the purge).
  virtual absl::Status CommitAndPurge(const WriteBatch& batch,
                                      const std::vector<std::string>& delete_prefixes) = 0;

  // Calls `visit` for every entry of the store, in key order, all read from
  // one consistent point-in-time view fixed when the call starts: a commit
  // is seen whole or not at all, and writes that commit during the export
  // are not seen. Writes (Put, Delete, Commit) and reads may run concurrently
  // and are not blocked, not even by a CommitAndPurge that starts meanwhile:
  // that one may wait for the export to end before it purges (the view pins
  // the old values). `visit` must not call the store at all (it may hold
  // the store's locks: deadlock), and should be quick (write to a local
  // file, not to a network peer). Stops at, and returns, the first error of
  // `visit`; backend errors as for Scan.
  using ExportVisitor = std::function<absl::Status(absl::string_view key, absl::string_view value)>;
  virtual absl::Status ExportSnapshot(const ExportVisitor& visit) = 0;

  // Reports every committed change of an entry whose key starts with
  // `prefix` (see StoreChangeHandler) until the returned feed is destroyed.
  // Unimplemented for backends that only one process writes (the default).
  virtual absl::StatusOr<std::unique_ptr<StoreChangeFeed>> WatchChanges(
      absl::string_view prefix, StoreChangeHandler handler) {
    return absl::UnimplementedError(
        "this store is written by one process only and has no change feed");
  }
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_STORAGE_STORE_H_
