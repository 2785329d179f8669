// StoreFollower: keeps one clavisd replica current when several share one
// store (etcd), where other replicas change keys behind this one's back.
//
// It follows the store's change feed (Store::WatchChanges) and, for every
// committed change of a key or segment record, whoever made it:
//   - drops the repository's cached entry of that record, so the next read
//     goes to the store (a key disabled through replica A is refused by
//     replica B as soon as B's feed reports it: milliseconds on etcd);
//   - publishes the KeyEvents the change stands for (kms/keys/
//     record_events.h) on this replica's KeyEventBus, so WatchKeyEvents
//     subscribers (SDK caches) of every replica hear of it.
// With a follower, KeyLifecycle must not publish events itself (give it no
// bus): the feed reports this replica's own changes too, and each change
// must be announced once.
//
// While the feed is down (etcd unreachable from this replica), changes
// made elsewhere are not seen, so the repository's caches are bypassed
// (every read goes to the store, which then fails or is current) and every
// WatchKeyEvents stream is told it lost events (its client drops its cache
// and subscribes again). When the feed is back, the caches start empty.
//
// Thread safety: the handler methods are called by the feed's thread;
// Apply and Resync are public for tests and may be called from any one
// thread at a time.
#ifndef CLAVIS_KMS_KEYS_STORE_FOLLOWER_H_
#define CLAVIS_KMS_KEYS_STORE_FOLLOWER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kms/keys/clock.h"
#include "kms/keys/key_events.h"
#include "kms/keys/key_repository.h"
#include "kms/storage/store.h"

namespace clavis::kms {

class StoreFollower {
 public:
  // Starts following `store`. Unimplemented if the store has no change
  // feed (one process writes it: nothing to follow). Until the feed reports
  // that it is live, the repository's caches are bypassed.
  // REQUIRES: everything outlives the follower.
  static absl::StatusOr<std::unique_ptr<StoreFollower>> Start(Store* store,
                                                              KeyRepository* repository,
                                                              KeyEventBus* events,
                                                              const Clock* clock);
  // Not started: for tests that drive Apply/Resync themselves.
  StoreFollower(KeyRepository* repository, KeyEventBus* events, const Clock* clock);
  ~StoreFollower();  // stops the feed first

  // What the feed reports (see StoreChangeHandler).
  void Apply(const std::vector<StoreChange>& changes);
  void Resync(bool connected);

  bool connected() const { return connected_.load(); }
  uint64_t changes_applied() const { return changes_applied_.load(); }
  uint64_t events_published() const { return events_published_.load(); }

 private:
  void Publish(const KeyName& key, std::vector<clavis::v1::KeyEvent> events);

  KeyRepository* const repository_;
  KeyEventBus* const events_;
  const Clock* const clock_;
  std::unique_ptr<StoreChangeFeed> feed_;
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> changes_applied_{0};
  std::atomic<uint64_t> events_published_{0};
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_STORE_FOLLOWER_H_
