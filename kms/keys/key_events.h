// KeyEventBus: fan-out of key state changes (rotated, disabled, destroyed...)
// from the key service to WatchKeyEvents streams, so SDK caches evict keys
// as soon as they stop being usable.
//
// Each subscription has a bounded queue; a subscriber that falls behind by
// more than its capacity is marked `lost` and must drop all cached keys of
// the tenant (events carry a per-process sequence number, so a client can
// also see a gap). Each subscriber gets a tenant's events in sequence
// order, also from concurrent publishers. Publishing never blocks on a slow
// subscriber.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_KEYS_KEY_EVENTS_H_
#define CLAVIS_KMS_KEYS_KEY_EVENTS_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "clavis/v1/resources.pb.h"

namespace clavis::kms {

class KeyEventSubscription {
 public:
  enum class WaitResult { kEvent, kTimeout, kLost, kClosed };

  // Waits up to `timeout` for the next event.
  WaitResult Next(absl::Duration timeout, clavis::v1::KeyEvent* event);
  // Ends the subscription; a waiting Next returns kClosed.
  void Close();

 private:
  friend class KeyEventBus;
  KeyEventSubscription(std::string tenant, size_t capacity)
      : tenant_(std::move(tenant)), capacity_(capacity) {}
  void Push(const clavis::v1::KeyEvent& event);
  void MarkLost();

  const std::string tenant_;
  const size_t capacity_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  std::mutex mu_;
  std::condition_variable changed_;  // notified on every change of the fields below
  std::deque<clavis::v1::KeyEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class KeyEventBus {
 public:
  explicit KeyEventBus(size_t queue_capacity = 1024) : queue_capacity_(queue_capacity) {}

  // Events of keys of `tenant` from now on.
  std::shared_ptr<KeyEventSubscription> Subscribe(const std::string& tenant);
  // Assigns the sequence number and delivers to the tenant's subscribers.
  void Publish(const std::string& tenant, clavis::v1::KeyEvent event);
  // Closes every subscription (server shutdown).
  void CloseAll();
  // Marks every subscription lost (as if each had fallen behind): its
  // subscriber must drop every cached key of the tenant and subscribe again.
  // For when events may have been missed (a replica's store change feed was
  // interrupted: kms/keys/store_follower.h).
  void LoseAll();

 private:
  const size_t queue_capacity_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  std::mutex mu_;
  // Per tenant, so a tenant's stream has no gaps unless it really missed
  // events.
  absl::flat_hash_map<std::string, uint64_t> next_sequence_ ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<KeyEventSubscription>> subscribers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_KEY_EVENTS_H_
