#include "client/src/data_key_cache_core.h"

#include <time.h>

#include <cstdint>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "crypto/byte_io.h"
#include "crypto/encryption_context.h"

namespace clavis::client_internal {
namespace {

// Slot and flight names: a kind letter, then length-prefixed parts, so no
// two different tuples share a name.
std::string Name(char kind, std::initializer_list<absl::string_view> parts) {
  size_t size = 1;
  for (absl::string_view p : parts) size += 4 + p.size();
  std::string out;
  out.reserve(size);
  out.push_back(kind);
  crypto::ByteWriter w(&out);
  for (absl::string_view p : parts) w.U32Prefixed(p);
  return out;
}

std::string EncryptionSlot(absl::string_view key, absl::string_view segment,
                           absl::string_view canonical_context) {
  return Name('e', {key, segment, canonical_context});
}
std::string DecryptionSlot(absl::string_view blob) { return Name('d', {blob}); }
// Everything the source checks, so that only identical lookups share a
// fetch (a record naming another key or segment for the same blob must be
// asked about on its own, and refused).
std::string DecryptionFlight(absl::string_view key, absl::string_view segment,
                             absl::string_view blob, absl::string_view canonical_context) {
  return Name('f', {key, segment, blob, canonical_context});
}
std::string IndexSlot(absl::string_view key, absl::string_view segment, absl::string_view index) {
  return Name('i', {key, segment, index});
}

// A data key made ready for records (derives the record key once).
absl::StatusOr<std::shared_ptr<CacheEntry>> MakeDataKeyEntry(
    absl::string_view key, absl::string_view segment, const EncryptionContext& context,
    absl::string_view canonical_context, std::string blob, crypto::SecretBytes data_key,
    absl::string_view salt, absl::Time now) {
  if (data_key.size() != DataKeySource::kDataKeySize) {
    return absl::InternalError(absl::StrCat("data key source returned a ", data_key.size(),
                                            "-byte data key; expected 32"));
  }
  auto entry = std::make_shared<CacheEntry>();
  entry->key = std::string(key);
  entry->segment = std::string(segment);
  entry->canonical_context = std::string(canonical_context);
  entry->context = context;
  entry->blob = std::move(blob);
  absl::StatusOr<std::unique_ptr<RecordKeyMaterial>> material =
      RecordKeyMaterial::New(data_key, SealedRecordFields{entry->key, entry->segment, entry->blob},
                             canonical_context, std::string(salt));
  if (!material.ok()) return material.status();
  entry->material = std::move(*material);
  entry->secret = std::move(data_key);
  entry->fetched = now;
  return entry;
}

// Now in Unix nanoseconds by the kernel's real-time clock, for the fast
// paths' expiry checks: one vDSO call, under half the cost of
// absl::GetCurrentTimeNanos() on the development VM (~30 against ~70 ns,
// next to ~700 ns for a whole 1 KiB record). absl::Now() derives from the
// same clock and agreed with it to well under a microsecond there;
// kFastPathClockMargin absorbs any difference (an entry in its last
// millisecond goes to the locked path, which decides by absl::Now()). The
// coarse clock would be cheaper still, but lags by several ticks on a VM.
int64_t RealtimeNanos() {
  timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0) return absl::GetCurrentTimeNanos();
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}
constexpr int64_t kFastPathClockMargin = 1'000'000;  // 1 ms

std::atomic<uint64_t> next_core_id{1};

// The last entries this thread used, per direction: consecutive records of
// one segment skip the lock, the slot name and the hash lookup. Weak, so a
// remembered entry is still wiped when the cache lets go of it.
struct ThreadMemo {
  // Each half names its own cache: a thread may seal through one cache and
  // open through another (e.g. one cache per tenant on a shared pool), and
  // neither may ever see the other's keys.
  uint64_t encrypt_core_id = 0;
  std::weak_ptr<CacheEntry> encrypt;
  uint64_t decrypt_core_id = 0;
  std::string decrypt_blob;
  std::weak_ptr<CacheEntry> decrypt;
};
thread_local ThreadMemo memo;

}  // namespace

DataKeyCacheCore::DataKeyCacheCore(std::shared_ptr<DataKeySource> source,
                                   DataKeyCacheOptions options)
    : source_(std::move(source)), options_(options), id_(next_core_id.fetch_add(1)) {}

void DataKeyCacheCore::SetClockForTesting(std::function<absl::Time()> now) {
  std::lock_guard<std::mutex> lock(mu_);
  now_ = std::move(now);
  // The fast path reads the real clock without the lock.
  fast_path_enabled_ = false;
}

