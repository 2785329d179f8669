// Actions of the key-policy language: one per operation a principal can be
// authorized for (docs/POLICY.md, "Actions"). The list is fixed and closed:
// an unknown name in a policy is an error, never silently ignored, so a typo
// ("Decrpyt") cannot turn a Deny into a no-op.
//
// Every action belongs to one class, used by separation of duties:
//   kDataPlane       uses key material on a caller's data (Encrypt, Decrypt...)
//                    or hands key material derived for it to the caller
//                    (DeriveBlindIndexKey)
//   kReadOnly        reads metadata or the audit trail; changes nothing
//   kAdministrative  changes keys, segments or the policy, or moves material
//                    in or out of the service
//
// Thread safety: everything here is stateless and safe to call concurrently.
#ifndef CLAVIS_KMS_POLICY_ACTION_H_
#define CLAVIS_KMS_POLICY_ACTION_H_

#include <bitset>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace clavis::kms::policy {

enum class Action {
  kGenerateDataKey,
  kDecrypt,
  kReEncrypt,
  kEncrypt,
  kDeriveBlindIndexKey,
  kWatchKeyEvents,
  kGetKey,
  kListKeys,
  kCreateKey,
  kRotate,
  kEnable,
  kDisable,
  kScheduleDestruction,
  kCancelDestruction,
  kDestroy,
  kUpdateSettings,
  kManageVersions,
  kRewrapSegments,
  kCreateSegment,
  kGetSegment,
  kListSegments,
  kRotateSegment,
  kRevokeSegment,
  kEnableSegment,
  kDestroySegment,
  kSetPolicy,
  kGetPolicy,
  kReadAudit,
  kApproveRequest,
  kExportEscrow,
  kImportKeyMaterial,
};
constexpr size_t kNumActions = static_cast<size_t>(Action::kImportKeyMaterial) + 1;

enum class ActionClass { kDataPlane, kReadOnly, kAdministrative };

// A set of actions; bit i is Action(i).
using ActionSet = std::bitset<kNumActions>;

// "Decrypt" for Action::kDecrypt: the name used in policy documents.
absl::string_view ActionName(Action action);
ActionClass ClassOf(Action action);
// Every action, in enum order.
const std::vector<Action>& AllActions();

// The action with exactly this (case-sensitive) name, or nullopt.
std::optional<Action> ParseAction(absl::string_view name);

// All actions of a class.
ActionSet ActionsOfClass(ActionClass action_class);

inline ActionSet ToSet(Action action) {
  ActionSet set;
  set.set(static_cast<size_t>(action));
  return set;
}
inline bool Contains(const ActionSet& set, Action action) {
  return set.test(static_cast<size_t>(action));
}

// "Decrypt, Encrypt" (enum order), for messages and documents.
std::string DescribeActions(const ActionSet& set);

// The known action whose name is closest to `name` (edit distance <= 2), for
// "did you mean" hints; nullopt when nothing is close.
std::optional<Action> ClosestAction(absl::string_view name);

}  // namespace clavis::kms::policy

#endif  // CLAVIS_KMS_POLICY_ACTION_H_
