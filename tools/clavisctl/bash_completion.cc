#include "tools/clavisctl/bash_completion.h"

#include <functional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace clavis::clavisctl {
namespace {

// One command path of the tree: "" for the root, "key version" for a noun
// under a noun. Aliases resolve to the canonical words.
struct Node {
  std::string path;
  const CLI::App* app;
};

std::vector<const CLI::App*> VisibleSubcommands(const CLI::App& app) {
  // An empty group is how CLI11 hides a subcommand from help; hide it here
  // too. A nameless one is an option group, not a command.
  const std::function<bool(const CLI::App*)> visible = [](const CLI::App* sub) {
    return !sub->get_name().empty() && !sub->get_group().empty() && !sub->get_disabled();
  };
  return app.get_subcommands(visible);
}

void Collect(const CLI::App& app, const std::string& path, std::vector<Node>* out) {
  out->push_back({path, &app});
  for (const CLI::App* sub : VisibleSubcommands(app)) {
    Collect(*sub, path.empty() ? sub->get_name() : absl::StrCat(path, " ", sub->get_name()), out);
  }
}

// Single-quoted for the shell. Our names never hold a quote; this keeps the
// script correct if one ever does.
std::string Quote(const std::string& text) {
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

std::vector<std::string> OptionNames(const CLI::Option& option) {
  std::vector<std::string> names;
  for (const std::string& s : option.get_snames()) names.push_back("-" + s);
  for (const std::string& l : option.get_lnames()) names.push_back("--" + l);
  return names;
}

// How a value of `option` completes: "" for a flag (no value), "file" and
// "dir" for paths (PREFIX is the start of a path), "value" for anything else.
std::string ValueKind(const CLI::Option& option) {
  if (option.get_expected_max() == 0) return "";
  const std::string type = option.get_type_name();
  if (type == "FILE" || type == "PREFIX") return "file";
  if (type == "DIR") return "dir";
  return "value";
}

std::vector<const CLI::Option*> NamedOptions(const CLI::App& app) {
  return app.get_options([](const CLI::Option* o) { return o->nonpositional(); });
}

bool TakesArguments(const CLI::App& app) {
  return !app.get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
}

constexpr char kMain[] = R"(
# Completes the word under the cursor from the words before it: command
# words move down the tree (aliases included), an option that takes a value
# swallows the next word (also as --option=value, which bash splits at "=").
_clavisctl() {
  local cur="${COMP_WORDS[COMP_CWORD]}"
  local path="" word pending="" pending_kind="" i
  local _clavisctl_subs _clavisctl_opts _clavisctl_args _clavisctl_next _clavisctl_kind
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="${COMP_WORDS[i]}"
    if [[ -n $pending ]]; then
      [[ $word == "=" ]] || pending=""
      continue
    fi
    case "$word" in
      --) return 0 ;;
      --*=*) ;;
      -*)
        _clavisctl_value_kind "$path" "$word"
        if [[ -n $_clavisctl_kind ]]; then
          pending=1
          pending_kind="$_clavisctl_kind"
        fi
        ;;
      *)
        _clavisctl_child "$path" "$word"
        [[ -n $_clavisctl_next ]] && path="$_clavisctl_next"
        ;;
    esac
  done
  if [[ -n $pending ]]; then
    [[ $cur == "=" ]] && cur=""
    case "$pending_kind" in
      file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
      dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
    esac
    return 0
  fi
  _clavisctl_node "$path"
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$_clavisctl_opts" -- "$cur"))
  elif [[ -n $_clavisctl_subs ]]; then
    COMPREPLY=($(compgen -W "$_clavisctl_subs" -- "$cur"))
  elif [[ $_clavisctl_args == 0 ]]; then
    COMPREPLY=($(compgen -W "$_clavisctl_opts" -- "$cur"))
  fi
  # Otherwise the word is a resource name: nothing to offer offline.
  return 0
}
complete -F _clavisctl clavisctl
)";

}  // namespace

