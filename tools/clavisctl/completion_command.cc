#include "tools/clavisctl/completion_command.h"

#include "absl/status/status.h"
#include "tools/clavisctl/bash_completion.h"

namespace clavis::clavisctl {

void RegisterCompletionCommand(CommandRegistry& registry) {
  CLI::App* completion = registry.AddNoun(
      registry.root(), "completion", "Print a shell completion script (local; no server needed)",
      {"source <(clavisctl completion bash)",
       "clavisctl completion bash > /etc/bash_completion.d/clavisctl"},
      /*local=*/true);
  // The root outlives every command run: Run() owns both.
  const CLI::App* root = &registry.root();
  registry.AddLocalCommand(
      *completion, "bash",
      "Print the bash completion script: nouns, verbs, aliases and options, including the "
      "global ones",
      {"source <(clavisctl completion bash)",
       "clavisctl completion bash > /etc/bash_completion.d/clavisctl"},
      [root](Session& s) {
        s.out() << BashCompletionScript(*root);
        return absl::OkStatus();
      });
}

}  // namespace clavis::clavisctl
