#include "tools/clavisctl/command_helpers.h"

#include <memory>

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
