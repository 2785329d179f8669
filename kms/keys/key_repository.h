// KeyRepository: where key and segment records live (the Store layout of
// docs/STORAGE.md), how they are changed (compare-and-set, retried), and the
// bounded caches of parsed records and unwrapped key material in front of
// them. It knows how material is wrapped; it knows nothing about which state
// transitions are allowed (KeyLifecycle) or about data keys (Envelope).
//
// Caching: every write goes through this class. The entries a write may
// change are dropped before it commits and again after, and nobody caches
// them while it is under way; a reader that started before an invalidation
// does not put what it read back into the cache (an invalidation epoch
// guards that). So a cached entry is never older than the last committed
// write of this process, also while that write is still returning: a call
// that saw the write in the store is never followed by one that sees the
// cached value from before it.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_KEYS_KEY_REPOSITORY_H_
#define CLAVIS_KMS_KEYS_KEY_REPOSITORY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "crypto/aead.h"
#include "crypto/secret_bytes.h"
#include "kms/keys/lru_cache.h"
#include "kms/keys/names.h"
#include "kms/keys/records.pb.h"
#include "kms/root/root_key_provider.h"
#include "kms/storage/store.h"

namespace clavis::kms {

// A parsed key record plus the master-key versions unwrapped so far.
class KeyEntry {
 public:
  using Record = internal::KeyRecord;
  KeyEntry(KeyName name, internal::KeyRecord record, std::string raw)
      : name_(std::move(name)), record_(std::move(record)), raw_(std::move(raw)) {}

  const KeyName& name() const { return name_; }
  const internal::KeyRecord& record() const { return record_; }
  // The exact stored bytes, the precondition of a compare-and-set.
  const std::string& raw() const { return raw_; }
  // The version's record, or nullptr.
  const internal::KeyVersionRecord* FindVersion(uint32_t version) const;

 private:
  friend class KeyRepository;
  const KeyName name_;
  const internal::KeyRecord record_;
  const std::string raw_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  mutable std::mutex mu_;
  // AES-256-GCM under each unwrapped master-key version.
  mutable std::map<uint32_t, std::shared_ptr<const crypto::Aead>> master_ ABSL_GUARDED_BY(mu_);
};

// A parsed segment record plus the segment-key versions unwrapped so far.
class SegmentEntry {
 public:
  using Record = internal::SegmentRecord;
  SegmentEntry(SegmentName name, internal::SegmentRecord record, std::string raw)
      : name_(std::move(name)), record_(std::move(record)), raw_(std::move(raw)) {}

  const SegmentName& name() const { return name_; }
  const internal::SegmentRecord& record() const { return record_; }
  const std::string& raw() const { return raw_; }
  const internal::SegmentVersionRecord* FindVersion(uint32_t version) const;

 private:
  friend class KeyRepository;
  const SegmentName name_;
  const internal::SegmentRecord record_;
  const std::string raw_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  mutable std::mutex mu_;
  mutable std::map<uint32_t, std::shared_ptr<const crypto::Aead>> keys_ ABSL_GUARDED_BY(mu_);
};

// A segment record as read from the store, with its exact stored bytes (the
// precondition of a compare-and-set).
struct StoredSegment {
  internal::SegmentRecord record;
  std::string raw;
};

// A new value for a segment, written only if it still holds `expected_raw`.
struct SegmentUpdate {
  std::string segment;
  std::string expected_raw;
  internal::SegmentRecord record;
};

struct KeyRepositoryOptions {
  size_t key_cache_entries = 10000;
  size_t segment_cache_entries = 100000;
  // Compare-and-set attempts before giving up with Aborted.
  int max_update_attempts = 16;
};

class KeyRepository {
 public:
  // REQUIRES: store and root outlive the repository.
  KeyRepository(Store* store, RootKeyProvider* root, KeyRepositoryOptions options = {});

  // NotFound("key tenants/t/keys/k not found") if absent; DataLoss if the
  // stored record cannot be parsed.
  absl::StatusOr<std::shared_ptr<const KeyEntry>> GetKey(const KeyName& name);
  absl::StatusOr<std::shared_ptr<const SegmentEntry>> GetSegment(const SegmentName& name);

