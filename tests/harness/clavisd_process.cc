#include "tests/harness/clavisd_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace clavis::testing {
namespace {

std::atomic<int> counter{0};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TempDir::TempDir() {
  path_ = absl::StrCat(::testing::TempDir(), "/clavis_it_", ::getpid(), "_", counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ClavisdProcess::ClavisdProcess(ClavisdOptions options) : options_(std::move(options)) {
  if (options_.log_file.empty()) {
    options_.log_file = absl::StrCat(options_.data_dir, ".clavisd-", counter++, ".log");
  }
}

ClavisdProcess::~ClavisdProcess() {
  if (running()) (void)Stop();
}

std::string ClavisdProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status ClavisdProcess::Start(absl::Duration timeout) {
  if (running()) return absl::FailedPreconditionError("already running");
  const std::string port_file = options_.data_dir + ".port";
  std::filesystem::remove(port_file);
  std::vector<std::string> args = {CLAVISD_BINARY, "--listen_address=127.0.0.1:0",
                                   "--data_dir=" + options_.data_dir, "--port_file=" + port_file,
                                   "--log_level=info"};
  if (options_.dev_short_windows) args.push_back("--insecure_dev_short_windows");
  for (const auto& a : options_.extra_args) args.push_back(a);

  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    const int fd = ::open(options_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("execv clavisd");
    ::_exit(127);
  }
  pid_ = pid;

  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("clavisd exited during start-up; log:\n", ReadFile(options_.log_file)));
    }
    std::string text = ReadFile(port_file);
    int port = 0;
    if (!text.empty() && absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) {
      port_ = port;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (port_ == 0) {
    Kill();
    return absl::DeadlineExceededError("clavisd did not report its port in time");
  }
  channel_ = grpc::CreateChannel(address(), grpc::InsecureChannelCredentials());
  if (!channel_->WaitForConnected(absl::ToChronoTime(deadline))) {
    Kill();
    return absl::DeadlineExceededError("clavisd did not accept connections in time");
  }
  return absl::OkStatus();
}

absl::Status ClavisdProcess::Stop(absl::Duration timeout) {
  if (!running()) return absl::OkStatus();
  channel_.reset();
  ::kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      channel_.reset();
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
      return absl::InternalError(absl::StrCat("clavisd exited with status ", status, "; log:\n",
                                              ReadFile(options_.log_file)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  Kill();
  return absl::DeadlineExceededError("clavisd did not stop within the timeout after SIGTERM");
}

void ClavisdProcess::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  channel_.reset();
}

std::unique_ptr<clavis::v1::KeyAdmin::Stub> ClavisdProcess::Admin() const {
  return clavis::v1::KeyAdmin::NewStub(channel_);
}

std::unique_ptr<clavis::v1::KeyManagement::Stub> ClavisdProcess::Data() const {
  return clavis::v1::KeyManagement::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

std::vector<std::pair<std::string, std::string>> ReadAllFiles(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) out.emplace_back(entry.path().string(), ReadFile(entry.path()));
  }
  return out;
}

}  // namespace clavis::testing
