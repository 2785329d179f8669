#include "tools/clavisctl/run.h"

#include <cstdlib>
#include <exception>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "tools/clavisctl/approval_commands.h"
#include "tools/clavisctl/audit_commands.h"
#include "tools/clavisctl/backup_commands.h"
#include "tools/clavisctl/channel.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/completion_command.h"
#include "tools/clavisctl/data_commands.h"
#include "tools/clavisctl/escrow_commands.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/global_options.h"
#include "tools/clavisctl/key_commands.h"
#include "tools/clavisctl/pki_commands.h"
#include "tools/clavisctl/policy_commands.h"
#include "tools/clavisctl/profile.h"
#include "tools/clavisctl/segment_commands.h"
#include "tools/clavisctl/status_command.h"
#include "tools/clavisctl/token_commands.h"
#include "tools/clavisctl/whoami_command.h"

namespace clavis::clavisctl {
namespace {

constexpr char kRootFooter[] =
    "Examples:\n"
    "  clavisctl key create tenants/acme/keys/main --rotation-period 90d\n"
    "  clavisctl key list tenants/acme --all --json\n"
    "  clavisctl --endpoint 127.0.0.1:7370 segment revoke "
    "tenants/acme/keys/main/segments/acme/orders/2026-11\n"
    "  clavisctl --endpoint kms.internal:7370 --ca-cert pki/ca.crt --cert pki/admin.crt "
    "--key pki/admin.key key get tenants/acme/keys/main\n"
    "  clavisctl key create tenants/acme/keys/crm --user tenants/acme/principals/billing-app "
    "--approvals 2\n"
    "  clavisctl policy simulate tenants/acme/keys/crm --principal "
    "tenants/acme/principals/billing-app --action Decrypt\n"
    "  clavisctl approval approve tenants/acme/approvals/ar-5f2c9d\n"
    "  clavisctl pki init-ca --out pki        (also: clavisctl certs bootstrap --out pki)\n"
    "  clavisctl audit verify --dir data/audit --public-key-file data/audit-signing.pub\n"
    "  clavisctl --profile prod status\n"
    "  source <(clavisctl completion bash)\n"
    "\n"
    "Credentials: without --ca-cert the connection is plaintext (meant for loopback);\n"
    "with it, TLS, plus a client certificate (--cert/--key) or a service token\n"
    "(--token-file). The options can also come from $CLAVIS_CA_CERT,\n"
    "$CLAVIS_CLIENT_CERT, $CLAVIS_CLIENT_KEY and $CLAVIS_TOKEN_FILE, or from a\n"
    "profile (--profile NAME, $CLAVIS_PROFILE) in ~/.config/clavis/clavisctl.json.\n"
    "Each option: command line > environment > profile > built-in default.\n"
    "\n"
    "Exit codes:\n"
    "  0 ok                    5 invalid argument (server)\n"
    "  1 other error           6 permission denied / unauthenticated\n"
    "  2 usage error           7 clavisd unavailable / deadline exceeded\n"
    "  3 not found             8 already exists\n"
    "  4 failed precondition (the resource's state does not allow it, or the change\n"
    "    needs M-of-N approval: the approval request is named)\n"
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

// Runs `session`'s command and turns the outcome into the exit code.
int Finish(const CommandRegistry::Resolved& command, Session& session, const Io& io, bool tls) {
  absl::Status status = (*command.run)(session);
  io.out->flush();
  if (status.ok() && !*io.out) status = absl::UnknownError("cannot write to standard output");
  if (!status.ok()) {
    const std::string& endpoint = session.settings().endpoint;
    *io.err << FormatError(status, endpoint);
    if (tls && status.code() == absl::StatusCode::kUnavailable) {
      // A failed handshake is UNAVAILABLE too.
      *io.err << "clavisctl: or the TLS handshake failed: does clavisd's certificate chain to "
                 "--ca-cert and name "
              << endpoint << " (a --dns or --ip of pki issue-server)?\n";
    }
  }
  return ExitCodeForStatus(status);
}

int RunParsed(const CommandRegistry::Resolved& command, GlobalOptions globals, const Io& io) {
  ConfigureLogging(globals.verbose);
  if (command.local) {
    // pki, token and audit commands: no channel, no credentials.
    SessionSettings settings;
    settings.json = globals.json;
    std::unique_ptr<Session> session = Session::Local(std::move(settings), io);
    return Finish(command, *session, io, /*tls=*/false);
  }
  // Only commands that call clavisd read the profile file: a broken one must
  // not stop `pki` or `completion`, which use none of its options.
  const std::string default_profile_file =
      DefaultProfileFile(std::getenv("XDG_CONFIG_HOME"), std::getenv("HOME"));
  if (absl::Status s = ResolveProfile(default_profile_file, &globals); !s.ok()) {
    *io.err << FormatError(s, globals.endpoint);
    return ExitCodeForStatus(s);
  }
  absl::StatusOr<SessionSettings> settings = ToSessionSettings(globals);
  if (!settings.ok()) {
    *io.err << FormatError(settings.status(), globals.endpoint);
    return ExitCodeForStatus(settings.status());
  }
  const bool tls = settings->credentials.tls();
  if (!tls && !IsLoopbackEndpoint(settings->endpoint)) {
    *io.err << "clavisctl: warning: " << settings->endpoint
            << " is not a loopback address and the connection is not encrypted (no --ca-cert); "
               "data keys and decrypted data would cross the network in clear\n";
  }
  std::unique_ptr<Session> session = Session::Connect(*std::move(settings), io);
  return Finish(command, *session, io, tls);
}

}  // namespace

std::unique_ptr<Cli> BuildCli(const char* endpoint_env) {
  auto cli = std::make_unique<Cli>();
  CLI::App& app = cli->app;
  app.description("clavisctl: the admin CLI of the Clavis key-management service (clavisd)");
  app.name("clavisctl");
  app.footer(kRootFooter);
  app.set_help_all_flag("--help-all", "Print help for every command");
  app.set_version_flag("--version", "clavisctl " CLAVIS_VERSION);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return absl::StrCat("clavisctl: ", e.what(), "\nRun with --help for more information.\n");
  });
  app.require_subcommand(0, 1);

  AddGlobalOptions(app, endpoint_env, &cli->globals);
  CommandRegistry& registry = cli->registry;
  RegisterKeyCommands(registry);
  RegisterSegmentCommands(registry);
  RegisterDataCommands(registry);
  RegisterPolicyCommands(registry);
  RegisterApprovalCommands(registry);
  RegisterEscrowCommands(registry);
  RegisterBackupCommands(registry);
  RegisterWhoAmICommand(registry);
  RegisterStatusCommand(registry);
  RegisterPkiCommands(registry);
  RegisterTokenCommands(registry);
  RegisterAuditCommands(registry);
  // Last: it walks everything registered before it.
  RegisterCompletionCommand(registry);
  return cli;
}

int Run(int argc, const char* const* argv, const Io& io, const char* endpoint_env) {
  try {
    std::unique_ptr<Cli> cli = BuildCli(endpoint_env);
    CLI::App& app = cli->app;
    CommandRegistry& registry = cli->registry;

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
    return RunParsed(command, cli->globals, io);
  } catch (const std::exception& e) {
    // Nothing below is expected to throw; this keeps the promise of a
    // documented exit code (and no std::terminate) if something does.
    *io.err << "clavisctl: internal error: " << e.what() << "\n";
    return kExitGeneric;
  }
}

}  // namespace clavis::clavisctl