  // Stores a new key; AlreadyExists if the id is taken (also by a destroyed key).
  absl::Status CreateKey(const KeyName& name, const internal::KeyRecord& record);
  // Stores a new segment; AlreadyExists if present.
  absl::Status CreateSegment(const SegmentName& name, const internal::SegmentRecord& record);

  // Read-modify-write with compare-and-set, retried on concurrent change.
  // `mutate` may be called several times and must only look at its argument;
  // an error from it is returned as is and nothing is written.
  using KeyMutation = std::function<absl::Status(internal::KeyRecord*)>;
  using SegmentMutation = std::function<absl::Status(internal::SegmentRecord*)>;
  absl::StatusOr<internal::KeyRecord> UpdateKey(const KeyName& name, const KeyMutation& mutate);
  absl::StatusOr<internal::SegmentRecord> UpdateSegment(const SegmentName& name,
                                                        const SegmentMutation& mutate);
  // Like UpdateKey/UpdateSegment, then purges the old values from storage
  // (crypto-shredding). `delete_all_segments` also deletes every segment of
  // the key in the same atomic step.
  absl::StatusOr<internal::KeyRecord> UpdateKeyAndPurge(const KeyName& name,
                                                        const KeyMutation& mutate,
                                                        bool delete_all_segments);
  absl::StatusOr<internal::SegmentRecord> UpdateSegmentAndPurge(const SegmentName& name,
                                                                const SegmentMutation& mutate);

  // Keys of a tenant after `start_after_key_id` (empty: from the first), in
  // id order, at most `limit`.
  absl::StatusOr<std::vector<internal::KeyRecord>> ListKeys(const std::string& tenant,
                                                            const std::string& start_after_key_id,
                                                            size_t limit);
  // Segments of a key whose label starts with `label_prefix`, after
  // `start_after_segment`, in label order, at most `limit`.
  absl::StatusOr<std::vector<internal::SegmentRecord>> ListSegments(
      const KeyName& key, const std::string& label_prefix, const std::string& start_after_segment,
      size_t limit);

  // ListSegments (no label prefix) with each record's stored bytes, for
  // CommitSegmentUpdates.
  absl::StatusOr<std::vector<StoredSegment>> ListStoredSegments(
      const KeyName& key, const std::string& start_after_segment, size_t limit);
  // Writes every update in one atomic, durable batch (one WAL sync for all
  // of them), and only if each segment still holds its `expected_raw` and
  // the key record still holds `key.raw()`; otherwise Aborted, nothing is
  // written and the key's cached entry is dropped (the next GetKey reads the
  // store). Drops the cached entries of the segments written.
  absl::Status CommitSegmentUpdates(const KeyEntry& key, const std::vector<SegmentUpdate>& updates);

  // Master-key material <-> its root-wrapped form (associated data: the
  // version's resource name).
  absl::StatusOr<std::string> WrapMasterMaterial(const KeyName& key, uint32_t version,
                                                 const crypto::SecretBytes& material);
  // The AEAD under a master-key version (unwrapped once, then cached in the
  // entry). FailedPrecondition if the version has no material (destroyed).
  absl::StatusOr<std::shared_ptr<const crypto::Aead>> MasterAead(const KeyEntry& key,
                                                                 uint32_t version);

  // Segment key <-> its wrap under a master-key version.
  absl::StatusOr<std::string> WrapSegmentKey(const KeyEntry& key, uint32_t key_version,
                                             const std::string& segment, uint32_t segment_version,
                                             const crypto::SecretBytes& segment_key);
  absl::StatusOr<crypto::SecretBytes> UnwrapSegmentKey(const KeyEntry& key,
                                                       const std::string& segment,
                                                       const internal::SegmentVersionRecord& v);
  // The AEAD under a segment-key version (cached in the segment entry).
  absl::StatusOr<std::shared_ptr<const crypto::Aead>> SegmentAead(const KeyEntry& key,
                                                                  const SegmentEntry& segment,
                                                                  uint32_t segment_version);

