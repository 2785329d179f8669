#include "kms/keys/record_events.h"

#include <map>

#include "google/protobuf/util/message_differencer.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyEvent;
using clavis::v1::KeyOrigin;
using clavis::v1::KeyState;

KeyEvent Event(const KeyName& key, KeyEvent::Type type, const std::string& segment = "",
               uint32_t version = 0) {
  KeyEvent event;
  event.set_type(type);
  event.set_key(key.ToString());
  event.set_segment(segment);
  event.set_version(version);
  return event;
}

// The event of a key (or segment) moving from state `from` to `to`; nullopt
// when the move has none of its own (PENDING_IMPORT comes with a material
// event of the version).
std::optional<KeyEvent::Type> KeyStateEvent(KeyState from, KeyState to) {
  if (from == KeyState::PENDING_DESTRUCTION &&
      (to == KeyState::ENABLED || to == KeyState::DISABLED)) {
    return KeyEvent::DESTRUCTION_CANCELLED;
  }
  switch (to) {
    case KeyState::ENABLED:
      return from == KeyState::PENDING_IMPORT ? std::nullopt : std::optional(KeyEvent::ENABLED);
    case KeyState::DISABLED:
      return KeyEvent::DISABLED;
    case KeyState::PENDING_DESTRUCTION:
      return KeyEvent::DESTRUCTION_SCHEDULED;
    case KeyState::DESTROYED:
      return KeyEvent::DESTROYED;
    default:
      return std::nullopt;
  }
}

// Versions and segments use the key's DESTRUCTION_CANCELLED (with their
// version or segment set), as KeyLifecycle does.
std::optional<KeyEvent::Type> VersionStateEvent(KeyState from, KeyState to) {
  if (from == KeyState::PENDING_DESTRUCTION &&
      (to == KeyState::ENABLED || to == KeyState::DISABLED)) {
    return KeyEvent::DESTRUCTION_CANCELLED;
  }
  switch (to) {
    case KeyState::ENABLED:
      return KeyEvent::VERSION_ENABLED;
    case KeyState::DISABLED:
      return KeyEvent::VERSION_DISABLED;
    case KeyState::PENDING_DESTRUCTION:
      return KeyEvent::VERSION_DESTRUCTION_SCHEDULED;
    case KeyState::DESTROYED:
      return KeyEvent::VERSION_DESTROYED;
    default:
      return std::nullopt;
  }
}

std::optional<KeyEvent::Type> SegmentStateEvent(KeyState from, KeyState to) {
  if (from == KeyState::PENDING_DESTRUCTION &&
      (to == KeyState::ENABLED || to == KeyState::DISABLED)) {
    return KeyEvent::DESTRUCTION_CANCELLED;
  }
  switch (to) {
    case KeyState::ENABLED:
      return KeyEvent::SEGMENT_ENABLED;
    case KeyState::DISABLED:
      return KeyEvent::SEGMENT_REVOKED;
    case KeyState::PENDING_DESTRUCTION:
      return KeyEvent::SEGMENT_DESTRUCTION_SCHEDULED;
    case KeyState::DESTROYED:
      return KeyEvent::SEGMENT_DESTROYED;
    default:
      return std::nullopt;
  }
}

// The record without what the specific events above describe (state,
// versions, primary, rotation schedule and their timestamps): if what is
// left differs, a setting changed.
internal::KeyRecord Settings(internal::KeyRecord r) {
  r.clear_state();
  r.clear_state_change_time_us();
  r.clear_destroy_time_us();
  r.clear_primary_version();
  r.clear_versions();
  r.clear_next_rotation_time_us();
  return r;
}

