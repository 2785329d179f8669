// KeyLifecycle: the control plane of master keys, their versions and their
// segments: creation, rotation, enable/disable, scheduled destruction and
// crypto-shredding, settings and listing. It decides which state transitions
// are allowed and publishes a KeyEvent for each change; KeyRepository stores.
//
// States (clavis.v1.KeyState) and the allowed transitions, for keys, key
// versions and segments alike:
//   ENABLED <-> DISABLED
//   ENABLED | DISABLED -> PENDING_DESTRUCTION (destroy_time = now + window)
//   PENDING_DESTRUCTION -> DISABLED (cancelled)
//   PENDING_DESTRUCTION -> DESTROYED once destroy_time has passed (final:
//   material purged from storage; destroying a DESTROYED key, version or
//   segment again re-runs the purge, for when it failed after the commit)
// Keys of origin EXTERNAL (BYOK, docs/BYOK.md) also know PENDING_IMPORT:
//   (created) PENDING_IMPORT -> ENABLED on the first import
//   ENABLED -> PENDING_IMPORT when the primary version's material expires
//   (an ENABLED version likewise), and back on re-import of the same
//   material; a DISABLED key or version keeps its state when its material
//   expires and goes to PENDING_IMPORT, not ENABLED, when enabled without it
//   PENDING_IMPORT -> DISABLED | PENDING_DESTRUCTION, as from ENABLED.
// Orthogonal to the state, a version can be marked compromised (final): it
// then decrypts nothing and its segment keys only move off it by re-wrap.
// Refused transitions are FailedPrecondition with a message that says the
// current state, since when, and what to do instead.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_KEYS_KEY_LIFECYCLE_H_
#define CLAVIS_KMS_KEYS_KEY_LIFECYCLE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clavis/v1/resources.pb.h"
#include "crypto/secret_bytes.h"
#include "kms/keys/clock.h"
#include "kms/keys/key_events.h"
#include "kms/keys/key_repository.h"

namespace clavis::kms {

struct KeyPolicyLimits {
  // Pending windows for destruction: production clouds use 7..120 days (a
  // dev/test server may lower the minimum to seconds).
  absl::Duration min_destruction_window = absl::Hours(24 * 7);
  absl::Duration max_destruction_window = absl::Hours(24 * 120);
  absl::Duration default_destruction_window = absl::Hours(24 * 30);
  absl::Duration min_rotation_period = absl::Hours(24);
  absl::Duration max_rotation_period = absl::Hours(24 * 365 * 100);
};

inline constexpr uint32_t kMaxApprovalsRequired = 10;

struct CreateKeyParams {
  std::string tenant;
  std::string key_id;
  std::string description;
  std::map<std::string, std::string> labels;
  absl::Duration rotation_period = absl::ZeroDuration();  // zero: none
  std::optional<absl::Time> next_rotation_time;
  bool require_explicit_segments = false;
  // The key policy document, already validated by the access layer
  // (kms/policy parses it; the key domain stores it opaquely).
  std::string policy_json;
  uint32_t approvals_required = 0;  // M of M-of-N; 0 or 1: none
  // EXTERNAL: no material is made; the key waits in PENDING_IMPORT.
  clavis::v1::KeyOrigin origin = clavis::v1::GENERATED;
  clavis::v1::VersionRetirement version_retirement = clavis::v1::VERSION_RETIREMENT_UNSPECIFIED;
  absl::Duration segment_rotation_period = absl::ZeroDuration();  // zero: none
};

// Where imported material goes (ImportKeyMaterial).
struct ImportTarget {
  // A new primary version (always the case for the first import).
  bool new_version = false;
  // Otherwise the version the same material is imported into again
  // (0: the primary version).
  uint32_t version = 0;
  // When the material expires (nullopt: never); must lie in the future.
  std::optional<absl::Time> valid_to;
};

// A change of a key's access control (both optional; at least one set).
struct KeyAccessUpdate {
  std::optional<std::string> policy_json;  // validated by the caller
  std::optional<uint32_t> approvals_required;
};

struct KeySettingsUpdate {
  std::optional<std::string> description;
  std::optional<std::map<std::string, std::string>> labels;
  std::optional<absl::Duration> rotation_period;  // zero: none
  std::optional<absl::Time> next_rotation_time;   // InfinitePast: clear
  std::optional<bool> require_explicit_segments;
  std::optional<clavis::v1::VersionRetirement> version_retirement;
  std::optional<absl::Duration> segment_rotation_period;  // zero: none
};

// What a master-key version still protects (KeyVersionUsage).
struct VersionUsage {
  uint64_t segment_key_versions = 0;
  uint64_t segments = 0;
};

struct RewrapProgress {
  uint64_t rewrapped = 0;
  uint64_t already_current = 0;
  std::string next_segment;  // empty when every segment was visited
  // Each segment-key version moved off a compromised master-key version:
  // what the caller audits, one record per use of compromised material.
  struct CompromisedUse {
    std::string segment;
    uint32_t key_version = 0;
    uint32_t segment_key_version = 0;
  };
  std::vector<CompromisedUse> compromised_uses;
  // Segments given a fresh primary segment key (theirs had been wrapped
  // under a compromised version).
  uint64_t segments_rotated = 0;
};

class KeyLifecycle {
 public:
  // REQUIRES: all pointers outlive the object.
  KeyLifecycle(KeyRepository* repository, const Clock* clock, KeyEventBus* events,
               KeyPolicyLimits limits = {});