bool DataKeyCacheCore::UsableNow(const CacheEntry& entry) {
  return !entry.evicted.load(std::memory_order_acquire) &&
         RealtimeNanos() + kFastPathClockMargin < entry.usable_until_ns;
}

void DataKeyCacheCore::SetFetched(CacheEntry& entry, absl::Time fetched) const {
  entry.fetched = fetched;
  entry.usable_until_ns = absl::ToUnixNanos(fetched + options_.max_age);
}

bool DataKeyCacheCore::TryReserve(const CacheEntry& entry, size_t size) const {
  if (entry.retired.load(std::memory_order_acquire)) return false;
  const uint64_t records = entry.records.fetch_add(1, std::memory_order_relaxed) + 1;
  const uint64_t bytes = entry.bytes.fetch_add(size, std::memory_order_relaxed) + size;
  if (records > options_.max_records_per_data_key || bytes > options_.max_bytes_per_data_key) {
    // Used up for sealing; it still decrypts what it sealed.
    entry.retired.store(true, std::memory_order_release);
    return false;
  }
  return true;
}

void DataKeyCacheCore::RemoveLocked(absl::flat_hash_map<std::string, Slot>::iterator it,
                                    bool count_eviction) {
  if (it->first[0] == 'e') {
    it->second.entry->retired.store(true, std::memory_order_release);
  } else {
    it->second.entry->evicted.store(true, std::memory_order_release);
  }
  slots_.erase(it);
  if (count_eviction) ++stats_.evictions;
}

absl::Time DataKeyCacheCore::NowLocked() const { return now_ ? now_() : absl::Now(); }

bool DataKeyCacheCore::Expired(const CacheEntry& entry, absl::Time now) const {
  return now - entry.fetched >= options_.max_age;
}

void DataKeyCacheCore::InsertLocked(const std::string& slot_name,
                                    std::shared_ptr<CacheEntry> entry) {
  order_.emplace_back(slot_name, entry);
  if (auto old = slots_.find(slot_name); old != slots_.end()) RemoveLocked(old, false);
  slots_[slot_name] = Slot{std::move(entry)};
  while (slots_.size() > options_.max_entries && !order_.empty()) {
    auto [name, weak] = std::move(order_.front());
    order_.pop_front();
    auto it = slots_.find(name);
    if (it != slots_.end() && it->second.entry == weak.lock()) RemoveLocked(it, true);
  }
  // Names of slots evicted by other means pile up in order_; drop them when
  // they outnumber the live slots.
  if (order_.size() > 2 * slots_.size() + 64) {
    std::deque<std::pair<std::string, std::weak_ptr<CacheEntry>>> live;
    for (auto& [name, weak] : order_) {
      auto it = slots_.find(name);
      if (it != slots_.end() && it->second.entry == weak.lock()) live.emplace_back(name, weak);
    }
    order_ = std::move(live);
  }
}

void DataKeyCacheCore::EraseLocked(const std::string& slot_name) {
  if (auto it = slots_.find(slot_name); it != slots_.end()) RemoveLocked(it, true);
}

void DataKeyCacheCore::FinishFlightLocked(const std::string& flight_name, absl::Status status,
                                          std::shared_ptr<CacheEntry> entry) {
  auto it = flights_.find(flight_name);
  if (it == flights_.end()) return;
  it->second->done = true;
  // A status of its own, not a share of the caller's (see AwaitLocked).
  it->second->status =
      status.ok() ? absl::OkStatus() : absl::Status(status.code(), status.message());
  it->second->entry = std::move(entry);
  flights_.erase(it);
  flight_done_.notify_all();
}

absl::StatusOr<std::shared_ptr<CacheEntry>> DataKeyCacheCore::AwaitLocked(
    std::unique_lock<std::mutex>& lock, const std::shared_ptr<Flight>& flight) {
  flight_done_.wait(lock, [&] { return flight->done; });
  // Each waiter gets a status of its own rather than a share of the
  // fetcher's: absl::Status counts shares in Debian's (uninstrumented)
  // library, which ThreadSanitizer cannot see.
  if (!flight->status.ok()) return absl::Status(flight->status.code(), flight->status.message());
  return flight->entry;
}

