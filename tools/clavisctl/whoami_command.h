// `clavisctl whoami`: who clavisd thinks the caller is (AccessControl.WhoAmI):
// the principal and groups it authenticated from the client certificate or
// token, the method, and the peer address it sees. Handy to check a new
// certificate or token before using it.
#ifndef CLAVIS_TOOLS_CLAVISCTL_WHOAMI_COMMAND_H_
#define CLAVIS_TOOLS_CLAVISCTL_WHOAMI_COMMAND_H_

#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

absl::Status WhoAmI(Session& session);

void RegisterWhoAmICommand(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_WHOAMI_COMMAND_H_
