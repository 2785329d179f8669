// DataKeyCache: keeps data keys (and blind index keys) from a DataKeySource
// so that most records cost no round trip to clavisd.
//
//   std::shared_ptr<clavis::Client> client = ...;
//   auto cache = clavis::DataKeyCache::New(client);            // defaults below
//   auto records = clavis::RecordEncryptor::New(*cache, "tenants/acme/keys/crm");
//
// What is cached, and for how long:
//  - Encryption: one data key per (key, segment, encryption context) is used
//    for many records until it reaches max_age, max_records_per_data_key or
//    max_bytes_per_data_key; then the next record gets a fresh data key.
//    Records that differ only in their associated data share a data key;
//    records with different encryption contexts do not (the server binds the
//    context to the data key), so keep per-record identifiers in associated
//    data if you want records to share keys.
//  - Decryption: the data key of each ciphertext blob seen, for max_age.
//  - Blind index keys: one per (key, segment, index), for max_age.
//  - At most max_entries of all kinds; beyond that the oldest goes first.
//
// The defaults stay well inside AES-256-GCM's limits: 2^24 records per data
// key (whose nonces are a counter, so they never repeat; even random nonces
// would collide with probability below 2^-49) and 16 GiB per data key.
//
// Key material lives in locked, guarded memory (and in OpenSSL cipher
// contexts, cleansed when freed) and is wiped when an entry is evicted and no
// call still uses it.
//
// Revocation: an entry is usable until it is evicted. A CacheInvalidator
// (clavis/cache_invalidator.h) follows clavisd's WatchKeyEvents stream and
// evicts the keys of a disabled, revoked or destroyed key, version or
// segment within about a second. If that stream is down, or no invalidator
// runs, max_age is the bound on how long a revoked key can still be used
// from this process' memory: choose it with that in mind.
//
// Misses are single-flight: concurrent misses for one entry make one call to
// the source, and the other callers wait for its result (and share its
// error, if it fails).
//
// A cache belongs to one DataKeySource (one set of credentials), so keys
// fetched for one principal are never handed to code acting as another.
//
// Thread safety: every method may be called from many threads at once.
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_DATA_KEY_CACHE_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_DATA_KEY_CACHE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clavis/data_key_source.h"

namespace clavis {

namespace client_internal {
class DataKeyCacheCore;
}  // namespace client_internal

struct DataKeyCacheOptions {
  // How long any entry is used after it was fetched: 1 s .. 24 h.
  absl::Duration max_age = absl::Minutes(5);
  // Records sealed with one data key: 1 .. 2^32.
  uint64_t max_records_per_data_key = uint64_t{1} << 24;
  // Plaintext bytes sealed with one data key: 1 .. 2^36 (64 GiB).
  uint64_t max_bytes_per_data_key = uint64_t{1} << 34;
  // Entries of all kinds: 1 .. 10,000,000.
  size_t max_entries = 100000;
};

class DataKeyCache {
 public:
  // InvalidArgument if `source` is null or an option is out of its range
  // (the message names the option).
  static absl::StatusOr<std::shared_ptr<DataKeyCache>> New(std::shared_ptr<DataKeySource> source,
                                                           DataKeyCacheOptions options = {});
  ~DataKeyCache();
  DataKeyCache(const DataKeyCache&) = delete;
  DataKeyCache& operator=(const DataKeyCache&) = delete;

  // Evictions. Key names are "tenants/{t}/keys/{k}", tenants "tenants/{t}".
  void EvictKey(absl::string_view key);
  void EvictSegment(absl::string_view key, absl::string_view segment);
  void EvictTenant(absl::string_view tenant);
  // New records of the segment get a new data key (e.g. after the segment
  // key was rotated); cached keys still decrypt existing records.
  void RetireEncryptionKeys(absl::string_view key, absl::string_view segment);
  void Clear();
  // Drops entries older than max_age now (they are also dropped when next
  // looked up). A CacheInvalidator calls it every second.
  void EvictExpired();

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t source_calls = 0;  // calls made to the DataKeySource
    uint64_t evictions = 0;
    size_t entries = 0;
  };
  Stats stats() const;

  const DataKeyCacheOptions& options() const;
  const std::shared_ptr<DataKeySource>& source() const;

  // For the SDK's own classes (RecordEncryptor, BlindIndex); not part of
  // the API.
  client_internal::DataKeyCacheCore& core() const { return *core_; }

 private:
  explicit DataKeyCache(std::unique_ptr<client_internal::DataKeyCacheCore> core);
  const std::unique_ptr<client_internal::DataKeyCacheCore> core_;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_DATA_KEY_CACHE_H_