absl::StatusOr<std::shared_ptr<const CacheEntry>> DataKeyCacheCore::AcquireForEncryption(
    absl::string_view key, absl::string_view segment, const EncryptionContext& context,
    size_t plaintext_size) {
  // Fast path: the entry this thread sealed with last time.
  if (fast_path_enabled_.load(std::memory_order_relaxed) && memo.encrypt_core_id == id_) {
    std::shared_ptr<CacheEntry> e = memo.encrypt.lock();
    if (e != nullptr && e->key == key && e->segment == segment && e->context == context &&
        UsableNow(*e) && e->material->SealableHere() && TryReserve(*e, plaintext_size)) {
      fast_hits_.fetch_add(1, std::memory_order_relaxed);
      return std::shared_ptr<const CacheEntry>(std::move(e));
    }
  }
  const std::string canonical_context = crypto::CanonicalEncryptionContext(context);
  const std::string slot_name = EncryptionSlot(key, segment, canonical_context);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto it = slots_.find(slot_name);
    if (it != slots_.end()) {
      std::shared_ptr<CacheEntry> e = it->second.entry;
      if (Expired(*e, NowLocked())) {
        EraseLocked(slot_name);
        EraseLocked(DecryptionSlot(e->blob));
      } else if (e->evicted.load() || !e->material->SealableHere()) {
        // Evicted for decryption too, or inherited through fork() (this
        // process needs its own key).
        RemoveLocked(it, false);
      } else if (!TryReserve(*e, plaintext_size)) {
        RemoveLocked(it, false);
      } else {
        ++stats_.hits;
        memo.encrypt_core_id = id_;
        memo.encrypt = e;
        return std::shared_ptr<const CacheEntry>(std::move(e));
      }
    }
    if (auto f = flights_.find(slot_name); f != flights_.end()) {
      std::shared_ptr<Flight> flight = f->second;
      absl::StatusOr<std::shared_ptr<CacheEntry>> done = AwaitLocked(lock, flight);
      if (!done.ok()) return done.status();
      continue;  // look again: the new key may already be used up by others
    }
    ++stats_.misses;
    ++stats_.source_calls;
    flights_[slot_name] = std::make_shared<Flight>();
    const uint64_t epoch = eviction_epoch_;
    absl::StatusOr<std::shared_ptr<CacheEntry>> entry;
    {
      lock.unlock();
      absl::StatusOr<DataKey> data_key = source_->GenerateDataKey(key, segment, context);
      if (!data_key.ok()) {
        entry = data_key.status();
      } else {
        entry = MakeDataKeyEntry(key, segment, context, canonical_context,
                                 std::move(data_key->ciphertext_blob),
                                 std::move(data_key->plaintext), /*salt=*/"", absl::Now());
      }
      lock.lock();
    }
    if (!entry.ok()) {
      FinishFlightLocked(slot_name, entry.status(), nullptr);
      return entry.status();
    }
    SetFetched(**entry, NowLocked());
    // The fetching caller's record is counted before anyone else sees the
    // key, so tiny limits cannot starve it. A record larger than the byte
    // limit gets a key of its own, never offered to others.
    (*entry)->records = 1;
    (*entry)->bytes = plaintext_size;
    if (eviction_epoch_ != epoch) {
      // An eviction (e.g. a revocation event) came while the key was being
      // fetched: the server issued it before that change, so this call (and
      // those waiting on it) may use it, but it is not kept.
      (*entry)->retired = true;
      (*entry)->evicted = true;
    } else {
      if (plaintext_size <= options_.max_bytes_per_data_key) {
        InsertLocked(slot_name, *entry);
        memo.encrypt_core_id = id_;
        memo.encrypt = *entry;
      } else {
        (*entry)->retired = true;
      }
      InsertLocked(DecryptionSlot((*entry)->blob), *entry);
    }
    FinishFlightLocked(slot_name, absl::OkStatus(), *entry);
    return std::shared_ptr<const CacheEntry>(*entry);
  }
}

