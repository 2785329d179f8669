// `clavisctl key ...`: the life of tenant master keys (KeyAdmin).
#ifndef CLAVIS_TOOLS_CLAVISCTL_KEY_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_KEY_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clavis/v1/resources.pb.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct CreateKeyArgs {
  std::string name;  // tenants/{t}/keys/{k}
  std::string description;
  std::vector<std::string> labels;  // "k=v"
  std::string rotation_period;      // empty: no schedule
  bool require_explicit_segments = false;
  // Access control (docs/ACCESS.md): either a whole policy document, or the
  // default policy built by clavisd from the administrators (default: the
  // caller) and users. Not both.
  std::vector<std::string> administrators;  // principals or groups
  std::vector<std::string> users;
  std::string policy_file;              // "-": stdin
  int approvals = 0;                    // M of M-of-N, 0..kMaxApprovals; 0 or 1: none
  std::string origin;                   // "generated" (default) or "external" (BYOK)
  std::string segment_rotation_period;  // empty: none
  std::string retire_unused;            // keep|disable|destroy; empty: server default
};
// --policy-file together with --admin or --user is a usage error (CLI11
// refuses it while parsing; CreateKey checks again for direct callers).
absl::Status CreateKey(Session& session, const CreateKeyArgs& args);

struct ListKeysArgs {
  std::string parent;  // tenants/{t}
  int page_size = 0;   // 0: the server's default
  std::string page_token;
  bool all = false;  // follow next_page_token to the end
};
absl::Status ListKeys(Session& session, const ListKeysArgs& args);

struct GetKeyArgs {
  std::string name;
  bool no_usage = false;  // skip the segment scan behind the SEGMENT KEYS column
};
// Human output adds, per version, the segment keys it still protects and the
// re-wrap progress (GetKeyVersionUsage); --json prints the Key alone.
absl::Status GetKey(Session& session, const GetKeyArgs& args);
// "keep", "disable", "destroy" (a usage error otherwise).
absl::StatusOr<clavis::v1::VersionRetirement> ParseVersionRetirement(const std::string& value);
void AddRetireUnusedOption(CLI::App* command, std::string* retire_unused);
absl::Status RotateKey(Session& session, const std::string& name);
absl::Status EnableKey(Session& session, const std::string& name);
absl::Status DisableKey(Session& session, const std::string& name);
absl::Status ScheduleKeyDestruction(Session& session, const ScheduleDestroyArgs& args);
absl::Status CancelKeyDestruction(Session& session, const std::string& name);
absl::Status DestroyKey(Session& session, const std::string& name);

struct SetRotationArgs {
  std::string name;
  std::string period;          // "0s" turns scheduled rotation off; empty: unchanged
  std::string segment_period;  // likewise for the key's segment keys
  std::string retire_unused;   // keep|disable|destroy; empty: unchanged
  std::string next;            // RFC 3339; empty: leave next_rotation_time to the server
};
absl::Status SetKeyRotation(Session& session, const SetRotationArgs& args);

struct RewrapArgs {
  std::string name;
  int batch_size = 0;      // 0: the server's default (1000)
  std::string page_token;  // resume an interrupted run
};
// Calls RewrapSegments until the page token is empty; progress per batch on
// stderr, the totals on stdout.
absl::Status RewrapSegments(Session& session, const RewrapArgs& args);

// Adds the "key" noun, its commands and "key version ...".
void RegisterKeyCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_KEY_COMMANDS_H_
