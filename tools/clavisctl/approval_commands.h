// `clavisctl approval ...`: M-of-N approval requests (docs/ACCESS.md,
// "Approvals"). A destructive or access-widening change on a key with an
// approvals quorum does not run at once: clavisd stores it as an approval
// request, and it runs when enough other principals approve it.
//
//   approval list KEY [--all]    pending requests (--all: finished ones too)
//   approval get NAME            one request (tenants/T/approvals/ID)
//   approval approve NAME        add the caller's approval
//   approval deny NAME [--reason TEXT]
//                                deny it for good (or withdraw one's own)
#ifndef CLAVIS_TOOLS_CLAVISCTL_APPROVAL_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_APPROVAL_COMMANDS_H_

#include <string>

#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct ListApprovalsArgs {
  std::string key;   // tenants/{t}/keys/{k}
  bool all = false;  // include executed and expired requests
};
absl::Status ListApprovals(Session& session, const ListApprovalsArgs& args);

absl::Status GetApproval(Session& session, const std::string& name);

// Prints the request after the approval. When this approval reached the
// quorum, the stored action ran: if it failed, the command fails with the
// action's status (its exit code), after printing the request.
absl::Status ApproveApproval(Session& session, const std::string& name);

struct DenyApprovalArgs {
  std::string name;    // tenants/{t}/approvals/{id}
  std::string reason;  // optional; the server bounds it (512 bytes, printable)
};
// Prints the denied request; its action will never run.
absl::Status DenyApproval(Session& session, const DenyApprovalArgs& args);

void RegisterApprovalCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_APPROVAL_COMMANDS_H_
