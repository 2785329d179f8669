#include "tools/clavisctl/run.h"

#include <exception>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "tools/clavisctl/channel.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/data_commands.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/global_options.h"
#include "tools/clavisctl/key_commands.h"
#include "tools/clavisctl/segment_commands.h"

namespace clavis::clavisctl {
namespace {

constexpr char kRootFooter[] =
    "Examples:\n"
    "  clavisctl key create tenants/acme/keys/main --rotation-period 90d\n"
    "  clavisctl key list tenants/acme --all --json\n"
    "  clavisctl --endpoint 127.0.0.1:7370 segment revoke "
    "tenants/acme/keys/main/segments/acme/orders/2026-11\n"
    "\n"
    "Exit codes:\n"
    "  0 ok                    5 invalid argument (server)\n"
    "  1 other error           6 permission denied / unauthenticated\n"
    "  2 usage error           7 clavisd unavailable / deadline exceeded\n"
    "  3 not found             8 already exists\n"
    "  4 failed precondition (the resource's state does not allow it)\n"
    "\n"
    "Every command has --help. See docs/clavisctl.md.";

// Log lines go to stderr so they never mix with the output scripts parse.
void ConfigureLogging(bool verbose) {
  auto logger = std::make_shared<spdlog::logger>(
      "clavisctl", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_pattern("clavisctl: %^%l%$: %v");
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

int RunParsed(const CommandRegistry::Resolved& command, const GlobalOptions& globals,
              const Io& io) {
  ConfigureLogging(globals.verbose);
  absl::StatusOr<SessionSettings> settings = ToSessionSettings(globals);
  if (!settings.ok()) {
    *io.err << FormatError(settings.status(), globals.endpoint);
    return ExitCodeForStatus(settings.status());
  }
  if (!IsLoopbackEndpoint(settings->endpoint)) {
    *io.err << "clavisctl: warning: " << settings->endpoint
            << " is not a loopback address and the connection is not encrypted yet (no TLS); "
               "data keys and decrypted data would cross the network in clear\n";
  }
  const std::string endpoint = settings->endpoint;
  std::unique_ptr<Session> session = Session::Connect(*std::move(settings), io);
  absl::Status status = (*command.run)(*session);
  io.out->flush();
  if (status.ok() && !*io.out) status = absl::UnknownError("cannot write to standard output");
  if (!status.ok()) *io.err << FormatError(status, endpoint);
  return ExitCodeForStatus(status);
}

}  // namespace

int Run(int argc, const char* const* argv, const Io& io, const char* endpoint_env) {
  try {
    CLI::App app("clavisctl: the admin CLI of the Clavis key-management service (clavisd)",
                 "clavisctl");
    app.footer(kRootFooter);
    app.set_help_all_flag("--help-all", "Print help for every command");
    app.set_version_flag("--version", "clavisctl " CLAVIS_VERSION);
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
      return absl::StrCat("clavisctl: ", e.what(), "\nRun with --help for more information.\n");
    });
    app.require_subcommand(0, 1);

    GlobalOptions globals;
    AddGlobalOptions(app, DefaultEndpoint(endpoint_env), &globals);
    CommandRegistry registry(app);
    RegisterKeyCommands(registry);
    RegisterSegmentCommands(registry);
    RegisterDataCommands(registry);

    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // --help and --version "fail" with code 0; every real parse error is a
      // usage error, whatever CLI11's own code for it (105, 106, ...).
      const int code = app.exit(e, *io.out, *io.err);
      return code == 0 ? kExitOk : kExitUsage;
    }

    const CommandRegistry::Resolved command = registry.Resolve();
    if (command.run == nullptr) {
      // "clavisctl" or "clavisctl key" alone: show what could follow.
      // help(prefix) prints "Usage: <prefix> <name>"; the root has no prefix.
      const CLI::App* parent = command.app->get_parent();
      *io.err << "clavisctl: missing command\n\n"
              << command.app->help(parent == nullptr ? "" : CommandRegistry::CommandPath(*parent));
      return kExitUsage;
    }
    return RunParsed(command, globals, io);
  } catch (const std::exception& e) {
    // Nothing below is expected to throw; this keeps the promise of a
    // documented exit code (and no std::terminate) if something does.
    *io.err << "clavisctl: internal error: " << e.what() << "\n";
    return kExitGeneric;
  }
}

}  // namespace clavis::clavisctl
