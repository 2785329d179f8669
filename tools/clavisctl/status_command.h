// `clavisctl status`: one command that says whether clavisd is reachable and
// healthy and who you are there. It asks the standard gRPC health service
// (health.proto; this also opens the connection), then times one WhoAmI call
// on that connection, and prints the endpoint, the transport, the health
// state, the round trip, and the principal, tenant and groups clavisd
// authenticated (--json: a StatusReport, status_report.proto).
//
// Exit codes: 0 when clavisd answers and is SERVING (or serves no health
// service); 7 when it cannot be reached or reports NOT_SERVING, after
// printing what is known and what to check; WhoAmI's own code (e.g. 6 for
// rejected credentials) when clavisd answers but refuses the caller.
#ifndef CLAVIS_TOOLS_CLAVISCTL_STATUS_COMMAND_H_
#define CLAVIS_TOOLS_CLAVISCTL_STATUS_COMMAND_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"
#include "tools/clavisctl/status_report.pb.h"

namespace clavis::clavisctl {

absl::Status ShowStatus(Session& session);

void RegisterStatusCommand(CommandRegistry& registry);

// The human-readable table of `report`.
std::string FormatStatusReport(const StatusReport& report);

// "acme" for "tenants/acme/principals/admin"; "" for a name not under a
// tenant.
std::string TenantOfPrincipal(absl::string_view principal);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_STATUS_COMMAND_H_
