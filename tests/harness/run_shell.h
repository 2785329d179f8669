// Running command lines from tests (clavisctl, clavis-recover, openssl),
// capturing what they print and their exit code. Test-only, header-only.
#ifndef CLAVIS_TESTS_HARNESS_RUN_SHELL_H_
#define CLAVIS_TESTS_HARNESS_RUN_SHELL_H_

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace clavis::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout (and stderr if the command line redirects it)
};

// Runs `command` with /bin/sh. gRPC resolves "localhost" (the name in the
// test certificates) with its native resolver: c-ares keeps a 10-byte
// allocation past exit that the sanitizer build's leak checker would count
// against the tool.
inline CommandResult RunShell(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(("GRPC_DNS_RESOLVER=native " + command).c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.out.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_HARNESS_RUN_SHELL_H_
