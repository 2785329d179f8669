// Rotator: one pass of clavis-rotator over every key of the configured
// tenants, through clavisd's KeyAdmin API (so every action it takes is
// authorized and audited like an admin's):
//   - rotates each generated key whose next rotation time has passed, with
//     compare-and-set on that time (RotateKeyRequest.if_next_rotation_time):
//     any number of rotators racing make exactly one rotation per due time;
//   - re-wraps the segment keys of every key whose primary version moved
//     (and of every key on the first pass and every full scan), batch by
//     batch; RewrapSegments is idempotent, so a rotator killed half-way and
//     started again finishes the job;
//   - re-wraps at once the segment keys of any key with a version newly
//     marked compromised (and every pass until one re-wrap completes);
//   - after each complete re-wrap, asks which versions protect nothing any
//     more (GetKeyVersionUsage) and, per the key's version_retirement,
//     disables them and schedules their destruction (compromised versions
//     are always at least disabled), once the version that replaced them
//     has been primary for `retire_grace` (requests in flight settle); a
//     key needing M-of-N approval gets no destruction scheduled by it;
//   - on full scans, rotates each segment key whose primary version is
//     older than the key's segment_rotation_period (compare-and-set on the
//     segment's primary version: one rotation per due time);
//   - destroys keys, key versions and (on full scans) segments whose pending
//     window has ended (a version only if no segment key is wrapped under
//     it any more);
//   - writes down the expiry of imported material whose valid-to has passed.
// A failure on one key is logged and counted, and the pass goes on.
//
// Thread safety: RunOnce is not reentrant; metrics may be read concurrently.
#ifndef CLAVIS_TOOLS_ROTATOR_ROTATOR_H_
#define CLAVIS_TOOLS_ROTATOR_ROTATOR_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "tools/rotator/rotator_metrics.h"

namespace clavis::rotator {

struct RotatorOptions {
  std::vector<std::string> tenants;  // "acme" or "tenants/acme"
  int rewrap_batch_size = 1000;
  // How often every key's segments are looked at even if its primary did
  // not move (re-wrap stragglers, destroy segments at the end of their
  // window). The first pass is always full.
  absl::Duration full_scan_interval = absl::Minutes(10);
  absl::Duration call_timeout = absl::Seconds(60);
  // How long the newest version must have been primary before older unused
  // ones are retired (a request that read the key just before the rotation
  // may still wrap a new segment key under the old primary).
  absl::Duration retire_grace = absl::Minutes(5);
  // Call credentials and the like for every RPC (e.g. a bearer token).
  std::function<void(grpc::ClientContext*)> prepare_context;
};

class Rotator {
 public:
  // REQUIRES: admin and metrics outlive the rotator.
  Rotator(
      clavis::v1::KeyAdmin::StubInterface* admin, RotatorOptions options, RotatorMetrics* metrics,
      std::function<absl::Time()> now = [] { return absl::Now(); });

  // One pass. Returns the first error of a whole tenant listing failing;
  // per-key failures only count in metrics and the log.
  absl::Status RunOnce();

 private:
  void HandleKey(clavis::v1::Key key, bool full_scan);
  absl::Status Rewrap(const std::string& key, bool* complete);
  // Disables (and schedules the destruction of) versions no segment key
  // uses, per the key's setting; logs and counts unused ones either way.
  void RetireUnusedVersions(const clavis::v1::Key& listed);
  // Destroys segments at the end of their window and rotates segments due
  // by the key's segment_rotation_period.
  absl::Status ScanSegments(const clavis::v1::Key& key);
  void RotateSegmentIfDue(const clavis::v1::Segment& segment, absl::Duration period,
                          absl::Time now);
  std::unique_ptr<grpc::ClientContext> Context() const;
  void Failed(const std::string& what, const grpc::Status& status);

  clavis::v1::KeyAdmin::StubInterface* const admin_;
  const RotatorOptions options_;
  RotatorMetrics* const metrics_;
  const std::function<absl::Time()> now_;
  // Per key, what its segments were last completely re-wrapped for: the
  // primary version then and how many versions were marked compromised.
  struct RewrapState {
    uint32_t primary = 0;
    int compromised = 0;
    bool operator!=(const RewrapState& o) const {
      return primary != o.primary || compromised != o.compromised;
    }
  };
  std::map<std::string, RewrapState> rewrapped_to_;
  absl::Time last_full_scan_ = absl::InfinitePast();
  uint64_t overdue_ = 0, rewrap_pending_ = 0, unused_versions_ = 0, old_segment_keys_ = 0;
  uint64_t segments_overdue_ = 0;
};

}  // namespace clavis::rotator

#endif  // CLAVIS_TOOLS_ROTATOR_ROTATOR_H_
