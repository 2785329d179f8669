// The machinery behind clavis::DataKeyCache (clavis/data_key_cache.h, which
// states the contract): entries, limits, single-flight fetching and batching.
// Used by RecordEncryptor, BlindIndex and the cache's public methods.
#ifndef CLAVIS_CLIENT_SRC_DATA_KEY_CACHE_CORE_H_
#define CLAVIS_CLIENT_SRC_DATA_KEY_CACHE_CORE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "clavis/data_key_cache.h"
#include "clavis/data_key_source.h"
#include "client/src/sealed_record.h"
#include "crypto/secret_bytes.h"

namespace clavis::client_internal {

// A cached key. Immutable once published; shared with the callers using it,
// so an evicted entry is wiped when its last user lets go.
struct CacheEntry {
  std::string key;  // tenants/{t}/keys/{k}
  std::string segment;
  std::string canonical_context;  // data keys
  EncryptionContext context;      // the same, as a map (cheap to compare)
  std::string index;              // blind index keys
  std::string blob;               // data keys: the ciphertext blob
  crypto::SecretBytes secret;     // the data key or the index key
  // Data keys: the record key derived for `salt` (new records use it; a
  // record with another salt derives its own from `secret`).
  std::unique_ptr<RecordKeyMaterial> material;
  absl::Time fetched;
  // fetched + max_age in Unix nanoseconds, for the per-thread fast paths
  // (which read the real clock without the lock); 0 until set.
  int64_t usable_until_ns = 0;
  // Set (once, never cleared) when the entry leaves the cache: `evicted`
  // when it may no longer be used at all, `retired` when it may no longer
  // seal new records. Read without the lock by the per-thread fast path.
  mutable std::atomic<bool> evicted{false};
  mutable std::atomic<bool> retired{false};
  // What this key has sealed (reserved before sealing).
  mutable std::atomic<uint64_t> records{0};
  mutable std::atomic<uint64_t> bytes{0};
};

// One record's data key to find (decryption).
struct DecryptLookup {
  absl::string_view key;
  absl::string_view segment;
  absl::string_view blob;
  const EncryptionContext* context = nullptr;
  absl::string_view canonical_context;
  absl::string_view salt;  // of the record: the entry's material is derived for it
};

class DataKeyCacheCore {
 public:
  DataKeyCacheCore(std::shared_ptr<DataKeySource> source, DataKeyCacheOptions options);

  // A data key for one new record of `plaintext_size` bytes, counted against
  // the entry's record and byte limits. REQUIRES: `context` is valid.
  absl::StatusOr<std::shared_ptr<const CacheEntry>> AcquireForEncryption(
      absl::string_view key, absl::string_view segment, const EncryptionContext& context,
      size_t plaintext_size);

  // The data keys of many records: cached ones at once, the missing ones in
  // one BatchDecryptDataKeys call (concurrent callers' misses for the same
  // blob wait for one fetch). One result per lookup, in order.
  std::vector<absl::StatusOr<std::shared_ptr<const CacheEntry>>> LookupForDecryption(
      absl::Span<const DecryptLookup> lookups);
  // The same for one record, without the batch bookkeeping on a hit (and
  // without `lookup.canonical_context`, which is computed on a miss only).
  absl::StatusOr<std::shared_ptr<const CacheEntry>> LookupOneForDecryption(
      const DecryptLookup& lookup);
  // The fast path before any parsing: the data key this thread last found
  // with LookupOneForDecryption, if it is still usable, was fetched for
  // `context`, and `sealed` begins with its material's very header (so the
  // record names that key name, segment, blob and salt); else null. The
  // caller still checks the key name.
  std::shared_ptr<const CacheEntry> LastDecryptionEntryFor(absl::string_view sealed,
                                                           const EncryptionContext& context);

  // The key of blind index `index` over `segment`.
  absl::StatusOr<std::shared_ptr<const CacheEntry>> IndexKey(absl::string_view key,
                                                             absl::string_view segment,
                                                             absl::string_view index);

  // Evicts entries for which `match` is true.
  void Evict(const std::function<bool(const CacheEntry&)>& match);
  // Removes the encryption slot of (key, segment): new records get new keys.
  void RetireEncryptionKeys(absl::string_view key, absl::string_view segment);
  void EvictExpired();

  DataKeyCache::Stats stats() const;
  const DataKeyCacheOptions& options() const { return options_; }
  const std::shared_ptr<DataKeySource>& source() const { return source_; }

  // Tests move time forward with this.
  void SetClockForTesting(std::function<absl::Time()> now);

 private:
  struct Slot {
    std::shared_ptr<CacheEntry> entry;
  };
  // A fetch in progress (single flight).
  struct Flight {
    bool done = false;
    absl::Status status;
    std::shared_ptr<CacheEntry> entry;
  };

  // Every *Locked method and every member below mu_ requires mu_ held.
  absl::Time NowLocked() const;
  bool Expired(const CacheEntry& entry, absl::Time now) const;
  // Inserts under `slot_name`, then evicts the oldest slots over the limit.
  void InsertLocked(const std::string& slot_name, std::shared_ptr<CacheEntry> entry);
  void EraseLocked(const std::string& slot_name);
  // Erases a slot and marks its entry (see CacheEntry::evicted/retired).
  void RemoveLocked(absl::flat_hash_map<std::string, Slot>::iterator it, bool count_eviction);
  // Whether an entry may still be used now by the real clock (not evicted
  // nor expired), for the per-thread fast paths: one cheap clock read and an
  // integer comparison per record. False also in the last millisecond
  // before the deadline, when the locked path decides by absl::Now().
  static bool UsableNow(const CacheEntry& entry);
  // Sets entry.fetched and the deadline derived from it.
  void SetFetched(CacheEntry& entry, absl::Time fetched) const;
  // Reserves one record of `size` bytes; false (and the entry retired) if
  // that would pass a limit.
  bool TryReserve(const CacheEntry& entry, size_t size) const;
  void FinishFlightLocked(const std::string& flight_name, absl::Status status,
                          std::shared_ptr<CacheEntry> entry);
  // Waits for `flight` to finish; its result.
  absl::StatusOr<std::shared_ptr<CacheEntry>> AwaitLocked(std::unique_lock<std::mutex>& lock,
                                                          const std::shared_ptr<Flight>& flight);

  const std::shared_ptr<DataKeySource> source_;
  const DataKeyCacheOptions options_;
  // Tells this cache's entries in the per-thread fast path (a thread
  // remembers the last entry it used) from another cache's.
  const uint64_t id_;
  // Fast-path hits (counted without the lock); off with a test clock.
  mutable std::atomic<uint64_t> fast_hits_{0};
  std::atomic<bool> fast_path_enabled_{true};

  // A plain std::mutex: taken on every record, and absl::Mutex's deadlock
  // detection (on in Debian's build) would cost more than the record.
  mutable std::mutex mu_;
  std::condition_variable flight_done_;
  std::function<absl::Time()> now_;
  absl::flat_hash_map<std::string, Slot> slots_;
  // Slot names in insertion order, for the max_entries bound (names whose
  // slot is gone or replaced are skipped when reached).
  std::deque<std::pair<std::string, std::weak_ptr<CacheEntry>>> order_;
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_;
  DataKeyCache::Stats stats_;
  // Incremented by every Evict and RetireEncryptionKeys: a fetch that sees
  // it change while the source was asked does not keep its key (the
  // eviction may have been meant for it).
  uint64_t eviction_epoch_ = 0;
};

}  // namespace clavis::client_internal

#endif  // CLAVIS_CLIENT_SRC_DATA_KEY_CACHE_CORE_H_
