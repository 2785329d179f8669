#include "clavis/cache_invalidator.h"

#include <atomic>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace clavis {
namespace {

enum class Effect { kNone, kEvictKey, kEvictSegment, kRetireSegmentEncryption, kEvictTenant };

Effect EffectOf(absl::string_view type) {
  static const auto* const evict_key = new absl::flat_hash_set<std::string>{
      "DISABLED",          "DESTRUCTION_SCHEDULED", "DESTROYED",
      "SETTINGS_CHANGED",  "VERSION_DISABLED",      "VERSION_DESTRUCTION_SCHEDULED",
      "VERSION_DESTROYED", "MATERIAL_EXPIRED",      "VERSION_COMPROMISED"};
  static const auto* const evict_segment = new absl::flat_hash_set<std::string>{
      "SEGMENT_REVOKED", "SEGMENT_DESTRUCTION_SCHEDULED", "SEGMENT_DESTROYED"};
  if (evict_key->contains(type)) return Effect::kEvictKey;
  if (evict_segment->contains(type)) return Effect::kEvictSegment;
  if (type == "SEGMENT_ROTATED") return Effect::kRetireSegmentEncryption;
  if (type == "REDACTED") return Effect::kEvictTenant;
  // CREATED, ROTATED (segment keys are re-wrapped; data keys stay valid),
  // ENABLED, DESTRUCTION_CANCELLED, SEGMENT_ENABLED, VERSION_ENABLED,
  // MATERIAL_IMPORTED, and
  // types added later that widen rather than narrow access.
  return Effect::kNone;
}

}  // namespace

struct CacheInvalidator::State {
  std::shared_ptr<Client> client;
  std::shared_ptr<DataKeyCache> cache;
  std::atomic<uint64_t> events{0};
  std::atomic<uint64_t> evictions{0};
  std::atomic<uint64_t> resyncs{0};
  std::vector<std::unique_ptr<KeyEventSubscription>> subscriptions;
  absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;
  std::thread sweeper;

  void Resync(const std::string& tenant) {
    ++resyncs;
    ++evictions;
    cache->EvictTenant(tenant);
  }

  void Apply(const std::string& tenant, std::optional<uint64_t>& last_sequence,
             const KeyEventInfo& event) {
    ++events;
    // A gap means the server dropped events for us: anything may have changed.
    const bool gap = last_sequence.has_value() && event.sequence != *last_sequence + 1;
    last_sequence = event.sequence;
    if (gap) {
      Resync(tenant);
      return;
    }
    switch (EffectOf(event.type)) {
      case Effect::kNone:
        return;
      case Effect::kEvictKey:
        cache->EvictKey(event.key);
        break;
      case Effect::kEvictSegment:
        cache->EvictSegment(event.key, event.segment);
        break;
      case Effect::kRetireSegmentEncryption:
        cache->RetireEncryptionKeys(event.key, event.segment);
        break;
      case Effect::kEvictTenant:
        cache->EvictTenant(tenant);
        break;
    }
    ++evictions;
  }
};

absl::StatusOr<std::unique_ptr<CacheInvalidator>> CacheInvalidator::Start(
    std::shared_ptr<Client> client, std::shared_ptr<DataKeyCache> cache,
    std::vector<std::string> tenants) {
  if (client == nullptr) return absl::InvalidArgumentError("client is null");
  if (cache == nullptr) return absl::InvalidArgumentError("data key cache is null");
  if (tenants.empty()) return absl::InvalidArgumentError("no tenant to watch");
  for (const std::string& t : tenants) {
    if (!absl::StartsWith(t, "tenants/") || t.size() == 8 || t.find('/', 8) != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", t, "\" is not a tenant name (tenants/{t})"));
    }
  }
  auto state = std::make_shared<State>();
  state->client = std::move(client);
  state->cache = std::move(cache);
  State* s = state.get();
  for (const std::string& tenant : tenants) {
    // The sequence is only touched on the subscription's own thread.
    auto last_sequence = std::make_shared<std::optional<uint64_t>>();
    s->subscriptions.push_back(s->client->WatchKeyEvents(
        tenant,
        [s, tenant, last_sequence](const KeyEventInfo& e) { s->Apply(tenant, *last_sequence, e); },
        [s, tenant, last_sequence](bool connected, const absl::Status&) {
          if (connected) {
            // Whatever happened while we were not listening is unknown.
            last_sequence->reset();
            s->Resync(tenant);
          }
        }));
  }
  s->sweeper = std::thread([s] {
    absl::MutexLock lock(&s->mu);
    while (!s->mu.AwaitWithTimeout(absl::Condition(&s->stopped), absl::Seconds(1))) {
      s->mu.Unlock();
      s->cache->EvictExpired();
      s->mu.Lock();
    }
  });
  return std::unique_ptr<CacheInvalidator>(new CacheInvalidator(std::move(state)));
}

CacheInvalidator::CacheInvalidator(std::shared_ptr<State> state) : state_(std::move(state)) {}

CacheInvalidator::~CacheInvalidator() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopped = true;
  }
  state_->sweeper.join();
  state_->subscriptions.clear();  // stops and joins the watch threads
}

bool CacheInvalidator::connected() const {
  for (const auto& sub : state_->subscriptions) {
    if (!sub->connected()) return false;
  }
  return true;
}

CacheInvalidator::Stats CacheInvalidator::stats() const {
  return Stats{state_->events.load(), state_->evictions.load(), state_->resyncs.load()};
}

}  // namespace clavis
