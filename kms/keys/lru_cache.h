// A bounded, thread-safe LRU map from keys to shared immutable values.
//
// Values are handed out as shared_ptr so an entry evicted or invalidated
// while a request still uses it stays alive until that request ends; key
// material inside is wiped when the last reference goes (SecretBytes).
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_KEYS_LRU_CACHE_H_
#define CLAVIS_KMS_KEYS_LRU_CACHE_H_

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"

namespace clavis::kms {

template <typename K, typename V>
class LruCache {
 public:
  // REQUIRES: capacity > 0.
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  std::shared_ptr<const V> Get(const K& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);  // most recent first
    return it->second->second;
  }

  void Put(const K& key, std::shared_ptr<const V> value) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->second = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
    while (order_.size() > capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

  void Erase(const K& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return;
    order_.erase(it->second);
    index_.erase(it);
  }

  // Erases every entry whose key satisfies `pred` (linear in size; used for
  // rare events such as destroying a key).
  void EraseIf(const std::function<bool(const K&)>& pred) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = order_.begin(); it != order_.end();) {
      if (pred(it->first)) {
        index_.erase(it->first);
        it = order_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    index_.clear();
    order_.clear();
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return order_.size();
  }
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<K, std::shared_ptr<const V>>;
  const size_t capacity_;
  // std::mutex, not absl::Mutex: Debian's Abseil is not TSan-instrumented, so TSan could not check
  // this.
  mutable std::mutex mu_;
  std::list<Entry> order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<K, typename std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_LRU_CACHE_H_
