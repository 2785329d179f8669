// The key events (clavis.v1.KeyEvent) a change of a stored record stands
// for, derived by comparing the record before and after the change.
//
// Replicas sharing one store (kms/keys/store_follower.h) learn of changes
// from the store's change feed, whoever made them; these functions turn
// such a change into the events KeyLifecycle publishes when it makes the
// change itself, so WatchKeyEvents subscribers of every replica hear of
// every change. Where a difference has no exact event, the derivation errs
// towards events that make clients drop cached keys (SETTINGS_CHANGED),
// never towards silence. Segment-key re-wraps (versions rewritten, same
// state and primary) are no event, as when KeyLifecycle makes them.
//
// Events carry type, key, segment and version; time and sequence are the
// publisher's to set.
#ifndef CLAVIS_KMS_KEYS_RECORD_EVENTS_H_
#define CLAVIS_KMS_KEYS_RECORD_EVENTS_H_

#include <optional>
#include <vector>

#include "clavis/v1/resources.pb.h"
#include "kms/keys/names.h"
#include "kms/keys/records.pb.h"

namespace clavis::kms {

// `before` nullopt: the record was created; `after` nullopt: deleted.
std::vector<clavis::v1::KeyEvent> DeriveKeyEvents(const KeyName& key,
                                                  const std::optional<internal::KeyRecord>& before,
                                                  const std::optional<internal::KeyRecord>& after);

std::vector<clavis::v1::KeyEvent> DeriveSegmentEvents(
    const SegmentName& segment, const std::optional<internal::SegmentRecord>& before,
    const std::optional<internal::SegmentRecord>& after);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_RECORD_EVENTS_H_