  absl::StatusOr<clavis::v1::Key> CreateKey(const CreateKeyParams& params);
  // The stored key after any expiry of imported material that has passed
  // was written down (ExpireImportedMaterial): what every operation that
  // wraps or unwraps under the key starts from.
  absl::StatusOr<std::shared_ptr<const KeyEntry>> CurrentKey(const KeyName& name);
  absl::StatusOr<clavis::v1::Key> GetKey(const KeyName& name);
  // Keys after `start_after` (a key id), at most `limit`; `next` is the last
  // id returned when more may follow, else empty.
  absl::StatusOr<std::vector<clavis::v1::Key>> ListKeys(const std::string& tenant,
                                                        const std::string& start_after,
                                                        size_t limit, std::string* next);
  // With `if_next_rotation_time`, rotates only while the key's next rotation
  // time is exactly that (Aborted otherwise): exactly one rotation per due
  // time however many schedulers race.
  absl::StatusOr<clavis::v1::Key> RotateKey(
      const KeyName& name, std::optional<absl::Time> if_next_rotation_time = std::nullopt);
  absl::StatusOr<clavis::v1::Key> EnableKey(const KeyName& name);
  absl::StatusOr<clavis::v1::Key> DisableKey(const KeyName& name);
  // `window` nullopt: the default window.
  absl::StatusOr<clavis::v1::Key> ScheduleKeyDestruction(const KeyName& name,
                                                         std::optional<absl::Duration> window);
  absl::StatusOr<clavis::v1::Key> CancelKeyDestruction(const KeyName& name);
  absl::StatusOr<clavis::v1::Key> DestroyKey(const KeyName& name);
  absl::StatusOr<clavis::v1::Key> UpdateKeySettings(const KeyName& name,
                                                    const KeySettingsUpdate& update);
  // Replaces the stored policy and/or approval quorum (SETTINGS_CHANGED event).
  // FailedPrecondition for a destroyed key; InvalidArgument for a quorum
  // above kMaxApprovalsRequired.
  absl::StatusOr<clavis::v1::Key> UpdateKeyAccess(const KeyName& name,
                                                  const KeyAccessUpdate& update);

  absl::StatusOr<clavis::v1::Key> EnableKeyVersion(const KeyVersionName& name);
  absl::StatusOr<clavis::v1::Key> DisableKeyVersion(const KeyVersionName& name);
  absl::StatusOr<clavis::v1::Key> ScheduleKeyVersionDestruction(
      const KeyVersionName& name, std::optional<absl::Duration> window);
  absl::StatusOr<clavis::v1::Key> CancelKeyVersionDestruction(const KeyVersionName& name);
  absl::StatusOr<clavis::v1::Key> DestroyKeyVersion(const KeyVersionName& name);
  // Marks a version compromised (final; again is a no-op): CheckKeyVersion-
  // Usable refuses it from then on, so it decrypts nothing, and only
  // RewrapSegments still unwraps under it. The primary version of a
  // generated key is first replaced by a new one in the same write (a
  // rotation, whatever the key's state short of DESTROYED); for an imported
  // key that is FailedPrecondition (import new material with new_version
  // first). Destroyed versions: FailedPrecondition.
  absl::StatusOr<clavis::v1::Key> MarkKeyVersionCompromised(const KeyVersionName& name);

