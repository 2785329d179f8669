// Everything clavisctl's main() does, minus the process: parse the command
// line, run the chosen command against clavisd, print any error, and return
// the exit code (exit_codes.h). main() only passes the real argv, streams and
// $CLAVIS_ENDPOINT, so tests drive the whole CLI through this function.
#ifndef CLAVIS_TOOLS_CLAVISCTL_RUN_H_
#define CLAVIS_TOOLS_CLAVISCTL_RUN_H_

#include <memory>

#include "CLI/CLI.hpp"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/global_options.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

// The whole command tree as Run() parses it: the root app with the global
// options, and every noun and command in the registry. `completion bash`
// walks it, and tests can too.
struct Cli {
  CLI::App app;
  GlobalOptions globals;
  CommandRegistry registry{app};  // after app: it refers to it
};
// `endpoint_env` as for Run().
std::unique_ptr<Cli> BuildCli(const char* endpoint_env);

// `endpoint_env` is getenv("CLAVIS_ENDPOINT") (may be null). Never throws.
int Run(int argc, const char* const* argv, const Io& io, const char* endpoint_env);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_RUN_H_
