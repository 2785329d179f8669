// ClavisdProcess: starts a real clavisd binary for integration tests, on a
// loopback port chosen at run time (port 0 + --port_file), in its own data
// directory, and stops it (SIGTERM, or SIGKILL to simulate a crash).
//
// The binary path comes from the CLAVISD_BINARY compile definition (set by
// tests/CMakeLists.txt to the built target).
#ifndef CLAVIS_TESTS_HARNESS_CLAVISD_PROCESS_H_
#define CLAVIS_TESTS_HARNESS_CLAVISD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "grpcpp/channel.h"

namespace clavis::testing {

// A fresh directory under the test temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct ClavisdOptions {
  ClavisdOptions() = default;
  explicit ClavisdOptions(std::string dir) : data_dir(std::move(dir)) {}

  std::string data_dir;  // REQUIRED
  bool dev_short_windows = true;
  std::vector<std::string> extra_args;
  // Where clavisd's stderr goes (appended), for post-mortems and log greps.
  std::string log_file;  // default: <data_dir>/../clavisd-<n>.log
};

class ClavisdProcess {
 public:
  explicit ClavisdProcess(ClavisdOptions options);
  ~ClavisdProcess();  // SIGTERM + wait if still running

  // Starts clavisd and waits (up to `timeout`) until it serves health checks.
  absl::Status Start(absl::Duration timeout = absl::Seconds(30));
  // SIGTERM, then waits for a clean exit; returns the exit status problem, if any.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(30));
  // SIGKILL: a crash, no clean-up of any kind.
  void Kill();
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  std::string address() const;
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  std::unique_ptr<clavis::v1::KeyAdmin::Stub> Admin() const;
  std::unique_ptr<clavis::v1::KeyManagement::Stub> Data() const;
  const std::string& log_file() const { return options_.log_file; }

 private:
  ClavisdOptions options_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
};

// A client context with a deadline of `timeout` from now.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(
    absl::Duration timeout = absl::Seconds(10));

// Every regular file under `dir` (recursively), read whole.
std::vector<std::pair<std::string, std::string>> ReadAllFiles(const std::string& dir);

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_HARNESS_CLAVISD_PROCESS_H_
