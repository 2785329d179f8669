// `clavisctl escrow export`: the escrow bundle of a key of origin EXTERNAL
// (docs/BYOK.md "Leaving with your data"), behind M-of-N approval. The
// first call creates the approval request; once approved, the requester
// runs it again with --approval and gets the bundle in --out.
#ifndef CLAVIS_TOOLS_CLAVISCTL_ESCROW_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_ESCROW_COMMANDS_H_

#include <string>

#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct EscrowExportArgs {
  std::string name;      // tenants/{t}/keys/{k}
  std::string approval;  // tenants/{t}/approvals/{id}; empty: request one
  std::string out;       // bundle file (written whole, then renamed)
  bool force = false;
};
absl::Status ExportEscrow(Session& session, const EscrowExportArgs& args);

void RegisterEscrowCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_ESCROW_COMMANDS_H_