  // Stores imported material (already unwrapped; 32 bytes) in a key of
  // origin EXTERNAL, wrapped under the root key, with its key check value
  // and fingerprint. A new version must hold material no other version of
  // the key holds; a re-import must be exactly the version's own material
  // (constant-time fingerprint compare). FailedPrecondition otherwise, and
  // for keys GENERATED, destroyed or pending destruction.
  absl::StatusOr<clavis::v1::Key> ImportKeyMaterial(const KeyName& name,
                                                    const crypto::SecretBytes& material,
                                                    const ImportTarget& target);
  // Purges the material of every version whose valid_to has passed
  // (MATERIAL_EXPIRED event per version): an ENABLED version becomes
  // PENDING_IMPORT, and so does the key when its primary version expired.
  // Returns the key (unchanged when nothing expired). Called by the data
  // plane and GetKey on first sight of an expiry.
  absl::StatusOr<clavis::v1::Key> ExpireImportedMaterial(const KeyName& name);

  // Re-wraps up to `batch_size` segments (from `start_after`) whose key
  // versions are not wrapped under the key's primary version. Each segment
  // is updated with compare-and-set, so a crash or a concurrent run loses
  // nothing and repeats nothing harmful; call again with next_segment.
  absl::StatusOr<RewrapProgress> RewrapSegments(const KeyName& name, const std::string& start_after,
                                                size_t batch_size);
  // The same, with `progress` filled even when an error stops the batch
  // part-way: what committed before it (above all the compromised uses,
  // which the caller must audit) is not lost.
  //
  // A version marked compromised also gives a fresh primary segment key to
  // every segment whose primary key predates the version's replacement (it
  // may have been wrapped under it), whatever the segment's state short of
  // DESTROYED: run after a compromise, even of a version nothing is wrapped
  // under any more, it leaves no segment issuing data keys under a key the
  // compromised material could unwrap from an old copy of the store.
  absl::Status RewrapSegments(const KeyName& name, const std::string& start_after,
                              size_t batch_size, RewrapProgress* progress);

  // Per master-key version of the key (every version listed, unused ones
  // with zeros), what it protects, from a scan of all its segments (pages
  // of 1000); `scanned` gets the number of segments. Destroyed segment-key
  // versions protect nothing and are not counted.
  absl::StatusOr<std::map<uint32_t, VersionUsage>> KeyVersionUsage(const KeyName& name,
                                                                   uint64_t* scanned);

  // A segment, created now (AlreadyExists if present).
  absl::StatusOr<clavis::v1::Segment> CreateSegment(const SegmentName& name);
  absl::StatusOr<clavis::v1::Segment> GetSegment(const SegmentName& name);
  absl::StatusOr<std::vector<clavis::v1::Segment>> ListSegments(const KeyName& key,
                                                                const std::string& label_prefix,
                                                                const std::string& start_after,
                                                                size_t limit, std::string* next);
  // With `if_primary_version`, rotates only while the segment's primary
  // version is exactly that (Aborted otherwise): one rotation per due time
  // however many rotators race.
  absl::StatusOr<clavis::v1::Segment> RotateSegment(
      const SegmentName& name, std::optional<uint32_t> if_primary_version = std::nullopt);
  absl::StatusOr<clavis::v1::Segment> RevokeSegment(const SegmentName& name);
  absl::StatusOr<clavis::v1::Segment> EnableSegment(const SegmentName& name);
  absl::StatusOr<clavis::v1::Segment> ScheduleSegmentDestruction(
      const SegmentName& name, std::optional<absl::Duration> window);
  absl::StatusOr<clavis::v1::Segment> CancelSegmentDestruction(const SegmentName& name);
  absl::StatusOr<clavis::v1::Segment> DestroySegment(const SegmentName& name);

  // Creates a segment with its first key version wrapped under the key's
  // primary version, or returns the existing one (used by the data plane on
  // first use). The key entry must be ENABLED.
  absl::StatusOr<std::shared_ptr<const SegmentEntry>> GetOrCreateSegment(const KeyEntry& key,
                                                                         const SegmentName& name);

