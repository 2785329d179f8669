#include "kms/keys/store_follower.h"

#include <map>
#include <optional>
#include <utility>

#include "kms/keys/record_events.h"
#include "kms/keys/resource_views.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {
namespace {

// The record a feed value holds; nullopt if absent or (never expected:
// every writer writes whole records) unparsable, which errs towards the
// events of a deletion or creation rather than none.
template <typename Record>
std::optional<Record> Parse(const std::optional<std::string>& value) {
  if (!value.has_value()) return std::nullopt;
  Record record;
  if (!record.ParseFromString(*value)) return std::nullopt;
  return record;
}

// Whether some master-key version had material before and has none after
// (or the record is gone).
bool LostMaterial(const std::optional<internal::KeyRecord>& before,
                  const std::optional<internal::KeyRecord>& after) {
  if (!before.has_value()) return false;
  if (!after.has_value()) return true;
  std::map<uint32_t, bool> has_material;
  for (const auto& v : after->versions()) {
    has_material[v.version()] = !v.root_wrapped_material().empty();
  }
  for (const auto& v : before->versions()) {
    if (v.root_wrapped_material().empty()) continue;
    auto it = has_material.find(v.version());
    if (it == has_material.end() || !it->second) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<StoreFollower>> StoreFollower::Start(Store* store,
                                                                    KeyRepository* repository,
                                                                    KeyEventBus* events,
                                                                    const Clock* clock) {
  auto follower = std::make_unique<StoreFollower>(repository, events, clock);
  // Only the store is current until the feed says it is live (its first
  // report may come before WatchChanges returns, so distrust first).
  repository->InvalidateAll(/*trusted=*/false);
  StoreFollower* f = follower.get();
  StoreChangeHandler handler;
  handler.on_changes = [f](const std::vector<StoreChange>& changes) { f->Apply(changes); };
  handler.on_resync = [f](bool connected) { f->Resync(connected); };
  auto feed = store->WatchChanges("", std::move(handler));
  if (!feed.ok()) {
    // No feed (a store only this process writes): nothing to follow, and
    // the caches are as trustworthy as before.
    repository->InvalidateAll(/*trusted=*/true);
    return feed.status();
  }
  follower->feed_ = *std::move(feed);
  return follower;
}

StoreFollower::StoreFollower(KeyRepository* repository, KeyEventBus* events, const Clock* clock)
    : repository_(repository), events_(events), clock_(clock) {}

StoreFollower::~StoreFollower() { feed_.reset(); }

void StoreFollower::Apply(const std::vector<StoreChange>& changes) {
  for (const StoreChange& change : changes) {
    if (auto key = KeyRepository::ParseKeyStoreKey(change.key)) {
      auto before = Parse<internal::KeyRecord>(change.old_value);
      auto after = Parse<internal::KeyRecord>(change.new_value);
      repository_->InvalidateStoreKey(change.key);
      // Master material gone (a version destroyed, imported material
      // expired, the key destroyed): segment keys unwrapped under it must
      // not stay in this replica's memory either, as on the replica that
      // purged it.
      if (LostMaterial(before, after)) {
        repository_->InvalidateStorePrefix(KeyRepository::SegmentPrefix(*key));
      }
      Publish(*key, DeriveKeyEvents(*key, before, after));
    } else if (auto segment = KeyRepository::ParseSegmentStoreKey(change.key)) {
      repository_->InvalidateStoreKey(change.key);
      Publish(segment->key,
              DeriveSegmentEvents(*segment, Parse<internal::SegmentRecord>(change.old_value),
                                  Parse<internal::SegmentRecord>(change.new_value)));
    }
    // Other records (approvals, audit keys) are not cached.
    ++changes_applied_;
  }
}

void StoreFollower::Resync(bool connected) {
  if (connected) {
    // Whatever changed while the feed was down was not reported: start
    // from empty caches, and tell subscribers they may have missed events.
    repository_->InvalidateAll(/*trusted=*/true);
    if (events_ != nullptr) events_->LoseAll();
    if (!connected_.exchange(true)) spdlog::info("store change feed live: caches enabled");
  } else {
    repository_->InvalidateAll(/*trusted=*/false);
    if (events_ != nullptr) events_->LoseAll();
    if (connected_.exchange(false)) {
      spdlog::warn(
          "store change feed interrupted: caches bypassed until it is back (other replicas' "
          "changes cannot be followed meanwhile)");
    }
  }
}

void StoreFollower::Publish(const KeyName& key, std::vector<clavis::v1::KeyEvent> events) {
  if (events_ == nullptr) return;
  const int64_t now = ToMicros(clock_->Now());
  for (auto& event : events) {
    event.mutable_time()->set_seconds(now / 1000000);
    event.mutable_time()->set_nanos(static_cast<int32_t>((now % 1000000) * 1000));
    events_->Publish(key.tenant, std::move(event));
    ++events_published_;
  }
}

}  // namespace clavis::kms
