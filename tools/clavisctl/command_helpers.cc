#include "tools/clavisctl/command_helpers.h"

#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "tools/clavisctl/input.h"

namespace clavis::clavisctl {

CLI::Option* AddNameArg(CLI::App* command, std::string* name, const std::string& type_name,
                        const std::string& help) {
  return command->add_option("name", *name, help)->required()->type_name(type_name);
}

CLI::Option* AddPendingWindowOption(CLI::App* command, std::string* window) {
  return command
      ->add_option("--pending-window", *window,
                   "How long before destruction is allowed (default: the server's)")
      ->type_name("DURATION")
      ->check(DurationCheck());
}

absl::Status ParseContext(const std::vector<std::string>& entries,
                          google::protobuf::Map<std::string, std::string>* context) {
  absl::StatusOr<std::map<std::string, std::string>> parsed =
      AsUsage(ParseKeyValues(entries, "--context"));
  if (!parsed.ok()) return parsed.status();
  context->insert(parsed->begin(), parsed->end());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadInput(Session& session, const std::string& path,
                                      absl::string_view what) {
  if (!path.empty() && path != "-") return AsUsage(ReadFile(path));
  if (session.in_is_terminal()) {
    session.err() << "clavisctl: reading " << what << " from stdin (end with Ctrl-D)\n";
  }
  return AsUsage(ReadStream(session.in(), absl::StrCat(what, " on stdin")));
}

void AddNameCommand(CommandRegistry& registry, CLI::App& parent, const NameCommand& command,
                    const std::string& type_name, const std::string& help) {
  // The parsed name must outlive parsing: the run closure owns it.
  auto name = std::make_shared<std::string>();
  auto run = command.run;
  CLI::App* app = registry.AddCommand(parent, command.name, command.description, {command.example},
                                      [name, run](Session& s) { return run(s, *name); });
  AddNameArg(app, name.get(), type_name, help);
}

}  // namespace clavis::clavisctl