  const KeyPolicyLimits& limits() const { return limits_; }
  const Clock* clock() const { return clock_; }

 private:
  absl::StatusOr<absl::Duration> CheckWindow(std::optional<absl::Duration> window) const;
  // A rotation period: zero (none) or within the limits.
  absl::Status CheckPeriod(absl::string_view what, absl::Duration period) const;
  // Adds a version holding `material` (generated) to `r` and makes it
  // primary, advancing the next rotation time; returns its number.
  absl::StatusOr<uint32_t> AddPrimaryVersion(const KeyName& name,
                                             const crypto::SecretBytes& material,
                                             const std::string& key_check_value,
                                             internal::KeyRecord* r);
  absl::StatusOr<internal::SegmentRecord> NewSegmentRecord(const KeyEntry& key,
                                                           const std::string& segment);
  void Publish(const KeyName& key, clavis::v1::KeyEvent::Type type, const std::string& segment = {},
               uint32_t version = 0);

  // Segments re-wrapped in one atomic write by RewrapSegments.
  static constexpr size_t kRewrapChunk = 1000;
  // What re-wrapping one segment record did.
  struct SegmentRewrap {
    bool changed = false;  // some version moved, or a fresh key was added
    bool rotated = false;  // a fresh primary segment key was added
    std::vector<RewrapProgress::CompromisedUse> uses;
  };
  // Moves every key version of `r` not wrapped under `primary` onto it
  // (unwrapping under `key`'s versions) and, after a compromise, gives it
  // a fresh primary key; only changes `r` and `outcome`.
  absl::Status RewrapSegmentRecord(const KeyEntry& key, uint32_t primary,
                                   internal::SegmentRecord* r, SegmentRewrap* outcome);
  // Adds one segment's outcome to `progress` (and publishes its rotation).
  void CountRewrap(const KeyName& name, const std::string& segment, uint32_t primary_version,
                   SegmentRewrap outcome, RewrapProgress* progress);
  // Re-wraps `chunk` in one conditional write (CommitSegmentUpdates): true
  // if it committed (progress updated); false, with nothing written and
  // `progress` untouched, if a segment or the key changed concurrently or a
  // segment could not be re-wrapped (the caller then goes one by one).
  absl::StatusOr<bool> RewrapChunk(const KeyName& name, const std::vector<StoredSegment>& chunk,
                                   RewrapProgress* progress);
  // Re-wraps `chunk` one segment at a time, each with compare-and-set.
  absl::Status RewrapOneByOne(const KeyName& name, const std::vector<StoredSegment>& chunk,
                              RewrapProgress* progress);
  absl::StatusOr<clavis::v1::Key> UpdateVersion(
      const KeyVersionName& name, clavis::v1::KeyEvent::Type event,
      const std::function<absl::Status(internal::KeyRecord*, internal::KeyVersionRecord*)>& fn);
  absl::StatusOr<clavis::v1::Segment> UpdateSegmentState(
      const SegmentName& name, clavis::v1::KeyEvent::Type event,
      const std::function<absl::Status(internal::SegmentRecord*)>& fn);

  KeyRepository* const repository_;
  const Clock* const clock_;
  KeyEventBus* const events_;
  const KeyPolicyLimits limits_;
};

// FailedPrecondition("key tenants/acme/keys/crm is DISABLED since
// 2026-11-02T10:00:00Z; ...") and friends, shared with the data plane.
absl::Status KeyNotUsable(const KeyName& name, const internal::KeyRecord& record);
absl::Status SegmentNotUsable(const SegmentName& name, const internal::SegmentRecord& record);
// FailedPrecondition naming the version and when it was marked compromised,
// with what to do (re-wrap), if it is; OK otherwise.
absl::Status VersionCompromised(const KeyVersionName& name,
                                const internal::KeyVersionRecord& version);
// True when a version's imported material has passed its valid_to at `now`
// but is still stored (ExpireImportedMaterial has not run yet).
bool ImportedMaterialExpired(const internal::KeyVersionRecord& version, absl::Time now);

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_KEYS_KEY_LIFECYCLE_H_
