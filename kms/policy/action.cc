#include "kms/policy/action.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_join.h"

namespace clavis::kms::policy {
namespace {

struct ActionInfo {
  Action action;
  absl::string_view name;
  ActionClass action_class;
};

// Order must follow the enum: the table is indexed by the enum value.
constexpr std::array<ActionInfo, kNumActions> kActions = {{
    {Action::kGenerateDataKey, "GenerateDataKey", ActionClass::kDataPlane},
    {Action::kDecrypt, "Decrypt", ActionClass::kDataPlane},
    {Action::kReEncrypt, "ReEncrypt", ActionClass::kDataPlane},
    {Action::kEncrypt, "Encrypt", ActionClass::kDataPlane},
    // The index key lets its holder test guesses against a blind index
    // offline: data plane, never given to administrators.
    {Action::kDeriveBlindIndexKey, "DeriveBlindIndexKey", ActionClass::kDataPlane},
    // Event streams carry key names and versions, never material.
    {Action::kWatchKeyEvents, "WatchKeyEvents", ActionClass::kReadOnly},
    {Action::kGetKey, "GetKey", ActionClass::kReadOnly},
    {Action::kListKeys, "ListKeys", ActionClass::kReadOnly},
    {Action::kCreateKey, "CreateKey", ActionClass::kAdministrative},
    {Action::kRotate, "Rotate", ActionClass::kAdministrative},
    {Action::kEnable, "Enable", ActionClass::kAdministrative},
    {Action::kDisable, "Disable", ActionClass::kAdministrative},
    {Action::kScheduleDestruction, "ScheduleDestruction", ActionClass::kAdministrative},
    {Action::kCancelDestruction, "CancelDestruction", ActionClass::kAdministrative},
    {Action::kDestroy, "Destroy", ActionClass::kAdministrative},
    {Action::kUpdateSettings, "UpdateSettings", ActionClass::kAdministrative},
    {Action::kManageVersions, "ManageVersions", ActionClass::kAdministrative},
    {Action::kRewrapSegments, "RewrapSegments", ActionClass::kAdministrative},
    {Action::kCreateSegment, "CreateSegment", ActionClass::kAdministrative},
    {Action::kGetSegment, "GetSegment", ActionClass::kReadOnly},
    {Action::kListSegments, "ListSegments", ActionClass::kReadOnly},
    {Action::kRotateSegment, "RotateSegment", ActionClass::kAdministrative},
    {Action::kRevokeSegment, "RevokeSegment", ActionClass::kAdministrative},
    {Action::kEnableSegment, "EnableSegment", ActionClass::kAdministrative},
    {Action::kDestroySegment, "DestroySegment", ActionClass::kAdministrative},
    {Action::kSetPolicy, "SetPolicy", ActionClass::kAdministrative},
    {Action::kGetPolicy, "GetPolicy", ActionClass::kReadOnly},
    {Action::kReadAudit, "ReadAudit", ActionClass::kReadOnly},
    {Action::kApproveRequest, "ApproveRequest", ActionClass::kAdministrative},
    // Escrow export and import move key material across the service boundary:
    // as powerful as any administrative change, so never given to data users.
    {Action::kExportEscrow, "ExportEscrow", ActionClass::kAdministrative},
    {Action::kImportKeyMaterial, "ImportKeyMaterial", ActionClass::kAdministrative},
}};

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

absl::string_view ActionName(Action action) { return kActions[static_cast<size_t>(action)].name; }

ActionClass ClassOf(Action action) { return kActions[static_cast<size_t>(action)].action_class; }

const std::vector<Action>& AllActions() {
  static const auto* const all = [] {
    auto* actions = new std::vector<Action>();
    for (const ActionInfo& info : kActions) actions->push_back(info.action);
    return actions;
  }();
  return *all;
}

std::optional<Action> ParseAction(absl::string_view name) {
  for (const ActionInfo& info : kActions) {
    if (info.name == name) return info.action;
  }
  return std::nullopt;
}

ActionSet ActionsOfClass(ActionClass action_class) {
  ActionSet set;
  for (const ActionInfo& info : kActions) {
    if (info.action_class == action_class) set |= ToSet(info.action);
  }
  return set;
}

std::string DescribeActions(const ActionSet& set) {
  std::vector<absl::string_view> names;
  for (const ActionInfo& info : kActions) {
    if (Contains(set, info.action)) names.push_back(info.name);
  }
  return absl::StrJoin(names, ", ");
}

std::optional<Action> ClosestAction(absl::string_view name) {
  // Untrusted input: bound the quadratic work.
  if (name.size() > 64) return std::nullopt;
  std::optional<Action> best;
  size_t best_distance = 3;
  for (const ActionInfo& info : kActions) {
    size_t distance = EditDistance(name, info.name);
    if (distance < best_distance) {
      best_distance = distance;
      best = info.action;
    }
  }
  return best;
}

}  // namespace clavis::kms::policy