std::vector<absl::StatusOr<std::shared_ptr<const CacheEntry>>>
DataKeyCacheCore::LookupForDecryption(absl::Span<const DecryptLookup> lookups) {
  std::vector<absl::StatusOr<std::shared_ptr<const CacheEntry>>> results(
      lookups.size(), absl::Status(absl::StatusCode::kInternal, ""));
  // Lookups to fetch ourselves (first index of each distinct flight), and
  // lookups answered by a flight (ours or another caller's).
  std::vector<size_t> to_fetch;
  std::vector<std::pair<size_t, std::shared_ptr<Flight>>> waiting;
  std::vector<std::string> own_flight_names;

  std::unique_lock<std::mutex> lock(mu_);
  const absl::Time now = NowLocked();
  for (size_t i = 0; i < lookups.size(); ++i) {
    const DecryptLookup& l = lookups[i];
    const std::string slot_name = DecryptionSlot(l.blob);
    auto it = slots_.find(slot_name);
    if (it != slots_.end()) {
      const CacheEntry& e = *it->second.entry;
      if (Expired(e, now)) {
        EraseLocked(slot_name);
      } else if (e.key == l.key && e.segment == l.segment &&
                 e.canonical_context == l.canonical_context) {
        ++stats_.hits;
        results[i] = std::shared_ptr<const CacheEntry>(it->second.entry);
        continue;
      }
      // Another key, segment or context than the blob was issued for: ask
      // the server, which refuses it.
    }
    ++stats_.misses;
    const std::string flight_name = DecryptionFlight(l.key, l.segment, l.blob, l.canonical_context);
    auto f = flights_.find(flight_name);
    if (f == flights_.end()) {
      f = flights_.emplace(flight_name, std::make_shared<Flight>()).first;
      to_fetch.push_back(i);
      own_flight_names.push_back(flight_name);
    }
    waiting.emplace_back(i, f->second);
  }

  if (!to_fetch.empty()) {
    std::vector<DataKeyRequest> requests;
    requests.reserve(to_fetch.size());
    for (size_t i : to_fetch) {
      const DecryptLookup& l = lookups[i];
      requests.push_back(DataKeyRequest{std::string(l.key), std::string(l.segment),
                                        std::string(l.blob), *l.context});
    }
    ++stats_.source_calls;
    const uint64_t epoch = eviction_epoch_;
    lock.unlock();
    std::vector<absl::StatusOr<crypto::SecretBytes>> keys;
    if (requests.size() == 1) {
      keys.push_back(source_->DecryptDataKey(requests[0].key, requests[0].segment,
                                             requests[0].ciphertext_blob, requests[0].context));
    } else {
      keys = source_->BatchDecryptDataKeys(requests);
    }
    std::vector<absl::StatusOr<std::shared_ptr<CacheEntry>>> entries;
    entries.reserve(to_fetch.size());
    for (size_t n = 0; n < to_fetch.size(); ++n) {
      const DecryptLookup& l = lookups[to_fetch[n]];
      if (n >= keys.size()) {
        entries.push_back(absl::InternalError("data key source answered too few items"));
      } else if (!keys[n].ok()) {
        entries.push_back(keys[n].status());
      } else {
        entries.push_back(MakeDataKeyEntry(l.key, l.segment, *l.context, l.canonical_context,
                                           std::string(l.blob), std::move(*keys[n]), l.salt,
                                           absl::Time()));
      }
    }
    lock.lock();
    const absl::Time fetched = NowLocked();
    for (size_t n = 0; n < to_fetch.size(); ++n) {
      if (entries[n].ok()) {
        SetFetched(**entries[n], fetched);
        // Not kept if an eviction came while it was being fetched (see
        // AcquireForEncryption).
        if (eviction_epoch_ == epoch) {
          InsertLocked(DecryptionSlot((*entries[n])->blob), *entries[n]);
        } else {
          (*entries[n])->evicted = true;
        }
        FinishFlightLocked(own_flight_names[n], absl::OkStatus(), *entries[n]);
      } else {
        FinishFlightLocked(own_flight_names[n], entries[n].status(), nullptr);
      }
    }
  }
  for (auto& [i, flight] : waiting) {
    absl::StatusOr<std::shared_ptr<CacheEntry>> entry = AwaitLocked(lock, flight);
    if (entry.ok()) {
      results[i] = std::shared_ptr<const CacheEntry>(*entry);
    } else {
      results[i] = entry.status();
    }
  }
  return results;
}

absl::StatusOr<std::shared_ptr<const CacheEntry>> DataKeyCacheCore::LookupOneForDecryption(
    const DecryptLookup& l) {
  auto matches = [&](const CacheEntry& e) {
    return e.key == l.key && e.segment == l.segment && e.context == *l.context;
  };
  // Fast path: the entry this thread decrypted with last time.
  if (fast_path_enabled_.load(std::memory_order_relaxed) && memo.decrypt_core_id == id_ &&
      memo.decrypt_blob == l.blob) {
    std::shared_ptr<CacheEntry> e = memo.decrypt.lock();
    if (e != nullptr && UsableNow(*e) && matches(*e)) {
      fast_hits_.fetch_add(1, std::memory_order_relaxed);
      return std::shared_ptr<const CacheEntry>(std::move(e));
    }
  }
  absl::StatusOr<std::shared_ptr<const CacheEntry>> found;
  {
    const std::string slot_name = DecryptionSlot(l.blob);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = slots_.find(slot_name);
    if (it != slots_.end() && !Expired(*it->second.entry, NowLocked()) &&
        matches(*it->second.entry)) {
      ++stats_.hits;
      found = std::shared_ptr<const CacheEntry>(it->second.entry);
    }
  }
  if (!found.ok()) {
    DecryptLookup full = l;
    const std::string canonical = crypto::CanonicalEncryptionContext(*l.context);
    full.canonical_context = canonical;
    found = std::move(LookupForDecryption(absl::MakeConstSpan(&full, 1))[0]);
    if (!found.ok()) return found;
  }
  memo.decrypt_core_id = id_;
  memo.decrypt_blob.assign(l.blob.data(), l.blob.size());
  memo.decrypt = std::const_pointer_cast<CacheEntry>(*found);
  return found;
}

