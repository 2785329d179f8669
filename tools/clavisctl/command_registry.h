// The table of clavisctl commands. Commands are grouped by noun as CLI11
// subcommands ("key rotate", "key version disable", "segment revoke"); each
// runnable leaf is registered with the function that runs it, and nothing
// runs during parsing: after a successful parse, Resolve() says which leaf
// the user chose and main runs it against a Session.
#ifndef CLAVIS_TOOLS_CLAVISCTL_COMMAND_REGISTRY_H_
#define CLAVIS_TOOLS_CLAVISCTL_COMMAND_REGISTRY_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

using CommandFn = std::function<absl::Status(Session&)>;

class CommandRegistry {
 public:
  explicit CommandRegistry(CLI::App& root) : root_(root) {}
  CommandRegistry(const CommandRegistry&) = delete;
  CommandRegistry& operator=(const CommandRegistry&) = delete;

  CLI::App& root() { return root_; }

  // A group of commands under `parent` (the root app or another noun), e.g.
  // "key" or "key version". Naming only the noun is a usage error that shows
  // the noun's help. `examples` go to the help footer. `local`: its commands
  // are all local ones (the footer says so).
  CLI::App* AddNoun(CLI::App& parent, const std::string& name, const std::string& description,
                    const std::vector<std::string>& examples, bool local = false);

  // A runnable command; its options are added by the caller on the returned
  // app, bound to storage that `run` captures.
  CLI::App* AddCommand(CLI::App& parent, const std::string& name, const std::string& description,
                       const std::vector<std::string>& examples, CommandFn run);

  // A command that runs on this host without calling clavisd (pki, token):
  // it gets a Session without stubs (Session::Local), and no credential file
  // is read for it.
  CLI::App* AddLocalCommand(CLI::App& parent, const std::string& name,
                            const std::string& description,
                            const std::vector<std::string>& examples, CommandFn run);

  struct Resolved {
    CLI::App* app = nullptr;         // the deepest subcommand given
    const CommandFn* run = nullptr;  // null if `app` is a noun (or the root)
    bool local = false;              // added with AddLocalCommand
  };
  // After a successful parse.
  Resolved Resolve() const;

  // The full command words of `app` ("clavisctl key version"), for help
  // printed outside CLI11's own error path.
  static std::string CommandPath(const CLI::App& app);

 private:
  CLI::App& root_;
  struct Command {
    CommandFn run;
    bool local = false;
  };
  std::map<const CLI::App*, Command> commands_;
};

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_COMMAND_REGISTRY_H_
