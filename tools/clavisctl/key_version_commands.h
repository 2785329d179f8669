// `clavisctl key version ...`: the state of single master-key versions, e.g.
// disabling a version suspected compromised while newer ones keep working.
#ifndef CLAVIS_TOOLS_CLAVISCTL_KEY_VERSION_COMMANDS_H_
#define CLAVIS_TOOLS_CLAVISCTL_KEY_VERSION_COMMANDS_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

// `name` is tenants/{t}/keys/{k}/versions/{n}; each prints the whole Key.
absl::Status EnableKeyVersion(Session& session, const std::string& name);
absl::Status DisableKeyVersion(Session& session, const std::string& name);
absl::Status ScheduleKeyVersionDestruction(Session& session, const ScheduleDestroyArgs& args);
absl::Status CancelKeyVersionDestruction(Session& session, const std::string& name);
absl::Status MarkKeyVersionCompromised(Session& session, const std::string& name);
absl::Status DestroyKeyVersion(Session& session, const std::string& name);

// Adds the "version" noun under `key`.
void RegisterKeyVersionCommands(CommandRegistry& registry, CLI::App& key);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_KEY_VERSION_COMMANDS_H_
