// `clavisctl completion bash`: prints the bash completion script
// (bash_completion.h) for the commands of this build. Runs locally.
//
//   clavisctl completion bash > /etc/bash_completion.d/clavisctl
//   source <(clavisctl completion bash)
#ifndef CLAVIS_TOOLS_CLAVISCTL_COMPLETION_COMMAND_H_
#define CLAVIS_TOOLS_CLAVISCTL_COMPLETION_COMMAND_H_

#include "tools/clavisctl/command_registry.h"

namespace clavis::clavisctl {

// REQUIRES: called after every other command is registered (the script
// lists what the tree holds when the command runs, but help text and the
// registry order read best with it last).
void RegisterCompletionCommand(CommandRegistry& registry);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_COMPLETION_COMMAND_H_