  // Store keys (docs/STORAGE.md).
  static std::string KeyStoreKey(const KeyName& name);
  static std::string SegmentStoreKey(const SegmentName& name);
  static std::string SegmentPrefix(const KeyName& key);
  // The names back from store keys; nullopt for keys of other records.
  static std::optional<KeyName> ParseKeyStoreKey(absl::string_view store_key);
  static std::optional<SegmentName> ParseSegmentStoreKey(absl::string_view store_key);

  // For replicas sharing one store (kms/keys/store_follower.h), where other
  // processes write too: drops whatever is cached of `store_key` (a key or
  // segment record another replica changed).
  void InvalidateStoreKey(const std::string& store_key);
  // Drops every cached entry whose store key starts with `prefix` (e.g. all
  // segments of a key: SegmentPrefix).
  void InvalidateStorePrefix(const std::string& prefix);
  // Drops every cached entry. With `trusted` false the caches are also
  // bypassed, neither read nor filled, until InvalidateAll(true): while a
  // replica cannot follow others' changes, only the store is current.
  void InvalidateAll(bool trusted);

 private:
  // What a write may change: store keys (key or segment records) and
  // prefixes of segment store keys.
  struct WriteTargets {
    std::vector<std::string> keys;
    std::vector<std::string> prefixes;
  };
  // Bracket every commit: BeginWrite drops the targets' cached entries and
  // keeps them out of the caches until the matching EndWrite, which drops
  // them again; both move the epoch.
  void BeginWrite(const WriteTargets& targets);
  void EndWrite(const WriteTargets& targets);
  void DropLocked(const WriteTargets& targets) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fill_mu_);
  bool BeingWrittenLocked(const std::string& store_key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(fill_mu_);
  // Commits `batch` between BeginWrite and EndWrite of `targets`.
  absl::Status CommitWrite(const WriteTargets& targets,
                           const std::function<absl::Status()>& commit);
  template <typename Entry, typename Name>
  absl::StatusOr<std::shared_ptr<const Entry>> GetEntry(const Name& name,
                                                        const std::string& store_key,
                                                        absl::string_view what,
                                                        LruCache<std::string, Entry>* cache);
  template <typename Record>
  absl::StatusOr<Record> ReadModifyWrite(
      const std::string& store_key, absl::string_view what, const std::string& display_name,
      const std::function<absl::Status(Record*)>& mutate,
      const std::function<absl::Status(const WriteBatch&)>& commit, const WriteTargets& targets);
  absl::StatusOr<internal::KeyRecord> UpdateKeyImpl(const KeyName& name, const KeyMutation& mutate,
                                                    bool purge, bool delete_all_segments);
  absl::StatusOr<internal::SegmentRecord> UpdateSegmentImpl(const SegmentName& name,
                                                            const SegmentMutation& mutate,
                                                            bool purge);

  Store* const store_;
  RootKeyProvider* const root_;
  const KeyRepositoryOptions options_;
  uint64_t CurrentEpoch();

  // Bumped on every invalidation; a reader caches what it read only if the
  // epoch did not move while it read.
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  std::mutex fill_mu_;
  uint64_t epoch_ ABSL_GUARDED_BY(fill_mu_) = 0;
  // Written under fill_mu_ (with an epoch bump); read without it on the
  // fast path, where a stale true is harmless: the bump already erased.
  std::atomic<bool> cache_trusted_{true};
  // Targets of the writes under way (a count per store key and prefix).
  std::map<std::string, int> writing_keys_ ABSL_GUARDED_BY(fill_mu_);
  std::map<std::string, int> writing_prefixes_ ABSL_GUARDED_BY(fill_mu_);
  LruCache<std::string, KeyEntry> key_cache_;
  LruCache<std::string, SegmentEntry> segment_cache_;
};

// Associated data of a segment-key wrap (docs/FORMAT.md "Segment key wrap"),
// also used offline by clavis-recover on escrow bundles.
std::string SegmentKeyWrapAssociatedData(const KeyName& key, uint32_t key_version,
                                         const std::string& segment, uint32_t segment_version);

// "3f9a1c0e5b7d2a41": the first 8 bytes (hex) of
// HMAC-SHA256(material, "clavis key check value v1").
absl::StatusOr<std::string> KeyCheckValue(const crypto::SecretBytes& material);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_KEY_REPOSITORY_H_
