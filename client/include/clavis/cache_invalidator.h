// CacheInvalidator: makes revocation reach a DataKeyCache.
//
//   std::shared_ptr<clavis::Client> client = ...;
//   auto cache = clavis::DataKeyCache::New(client);
//   auto invalidator = clavis::CacheInvalidator::Start(client, *cache, {"tenants/acme"});
//
// It follows clavisd's WatchKeyEvents stream of each tenant and evicts:
//  - every cached key of a key that is disabled, scheduled for destruction,
//    destroyed, or whose settings changed, or one of whose versions is
//    disabled, scheduled for destruction or destroyed;
//  - the keys of a segment that is revoked, scheduled for destruction or
//    destroyed;
//  - nothing of a rotated segment but its encryption keys (new records get
//    a data key of the new segment key version; old records still decrypt);
//  - all of a tenant's keys when the stream (re)connects or skips a
//    sequence number (events may have been missed), and on an event of a
//    key the principal may not watch ("REDACTED": give the application's
//    principal the WatchKeyEvents permission on the keys it uses).
// Events arrive as they happen, so an eviction follows a revocation within
// about a second. While a stream is down (connected() is false), the cache's
// max_age is the bound: a revoked key can be used from memory until it
// expires. Expired entries are also swept every second.
//
// Thread safety: connected() and stats() may be called from any thread.
// Destroying the invalidator stops its threads.
#ifndef CLAVIS_CLIENT_INCLUDE_CLAVIS_CACHE_INVALIDATOR_H_
#define CLAVIS_CLIENT_INCLUDE_CLAVIS_CACHE_INVALIDATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "clavis/client.h"
#include "clavis/data_key_cache.h"

namespace clavis {

class CacheInvalidator {
 public:
  // InvalidArgument if `client` or `cache` is null, or a tenant is not
  // "tenants/{t}"; at least one tenant.
  static absl::StatusOr<std::unique_ptr<CacheInvalidator>> Start(
      std::shared_ptr<Client> client, std::shared_ptr<DataKeyCache> cache,
      std::vector<std::string> tenants);
  ~CacheInvalidator();
  CacheInvalidator(const CacheInvalidator&) = delete;
  CacheInvalidator& operator=(const CacheInvalidator&) = delete;

  // Whether every tenant's stream is established.
  bool connected() const;

  struct Stats {
    uint64_t events = 0;     // events received
    uint64_t evictions = 0;  // events (or resyncs) that evicted something
    uint64_t resyncs = 0;    // (re)connections and sequence gaps
  };
  Stats stats() const;

 private:
  struct State;
  explicit CacheInvalidator(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace clavis

#endif  // CLAVIS_CLIENT_INCLUDE_CLAVIS_CACHE_INVALIDATOR_H_
