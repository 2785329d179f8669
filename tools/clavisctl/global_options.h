// The options every command accepts, before or after the command words:
//   --endpoint host:port   (default $CLAVIS_ENDPOINT, else 127.0.0.1:7370)
//   --timeout 10s          deadline of each RPC
//   --json                 print the response as JSON
//   -v, --verbose          log each RPC (type, outcome, latency) to stderr
#ifndef CLAVIS_TOOLS_CLAVISCTL_GLOBAL_OPTIONS_H_
#define CLAVIS_TOOLS_CLAVISCTL_GLOBAL_OPTIONS_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

struct GlobalOptions {
  std::string endpoint;
  std::string timeout = "10s";
  bool json = false;
  bool verbose = false;
};

// Adds the options to the root app. Must run before any subcommand is added:
// subcommands inherit fallthrough from the root when they are created, which
// is what lets "clavisctl key get NAME --json" work.
void AddGlobalOptions(CLI::App& root, const std::string& default_endpoint, GlobalOptions* options);

// After a successful parse (CLI11 has validated the timeout already).
absl::StatusOr<SessionSettings> ToSessionSettings(const GlobalOptions& options);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_GLOBAL_OPTIONS_H_
