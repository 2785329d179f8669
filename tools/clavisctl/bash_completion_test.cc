// The generated bash completion script (bash_completion.h) as text: it covers
// every command path of the real command tree, aliases, and each command's
// and the global options. completion_test.sh runs it in bash.
#include "tools/clavisctl/bash_completion.h"

#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/clavisctl/run.h"

namespace clavis::clavisctl {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

struct Path {
  std::string words;  // "key version disable"
  const CLI::App* app;
};

// Every command path of the tree, walked here independently of the
// generator so that a command it skipped would show up.
void AllPaths(const CLI::App& app, const std::string& prefix, std::vector<Path>* out) {
  const std::function<bool(const CLI::App*)> all = [](const CLI::App*) { return true; };
  for (const CLI::App* sub : app.get_subcommands(all)) {
    const std::string words =
        prefix.empty() ? sub->get_name() : absl::StrCat(prefix, " ", sub->get_name());
    out->push_back({words, sub});
    AllPaths(*sub, words, out);
  }
}

// The words of the _clavisctl_opts line of `path`'s case in the script.
std::vector<std::string> OptionsOf(const std::string& script, const std::string& path) {
  const size_t at = script.find(absl::StrCat("    '", path, "')\n"));
  if (at == std::string::npos) return {};
  const std::string kOpts = "_clavisctl_opts='";
  const size_t opts = script.find(kOpts, at) + kOpts.size();
  return absl::StrSplit(script.substr(opts, script.find('\'', opts) - opts), ' ');
}

class BashCompletionTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cli> cli_ = BuildCli(nullptr);
  std::string script_ = BashCompletionScript(cli_->app);
};

TEST_F(BashCompletionTest, HasEveryCommandPathOfTheTree) {
  std::vector<Path> paths;
  AllPaths(cli_->app, "", &paths);
  ASSERT_GT(paths.size(), 60u);  // the tree, not an empty app
  for (const Path& path : paths) {
    EXPECT_THAT(script_, HasSubstr(absl::StrCat("    '", path.words, "')\n"))) << path.words;
  }
  for (const char* path :
       {"key", "key rotate", "key version", "key version disable", "segment revoke",
        "policy simulate", "approval approve", "whoami", "status", "pki init-ca", "token issue",
        "audit verify", "completion bash"}) {
    EXPECT_THAT(script_, HasSubstr(absl::StrCat("    '", path, "')\n"))) << path;
  }
}

TEST_F(BashCompletionTest, AliasesLeadToTheCanonicalCommand) {
  EXPECT_THAT(script_, HasSubstr("'/pki'|'/certs') _clavisctl_next='pki' ;;"));
  EXPECT_THAT(script_,
              HasSubstr("'pki/init-ca'|'pki/bootstrap') _clavisctl_next='pki init-ca' ;;"));
  EXPECT_THAT(script_, HasSubstr("_clavisctl_subs='init-ca bootstrap issue-server issue-client'"));
}

TEST_F(BashCompletionTest, EveryCommandOffersItsOwnAndTheGlobalOptions) {
  std::vector<Path> paths;
  AllPaths(cli_->app, "", &paths);
  for (const Path& path : paths) {
    const std::vector<std::string> options = OptionsOf(script_, path.words);
    for (const char* global : {"--endpoint", "--timeout", "--json", "--ca-cert", "--cert",
                               "--token-file", "--profile", "--profile-file", "--help"}) {
      EXPECT_THAT(options, Contains(global)) << path.words;
    }
    for (const CLI::Option* option :
         path.app->get_options([](const CLI::Option* o) { return o->nonpositional(); })) {
      for (const std::string& name : option->get_lnames()) {
        EXPECT_THAT(options, Contains("--" + name)) << path.words;
      }
    }
  }
  EXPECT_THAT(OptionsOf(script_, "key rewrap"), Contains("--batch-size"));
  EXPECT_THAT(OptionsOf(script_, "pki init-ca"), Contains("--out"));
}

TEST_F(BashCompletionTest, OptionValuesCompleteAsPathsWhereTheyArePaths) {
  EXPECT_THAT(script_, HasSubstr("*'/--ca-cert') _clavisctl_kind='file' ;;"));
  EXPECT_THAT(script_, HasSubstr("'pki init-ca/--out') _clavisctl_kind='dir' ;;"));
  // decrypt's own --key is a key name, not the global --key FILE.
  EXPECT_THAT(script_, HasSubstr("'decrypt/--key') _clavisctl_kind='value' ;;"));
  EXPECT_THAT(script_, HasSubstr("*'/--endpoint') _clavisctl_kind='value' ;;"));
}

TEST_F(BashCompletionTest, TheCommandPrintsTheScriptAndTellsHowToInstallIt) {
  std::vector<const char*> argv = {"clavisctl", "completion", "bash"};
  std::istringstream in;
  std::ostringstream out, err;
  Io io;
  io.in = &in;
  io.out = &out;
  io.err = &err;
  EXPECT_EQ(clavisctl::Run(static_cast<int>(argv.size()), argv.data(), io, nullptr), 0)
      << err.str();
  EXPECT_EQ(out.str(), script_);
  EXPECT_THAT(out.str(), HasSubstr("source <(clavisctl completion bash)"));
  EXPECT_THAT(out.str(), HasSubstr("> /etc/bash_completion.d/clavisctl"));
  EXPECT_EQ(err.str(), "");
}

}  // namespace
}  // namespace clavis::clavisctl
