// ApprovalBook: M-of-N approval of destructive or access-widening actions
// (docs/ACCESS.md, "Approvals").
//
// An action that needs approval is not run; it becomes a pending request
// holding the original request. It runs once `approvals_required` distinct
// principals, other than the requester, approved it before it expired, unless
// someone denied it first (final). Who may approve or deny is the key
// policy's business (action ApproveRequest), checked by the caller before
// Approve and Deny; this class enforces the counting rules
// atomically in the Store (compare-and-set), so concurrent approvals never
// run an action twice.
//
// Thread safety: all methods may be called concurrently.
#ifndef CLAVIS_KMS_ACCESS_APPROVALS_H_
#define CLAVIS_KMS_ACCESS_APPROVALS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "kms/access/approvals.pb.h"
#include "kms/keys/clock.h"
#include "kms/keys/names.h"
#include "kms/storage/store.h"

namespace clavis::kms::access {

inline constexpr int kApprovalPending = 1;   // clavis.v1.APPROVAL_PENDING
inline constexpr int kApprovalExecuted = 2;  // clavis.v1.APPROVAL_EXECUTED
inline constexpr int kApprovalExpired = 3;   // clavis.v1.APPROVAL_EXPIRED
inline constexpr int kApprovalDenied = 4;    // clavis.v1.APPROVAL_DENIED

// A deny reason is shown to every reader of the request: short, and no
// control characters that could rewrite an approver's terminal.
inline constexpr size_t kMaxDenyReasonBytes = 512;

struct NewApproval {
  KeyName key;
  std::string action;
  std::string resource;
  std::string requester;
  uint32_t approvals_required = 2;
  std::string payload_type;
  std::string payload;
  std::string summary;
  std::string key_fingerprint;
};

struct ApprovalName {
  std::string tenant;
  std::string id;
  std::string ToString() const;  // tenants/{t}/approvals/{id}
};
absl::StatusOr<ApprovalName> ParseApprovalName(absl::string_view name);

class ApprovalBook {
 public:
  ApprovalBook(Store* store, const Clock* clock, absl::Duration ttl = absl::Hours(24));

  absl::StatusOr<internal::ApprovalRecord> Create(const NewApproval& request);

  struct Approved {
    internal::ApprovalRecord record;
    // True for exactly one caller: the approval that reached the quorum.
    // That caller runs the action and then calls Complete.
    bool run_now = false;
  };
  // FailedPrecondition: the requester approving their own request, a second
  // approval by the same principal, a request that is no longer pending or
  // has expired (it is then marked expired). NotFound for an unknown id.
  absl::StatusOr<Approved> Approve(const ApprovalName& name, const std::string& approver);

  // Marks a pending request DENIED for good, by `denier`, and drops its
  // stored call. InvalidArgument for a bad reason (kMaxDenyReasonBytes, no
  // control characters); FailedPrecondition naming the state for a request
  // that is executed, being executed, denied or expired (it is then marked
  // expired); NotFound for an unknown id.
  absl::StatusOr<internal::ApprovalRecord> Deny(const ApprovalName& name, const std::string& denier,
                                                const std::string& reason);

  // Records the outcome of the action run after the quorum.
  absl::Status Complete(const ApprovalName& name, const absl::Status& result);
  // For approvals that grant a call instead of running one: marks the grant
  // used, once. The record must be for `action` on `resource`, made by
  // `requester`, approved (executed with OK) and not expired; each failure
  // is FailedPrecondition (NotFound for an unknown id) saying which.
  absl::StatusOr<internal::ApprovalRecord> Redeem(const ApprovalName& name,
                                                  const std::string& requester,
                                                  absl::string_view action,
                                                  absl::string_view resource);

  absl::StatusOr<internal::ApprovalRecord> Get(const ApprovalName& name);
  // Requests of `key` (newest last), expired ones marked as such.
  absl::StatusOr<std::vector<internal::ApprovalRecord>> List(const KeyName& key,
                                                             bool include_finished);

 private:
  static std::string StoreKey(const std::string& tenant, const std::string& id);
  absl::StatusOr<internal::ApprovalRecord> Update(
      const ApprovalName& name,
      const std::function<absl::Status(internal::ApprovalRecord*)>& mutate);

  Store* const store_;
  const Clock* const clock_;
  const absl::Duration ttl_;
};

}  // namespace clavis::kms::access

#endif  // CLAVIS_KMS_ACCESS_APPROVALS_H_
