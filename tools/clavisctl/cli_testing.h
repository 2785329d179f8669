// Test-only: runs clavisctl in-process (Run, as main does) and captures what
// it prints, so unit tests check exit codes and output without a subprocess.
#ifndef CLAVIS_TOOLS_CLAVISCTL_CLI_TESTING_H_
#define CLAVIS_TOOLS_CLAVISCTL_CLI_TESTING_H_

#include <sstream>
#include <string>
#include <vector>

#include "tools/clavisctl/run.h"

namespace clavis::clavisctl::cli_testing {

struct CliResult {
  int code;
  std::string out;
  std::string err;
};

// `args` are the words after "clavisctl"; `env_endpoint` stands for
// $CLAVIS_ENDPOINT (null: unset); `stdin_text` is what the command reads.
inline CliResult RunCliInProcess(std::vector<std::string> args, const char* env_endpoint,
                                 const std::string& stdin_text = "") {
  args.insert(args.begin(), "clavisctl");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  Io io;
  io.in = &in;
  io.out = &out;
  io.err = &err;
  const int code = Run(static_cast<int>(argv.size()), argv.data(), io, env_endpoint);
  return {code, out.str(), err.str()};
}

}  // namespace clavis::clavisctl::cli_testing

#endif  // CLAVIS_TOOLS_CLAVISCTL_CLI_TESTING_H_