std::string BashCompletionScript(const CLI::App& root) {
  std::vector<Node> nodes;
  Collect(root, "", &nodes);

  std::vector<std::string> global_options;
  std::set<std::string> global_value_options;
  for (const CLI::Option* option : NamedOptions(root)) {
    for (std::string& name : OptionNames(*option)) {
      if (!ValueKind(*option).empty()) global_value_options.insert(name);
      global_options.push_back(std::move(name));
    }
  }

  std::string node_cases;
  std::string child_cases;
  std::string value_cases;
  for (const Node& node : nodes) {
    std::vector<std::string> subs;
    for (const CLI::App* sub : VisibleSubcommands(*node.app)) {
      const std::string canonical =
          node.path.empty() ? sub->get_name() : absl::StrCat(node.path, " ", sub->get_name());
      std::vector<std::string> patterns;
      subs.push_back(sub->get_name());
      patterns.push_back(Quote(absl::StrCat(node.path, "/", sub->get_name())));
      for (const std::string& alias : sub->get_aliases()) {
        subs.push_back(alias);
        patterns.push_back(Quote(absl::StrCat(node.path, "/", alias)));
      }
      absl::StrAppend(&child_cases, "    ", absl::StrJoin(patterns, "|"),
                      ") _clavisctl_next=", Quote(canonical), " ;;\n");
    }
    // A command's own options, then the global ones (CLI11 passes an option
    // it does not know up to the root: fallthrough).
    std::vector<std::string> options;
    std::set<std::string> seen;
    for (const CLI::Option* option : NamedOptions(*node.app)) {
      const std::string kind = ValueKind(*option);
      for (std::string& name : OptionNames(*option)) {
        // Flags too: a command's own flag must not be taken for a global
        // option of the same name that takes a value.
        if (node.path.empty() || !kind.empty() || global_value_options.count(name) > 0) {
          absl::StrAppend(&value_cases, "    ", Quote(absl::StrCat(node.path, "/", name)),
                          ") _clavisctl_kind=", Quote(kind), " ;;\n");
        }
        if (seen.insert(name).second) options.push_back(std::move(name));
      }
    }
    for (const std::string& name : global_options) {
      if (seen.insert(name).second) options.push_back(name);
    }
    absl::StrAppend(&node_cases, "    ", Quote(node.path), ")\n",
                    "      _clavisctl_subs=", Quote(absl::StrJoin(subs, " ")), "\n",
                    "      _clavisctl_opts=", Quote(absl::StrJoin(options, " ")), "\n",
                    "      _clavisctl_args=", TakesArguments(*node.app) ? 1 : 0, " ;;\n");
  }
  // Global options that take a value, wherever they appear.
  for (const CLI::Option* option : NamedOptions(root)) {
    const std::string kind = ValueKind(*option);
    if (kind.empty()) continue;
    for (const std::string& name : OptionNames(*option)) {
      absl::StrAppend(&value_cases, "    *", Quote(absl::StrCat("/", name)),
                      ") _clavisctl_kind=", Quote(kind), " ;;\n");
    }
  }

  std::string script = absl::StrCat(
      "# bash completion for clavisctl, generated by `clavisctl completion bash`.\n"
      "# Install for everyone:  clavisctl completion bash > /etc/bash_completion.d/clavisctl\n"
      "# or for this shell:     source <(clavisctl completion bash)\n"
      "# Regenerate it after upgrading clavisctl: it lists the commands of this build.\n"
      "\n"
      "# The words after a command path: its subcommands and aliases, its options\n"
      "# and the global ones, and whether it takes arguments (resource names).\n"
      "_clavisctl_node() {\n"
      "  case \"$1\" in\n",
      node_cases,
      "    *) _clavisctl_subs=''; _clavisctl_opts=''; _clavisctl_args=1 ;;\n"
      "  esac\n"
      "}\n"
      "\n"
      "# The canonical command path after word $2 at path $1, or \"\" if $2 is not a\n"
      "# command there.\n"
      "_clavisctl_child() {\n"
      "  case \"$1/$2\" in\n",
      child_cases,
      "    *) _clavisctl_next='' ;;\n"
      "  esac\n"
      "}\n"
      "\n"
      "# Whether option $2 at path $1 takes a value, and how it completes: file,\n"
      "# dir or value (nothing to offer); \"\" for a flag or an unknown option. A\n"
      "# command's own option comes first (decrypt --key is not the global --key).\n"
      "_clavisctl_value_kind() {\n"
      "  case \"$1/$2\" in\n",
      value_cases,
      "    *) _clavisctl_kind='' ;;\n"
      "  esac\n"
      "}\n",
      kMain);
  return script;
}

}  // namespace clavis::clavisctl
