// Starting helper processes (clavis-rotator, clients) from tests: fork and
// exec with stdout and stderr appended to a log file. Test-only,
// header-only.
#ifndef CLAVIS_TESTS_HARNESS_SPAWN_H_
#define CLAVIS_TESTS_HARNESS_SPAWN_H_

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace clavis::testing {

// Runs `args` (args[0]: the binary's path) in a child process whose output
// is appended to `log_file`. gRPC in the child resolves names with its
// native resolver (see run_shell.h). Returns the child's pid, or -1.
inline pid_t SpawnLogged(std::vector<std::string> args, const std::string& log_file) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setenv("GRPC_DNS_RESOLVER", "native", 1);
  const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_HARNESS_SPAWN_H_
