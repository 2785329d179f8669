// `clavisctl segment ...`: segment keys, the per-segment keys under a master
// key (tenants/{t}/keys/{k}/segments/{segment}); revoking or destroying one
// crypto-shreds that segment's data and leaves every other segment alone.
#ifndef CLAVIS_TOOLS_CLAVISCTL_SEGMENT_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_SEGMENT_COMMANDS_H_

#include <string>

#include "absl/status/status.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

// `name` is tenants/{t}/keys/{k}/segments/{segment}; each prints the Segment.
absl::Status CreateSegment(Session& session, const std::string& name);
absl::Status GetSegment(Session& session, const std::string& name);
absl::Status RotateSegment(Session& session, const std::string& name);
absl::Status RevokeSegment(Session& session, const std::string& name);
absl::Status EnableSegment(Session& session, const std::string& name);
absl::Status ScheduleSegmentDestruction(Session& session, const ScheduleDestroyArgs& args);
absl::Status CancelSegmentDestruction(Session& session, const std::string& name);
absl::Status DestroySegment(Session& session, const std::string& name);

struct ListSegmentsArgs {
  std::string parent;  // tenants/{t}/keys/{k}
  std::string prefix;  // only segments whose label starts with this
  int page_size = 0;
  std::string page_token;
  bool all = false;
};
absl::Status ListSegments(Session& session, const ListSegmentsArgs& args);

void RegisterSegmentCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_SEGMENT_COMMANDS_H_
