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
//   - destroys keys, key versions and (on full scans) segments whose pending
//     window has ended;
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
  absl::Status DestroyDueSegments(const std::string& key);
  std::unique_ptr<grpc::ClientContext> Context() const;
  void Failed(const std::string& what, const grpc::Status& status);

  clavis::v1::KeyAdmin::StubInterface* const admin_;
  const RotatorOptions options_;
  RotatorMetrics* const metrics_;
  const std::function<absl::Time()> now_;
  // Per key, the primary version all its segments were last re-wrapped to.
  std::map<std::string, uint32_t> rewrapped_to_;
  absl::Time last_full_scan_ = absl::InfinitePast();
  uint64_t overdue_ = 0, rewrap_pending_ = 0;
};

}  // namespace clavis::rotator

#endif  // CLAVIS_TOOLS_ROTATOR_ROTATOR_H_
