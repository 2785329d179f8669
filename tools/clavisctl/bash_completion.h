// The bash completion script of clavisctl, generated from the CLI11 command
// tree itself so it cannot fall behind the commands: every noun, verb and
// alias, each command's options, and the global options, which work at every
// level. Values of FILE, DIR and PREFIX options complete as paths; resource
// names do not complete (that would mean calling clavisd while typing).
//
// The script defines _clavisctl and registers it with `complete -F`; its
// helpers are prefixed _clavisctl_ so that it can be sourced into any shell.
#ifndef CLAVIS_TOOLS_CLAVISCTL_BASH_COMPLETION_H_
#define CLAVIS_TOOLS_CLAVISCTL_BASH_COMPLETION_H_

#include <string>

#include "CLI/CLI.hpp"

namespace clavis::clavisctl {

// The whole script for `root` (the clavisctl app after every command is
// registered). Pure: reads the tree, changes nothing.
std::string BashCompletionScript(const CLI::App& root);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_BASH_COMPLETION_H_