std::shared_ptr<const CacheEntry> DataKeyCacheCore::LastDecryptionEntryFor(
    absl::string_view sealed, const EncryptionContext& context) {
  if (!fast_path_enabled_.load(std::memory_order_relaxed) || memo.decrypt_core_id != id_) {
    return nullptr;
  }
  std::shared_ptr<CacheEntry> e = memo.decrypt.lock();
  if (e == nullptr || e->material == nullptr || e->context != context ||
      !absl::StartsWith(sealed, e->material->header()) || !UsableNow(*e)) {
    return nullptr;
  }
  fast_hits_.fetch_add(1, std::memory_order_relaxed);
  return e;
}

absl::StatusOr<std::shared_ptr<const CacheEntry>> DataKeyCacheCore::IndexKey(
    absl::string_view key, absl::string_view segment, absl::string_view index) {
  const std::string slot_name = IndexSlot(key, segment, index);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    auto it = slots_.find(slot_name);
    if (it != slots_.end()) {
      if (!Expired(*it->second.entry, NowLocked())) {
        ++stats_.hits;
        return std::shared_ptr<const CacheEntry>(it->second.entry);
      }
      EraseLocked(slot_name);
    }
    if (auto f = flights_.find(slot_name); f != flights_.end()) {
      std::shared_ptr<Flight> flight = f->second;
      absl::StatusOr<std::shared_ptr<CacheEntry>> done = AwaitLocked(lock, flight);
      if (!done.ok()) return done.status();
      return std::shared_ptr<const CacheEntry>(*done);
    }
    ++stats_.misses;
    ++stats_.source_calls;
    flights_[slot_name] = std::make_shared<Flight>();
    const uint64_t epoch = eviction_epoch_;
    lock.unlock();
    absl::StatusOr<crypto::SecretBytes> index_key =
        source_->DeriveBlindIndexKey(key, segment, index);
    lock.lock();
    if (index_key.ok() && index_key->size() != 32) {
      index_key = absl::InternalError(absl::StrCat("data key source returned a ", index_key->size(),
                                                   "-byte blind index key; expected 32"));
    }
    if (!index_key.ok()) {
      FinishFlightLocked(slot_name, index_key.status(), nullptr);
      return index_key.status();
    }
    auto entry = std::make_shared<CacheEntry>();
    entry->key = std::string(key);
    entry->segment = std::string(segment);
    entry->index = std::string(index);
    entry->secret = std::move(*index_key);
    SetFetched(*entry, NowLocked());
    if (eviction_epoch_ == epoch) {
      InsertLocked(slot_name, entry);
    } else {
      entry->evicted = true;
    }
    FinishFlightLocked(slot_name, absl::OkStatus(), entry);
    return std::shared_ptr<const CacheEntry>(entry);
  }
}

void DataKeyCacheCore::Evict(const std::function<bool(const CacheEntry&)>& match) {
  std::unique_lock<std::mutex> lock(mu_);
  ++eviction_epoch_;
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (match(*it->second.entry)) {
      RemoveLocked(it++, true);
    } else {
      ++it;
    }
  }
}

void DataKeyCacheCore::RetireEncryptionKeys(absl::string_view key, absl::string_view segment) {
  std::unique_lock<std::mutex> lock(mu_);
  ++eviction_epoch_;
  for (auto it = slots_.begin(); it != slots_.end();) {
    const CacheEntry& e = *it->second.entry;
    if (it->first[0] == 'e' && e.key == key && e.segment == segment) {
      RemoveLocked(it++, false);
    } else {
      ++it;
    }
  }
}

void DataKeyCacheCore::EvictExpired() {
  std::unique_lock<std::mutex> lock(mu_);
  const absl::Time now = NowLocked();
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (Expired(*it->second.entry, now)) {
      RemoveLocked(it++, true);
    } else {
      ++it;
    }
  }
}

DataKeyCache::Stats DataKeyCacheCore::stats() const {
  std::unique_lock<std::mutex> lock(mu_);
  DataKeyCache::Stats s = stats_;
  s.hits += fast_hits_.load(std::memory_order_relaxed);
  s.entries = slots_.size();
  return s;
}

}  // namespace clavis::client_internal
