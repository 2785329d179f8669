// `clavisctl policy ...`: a key's access policy (AccessControl service;
// language in docs/POLICY.md, enforcement in docs/ACCESS.md).
//
//   policy get KEY                       the document (indented JSON) on stdout,
//                                        the approvals quorum on stderr
//   policy set KEY --file F [--approvals M]
//   policy validate KEY --file F [--approvals M]
//                                        what `policy set` would say, changing
//                                        nothing: "valid", and whether setting
//                                        it needs M-of-N approval
//   policy simulate KEY --principal P --action A [...]
//                                        ALLOW or DENY, the reason and the
//                                        deciding statement; exit 0 for both
#ifndef CLAVIS_TOOLS_CLAVISCTL_POLICY_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_POLICY_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

// `key` is tenants/{t}/keys/{k}. stdout holds only the document, so
// `policy get K > p.json`, an edit and `policy set K --file p.json` round-trip.
absl::Status GetKeyPolicy(Session& session, const std::string& key);

struct SetPolicyArgs {
  std::string key;
  std::string file;    // "-": stdin
  int approvals = -1;  // -1: keep the key's quorum; else 0..kMaxApprovals
};
// A change that needs M-of-N approval fails with FAILED_PRECONDITION (exit 4)
// and a hint naming the approval request (exit_codes.h).
absl::Status SetKeyPolicy(Session& session, const SetPolicyArgs& args);

// The same arguments as `policy set`. OK (exit 0) for a document SetKeyPolicy
// would accept, whether or not setting it needs approval (that is reported);
// the server's INVALID_ARGUMENT (exit 5), pointing at the bad field, otherwise.
absl::Status ValidateKeyPolicy(Session& session, const SetPolicyArgs& args);

struct SimulateArgs {
  std::string key;
  std::string principal;
  std::vector<std::string> groups;
  std::string action;
  std::string segment;
  std::string resource;              // empty: the key
  std::vector<std::string> context;  // "k=v"
  std::string time;                  // RFC 3339; empty: now (the server's clock)
  std::string draft_file;            // empty: the stored policy; "-": stdin
};
// OK for both decisions: the command answers a question. Errors (exit != 0)
// are for questions that could not be asked (a bad draft, no such key, no
// GetPolicy right).
absl::Status SimulatePolicy(Session& session, const SimulateArgs& args);

void RegisterPolicyCommands(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_POLICY_COMMANDS_H_
