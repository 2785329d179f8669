#include "tools/clavisctl/global_options.h"

#include "tools/clavisctl/args.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/exit_codes.h"

namespace clavis::clavisctl {

void AddGlobalOptions(CLI::App& root, const std::string& default_endpoint, GlobalOptions* options) {
  root.fallthrough();
  options->endpoint = default_endpoint;
  root.add_option("--endpoint", options->endpoint,
                  "clavisd address (default: $CLAVIS_ENDPOINT, else 127.0.0.1:7370)")
      ->type_name("HOST:PORT")
      ->capture_default_str()
      ->group("Global options");
  root.add_option("--timeout", options->timeout, "Deadline of each RPC, e.g. 10s, 2m")
      ->type_name("DURATION")
      ->check(TimeoutCheck())
      ->capture_default_str()
      ->group("Global options");
  root.add_flag("--json", options->json, "Print the response as JSON (proto3 JSON mapping)")
      ->group("Global options");
  root.add_flag("-v,--verbose", options->verbose,
                "Log each RPC (request type, outcome, latency) to stderr")
      ->group("Global options");
}

absl::StatusOr<SessionSettings> ToSessionSettings(const GlobalOptions& options) {
  SessionSettings settings;
  if (options.endpoint.empty()) return UsageError("--endpoint is empty");
  settings.endpoint = options.endpoint;
  absl::StatusOr<absl::Duration> timeout = ParseDuration(options.timeout);
  if (!timeout.ok()) return AsUsageError(timeout.status());
  settings.timeout = *timeout;
  settings.json = options.json;
  return settings;
}

}  // namespace clavis::clavisctl