void VersionEvents(const KeyName& key, KeyOrigin origin, const internal::KeyVersionRecord* before,
                   const internal::KeyVersionRecord& after, std::vector<KeyEvent>* out) {
  const uint32_t version = after.version();
  const bool had_material = before != nullptr && !before->root_wrapped_material().empty();
  const bool has_material = !after.root_wrapped_material().empty();
  if (before == nullptr) {
    // A new version: made by a rotation (ROTATED comes with the primary) or
    // by an import of external material.
    if (origin == KeyOrigin::EXTERNAL && has_material) {
      out->push_back(Event(key, KeyEvent::MATERIAL_IMPORTED, "", version));
    }
    return;
  }
  if (!had_material && has_material && after.state() != KeyState::DESTROYED) {
    out->push_back(Event(key, KeyEvent::MATERIAL_IMPORTED, "", version));
  }
  if (before->state() != after.state()) {
    if (after.state() == KeyState::PENDING_IMPORT && had_material && !has_material) {
      out->push_back(Event(key, KeyEvent::MATERIAL_EXPIRED, "", version));
    } else if (auto type = VersionStateEvent(before->state(), after.state())) {
      out->push_back(Event(key, *type, "", version));
    }
  }
  if (before->compromise_time_us() == 0 && after.compromise_time_us() != 0) {
    out->push_back(Event(key, KeyEvent::VERSION_COMPROMISED, "", version));
  }
}

}  // namespace

std::vector<KeyEvent> DeriveKeyEvents(const KeyName& key,
                                      const std::optional<internal::KeyRecord>& before,
                                      const std::optional<internal::KeyRecord>& after) {
  std::vector<KeyEvent> out;
  if (!after.has_value()) {
    // Key records are never deleted (a destroyed key keeps its record); if
    // one disappears anyway, nothing of it may be used any more.
    if (before.has_value()) out.push_back(Event(key, KeyEvent::DESTROYED));
    return out;
  }
  if (!before.has_value()) {
    out.push_back(Event(key, KeyEvent::CREATED));
    return out;
  }
  if (before->state() != after->state()) {
    if (auto type = KeyStateEvent(before->state(), after->state())) {
      out.push_back(Event(key, *type));
    }
  }
  if (after->primary_version() != before->primary_version() && after->primary_version() != 0) {
    out.push_back(Event(key, KeyEvent::ROTATED, "", after->primary_version()));
  }
  // A destroyed key's versions are destroyed with it: DESTROYED says it all.
  if (after->state() == KeyState::DESTROYED) return out;
  std::map<uint32_t, const internal::KeyVersionRecord*> old_versions;
  for (const auto& v : before->versions()) old_versions[v.version()] = &v;
  for (const auto& v : after->versions()) {
    auto it = old_versions.find(v.version());
    VersionEvents(key, after->origin(), it == old_versions.end() ? nullptr : it->second, v, &out);
    if (it != old_versions.end()) old_versions.erase(it);
  }
  // A version that vanished (versions are never removed): treat as destroyed.
  for (const auto& [version, v] : old_versions) {
    out.push_back(Event(key, KeyEvent::VERSION_DESTROYED, "", version));
  }
  // MessageDifferencer, not serialized bytes: map fields (labels) have no
  // fixed serialized order.
  if (!google::protobuf::util::MessageDifferencer::Equals(Settings(*before), Settings(*after))) {
    out.push_back(Event(key, KeyEvent::SETTINGS_CHANGED));
  }
  return out;
}

std::vector<KeyEvent> DeriveSegmentEvents(const SegmentName& segment,
                                          const std::optional<internal::SegmentRecord>& before,
                                          const std::optional<internal::SegmentRecord>& after) {
  std::vector<KeyEvent> out;
  // Created: no event (as when KeyLifecycle creates one). Deleted: only with
  // the whole key, whose DESTROYED event covers every segment.
  if (!before.has_value() || !after.has_value()) return out;
  if (before->state() != after->state()) {
    if (auto type = SegmentStateEvent(before->state(), after->state())) {
      out.push_back(Event(segment.key, *type, segment.segment));
    }
  }
  if (after->primary_version() != before->primary_version() && after->primary_version() != 0 &&
      after->state() != KeyState::DESTROYED) {
    out.push_back(
        Event(segment.key, KeyEvent::SEGMENT_ROTATED, segment.segment, after->primary_version()));
  }
  return out;
}

}  // namespace clavis::kms
