// ServerProcess: a server under measurement (clavisd or the echo baseline)
// started as a child process, optionally pinned to one CPU, with the
// figures the load generator reports about it: CPU time used (user +
// system, the kernel's accounting that getrusage reports, read from
// /proc/PID/stat while it runs) and peak resident memory (VmHWM).
#ifndef CLAVIS_BENCH_LOAD_SERVER_PROCESS_H_
#define CLAVIS_BENCH_LOAD_SERVER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace clavis::bench {

class ServerProcess {
 public:
  // `argv` must make the server write its port to `port_file`. `cpu` < 0:
  // not pinned. Output goes to `log_file`. Ends the process with a message
  // if the server does not report a port within 30 s.
  ServerProcess(std::vector<std::string> argv, const std::string& port_file,
                const std::string& log_file, int cpu);
  ~ServerProcess();  // Stop()
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // User + system CPU seconds used so far, every thread included.
  double CpuSeconds() const;
  // Peak resident set size so far, in bytes.
  long PeakRssBytes() const;
  // SIGTERM and wait (SIGKILL after 30 s).
  void Stop();

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// Pins the calling thread (and the threads it starts later) to `cpu`.
void PinToCpu(int cpu);

// User + system CPU seconds process `pid` has used so far (0 if it is gone).
double CpuSecondsOf(pid_t pid);

}  // namespace clavis::bench

#endif  // CLAVIS_BENCH_LOAD_SERVER_PROCESS_H_
