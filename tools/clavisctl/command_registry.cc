#include "tools/clavisctl/command_registry.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace clavis::clavisctl {
namespace {

std::string ExamplesFooter(const std::vector<std::string>& examples, bool local) {
  std::string footer = examples.size() == 1 ? "Example:" : "Examples:";
  for (const std::string& example : examples) absl::StrAppend(&footer, "\n  ", example);
  // CLI11 shows only a command's own options; the global ones work anywhere.
  absl::StrAppend(&footer,
                  local ? "\n\nThis runs locally and calls no server; the global "
                          "option --json also works here."
                        : "\n\nGlobal options --endpoint, --timeout, --json, -v and the "
                          "credentials (--ca-cert, --cert, --key, --token-file) also work here; "
                          "see clavisctl --help.");
  return footer;
}

}  // namespace

CLI::App* CommandRegistry::AddNoun(CLI::App& parent, const std::string& name,
                                   const std::string& description,
                                   const std::vector<std::string>& examples, bool local) {
  CLI::App* noun = parent.add_subcommand(name, description);
  noun->footer(ExamplesFooter(examples, local));
  // At most one: "key get rotate" is a mistake, not two commands.
  noun->require_subcommand(0, 1);
  return noun;
}

CLI::App* CommandRegistry::AddCommand(CLI::App& parent, const std::string& name,
                                      const std::string& description,
                                      const std::vector<std::string>& examples, CommandFn run) {
  CLI::App* command = parent.add_subcommand(name, description);
  command->footer(ExamplesFooter(examples, /*local=*/false));
  commands_.emplace(command, Command{std::move(run), false});
  return command;
}

CLI::App* CommandRegistry::AddLocalCommand(CLI::App& parent, const std::string& name,
                                           const std::string& description,
                                           const std::vector<std::string>& examples,
                                           CommandFn run) {
  CLI::App* command = parent.add_subcommand(name, description);
  command->footer(ExamplesFooter(examples, /*local=*/true));
  commands_.emplace(command, Command{std::move(run), true});
  return command;
}

std::string CommandRegistry::CommandPath(const CLI::App& app) {
  std::string path = app.get_name();
  for (const CLI::App* parent = app.get_parent(); parent != nullptr;
       parent = parent->get_parent()) {
    path = absl::StrCat(parent->get_name(), " ", path);
  }
  return path;
}

CommandRegistry::Resolved CommandRegistry::Resolve() const {
  Resolved resolved;
  resolved.app = &root_;
  while (!resolved.app->get_subcommands().empty()) {
    resolved.app = resolved.app->get_subcommands().front();
  }
  auto it = commands_.find(resolved.app);
  if (it != commands_.end()) {
    resolved.run = &it->second.run;
    resolved.local = it->second.local;
  }
  return resolved;
}

}  // namespace clavis::clavisctl
