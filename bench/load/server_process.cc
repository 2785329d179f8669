#include "bench/load/server_process.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "bench/load/files.h"

namespace clavis::bench {

void PinToCpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof set, &set);
}

ServerProcess::ServerProcess(std::vector<std::string> argv, const std::string& port_file,
                             const std::string& log_file, int cpu) {
  std::filesystem::remove(port_file);
  const pid_t pid = ::fork();
  if (pid < 0) DieWith("fork failed");
  if (pid == 0) {
    if (cpu >= 0) PinToCpu(cpu);
    const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::perror("execv");
    ::_exit(127);
  }
  pid_ = pid;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      DieWith(absl::StrCat(argv[0], " exited during start-up; its log:\n",
                           ReadFileIfPresent(log_file)));
    }
    int port = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFileIfPresent(port_file)), &port) &&
        port > 0) {
      port_ = port;
      return;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Stop();
  DieWith(absl::StrCat(argv[0], " did not report its port within 30 s"));
}

ServerProcess::~ServerProcess() { Stop(); }

void ServerProcess::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  // A graceful stop; a server still running after 30 s is killed.
  int status = 0;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  pid_ = -1;
}

double ServerProcess::CpuSeconds() const { return CpuSecondsOf(pid_); }

double CpuSecondsOf(pid_t pid) {
  // /proc/PID/stat: "pid (comm) state ..."; comm may hold spaces, so the
  // fields are counted from the last ')'. utime and stime are fields 14
  // and 15 (1-based), in clock ticks.
  const std::string stat = ReadFileIfPresent(absl::StrCat("/proc/", pid, "/stat"));
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  // fields[0] is field 3 (state): utime is fields[11], stime fields[12].
  if (fields.size() < 13) return 0;
  long utime = 0, stime = 0;
  if (!absl::SimpleAtoi(fields[11], &utime) || !absl::SimpleAtoi(fields[12], &stime)) return 0;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

long ServerProcess::PeakRssBytes() const {
  std::istringstream status(ReadFileIfPresent(absl::StrCat("/proc/", pid_, "/status")));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmHWM:")) {
      long kib = 0;
      rest = absl::StripSuffix(absl::StripAsciiWhitespace(rest), "kB");
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kib)) return kib * 1024;
    }
  }
  return 0;
}

}  // namespace clavis::bench
