#include "tests/harness/etcd_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace clavis::testing {
namespace {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// The last `bytes` of a log, for error messages.
std::string Tail(const std::string& text, size_t bytes = 4000) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

// One HTTP/1.0 GET of /health on 127.0.0.1:port; true if etcd reports
// itself healthy (a leader is elected and the member serves requests).
bool Healthy(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval timeout{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[1024];
      ssize_t n;
      while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) reply.append(buffer, n);
    }
  }
  ::close(fd);
  return absl::StrContains(reply, "\"health\":\"true\"");
}

}  // namespace

int PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

EtcdCluster::EtcdCluster(EtcdClusterOptions options) : options_(std::move(options)) {
  static int counter = 0;
  const char* tmp = ::getenv("TEST_TMPDIR");
  dir_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/clavis_etcd_", ::getpid(), "_", counter++);
  std::filesystem::remove_all(dir_);
  std::filesystem::create_directories(dir_);
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all);
  for (int i = 0; i < options_.members; ++i) {
    members_.push_back(Member{absl::StrCat("m", i)});
  }
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string EtcdCluster::endpoint(int member) const {
  return absl::StrCat("127.0.0.1:", members_[member].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> all;
  for (int i = 0; i < size(); ++i) all.push_back(endpoint(i));
  return all;
}

std::string EtcdCluster::client_url(int member) const {
  return absl::StrCat(options_.tls ? "https://" : "http://", endpoint(member));
}

std::string EtcdCluster::endpoints_flag() const { return absl::StrJoin(endpoints(), ","); }

std::string EtcdCluster::data_dir(int member) const {
  return absl::StrCat(dir_, "/", members_[member].name, ".etcd");
}

std::string EtcdCluster::log_file(int member) const {
  return absl::StrCat(dir_, "/", members_[member].name, ".log");
}

std::string EtcdCluster::InitialCluster() const {
  std::vector<std::string> peers;
  for (const Member& member : members_) {
    peers.push_back(absl::StrCat(member.name, "=http://127.0.0.1:", member.peer_port));
  }
  return absl::StrJoin(peers, ",");
}

absl::Status EtcdCluster::Start(absl::Duration timeout) {
  if (::access(kEtcdBinary, X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        kEtcdBinary, " is missing: install Debian's etcd-server (scripts/setup does)"));
  }
  if (options_.tls) {
    if (absl::Status made = MakePki(); !made.ok()) return made;
  }
  absl::Status status;
  for (int attempt = 0; attempt < 3; ++attempt) {
    status = StartOnce(timeout);
    if (status.ok()) return status;
    for (int i = 0; i < size(); ++i) Kill(i);
    // A port taken between picking and binding: try again on new ports
    // (with fresh data directories, since the cluster never formed).
    bool port_clash = false;
    for (int i = 0; i < size(); ++i) {
      port_clash =
          port_clash || absl::StrContains(ReadWholeFile(log_file(i)), "address already in use");
      std::error_code ec;
      std::filesystem::remove_all(data_dir(i), ec);
    }
    if (!port_clash) return status;
  }
  return status;
}

absl::Status EtcdCluster::StartOnce(absl::Duration timeout) {
  for (Member& member : members_) {
    member.client_port = PickFreePort();
    member.peer_port = PickFreePort();
    member.metrics_port = PickFreePort();
    if (member.client_port == 0 || member.peer_port == 0 || member.metrics_port == 0 ||
        member.client_port == member.peer_port || member.client_port == member.metrics_port ||
        member.peer_port == member.metrics_port) {
      return absl::InternalError("could not pick free loopback ports");
    }
  }
  for (int i = 0; i < size(); ++i) {
    if (absl::Status spawned = Spawn(i, /*new_cluster=*/true); !spawned.ok()) return spawned;
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (int i = 0; i < size(); ++i) {
    if (absl::Status healthy = WaitHealthy(i, deadline); !healthy.ok()) return healthy;
  }
  return absl::OkStatus();
}

absl::Status EtcdCluster::Spawn(int index, bool new_cluster) {
  Member& member = members_[index];
  const std::string client = client_url(index);
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", member.peer_port);
  std::vector<std::string> args = {
      kEtcdBinary,
      "--name=" + member.name,
      "--data-dir=" + data_dir(index),
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      absl::StrCat("--listen-metrics-urls=http://127.0.0.1:", member.metrics_port),
      "--listen-peer-urls=" + peer_url,
      "--initial-advertise-peer-urls=" + peer_url,
      "--initial-cluster=" + InitialCluster(),
      std::string("--initial-cluster-state=") + (new_cluster ? "new" : "existing"),
      "--initial-cluster-token=" + dir_,
      "--max-txn-ops=10240",
      "--max-request-bytes=10485760",
      "--logger=zap",
      "--log-outputs=stderr",
  };
  if (options_.tls) {
    for (const std::string& arg :
         {"--cert-file=" + dir_ + "/pki/server.crt", "--key-file=" + dir_ + "/pki/server.key",
          "--trusted-ca-file=" + ca_file(), std::string("--client-cert-auth")}) {
      args.push_back(arg);
    }
  }
  for (const std::string& arg : options_.extra_args) args.push_back(arg);

  const std::string log = log_file(index);
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    // Only our flags: no ETCD_* variables from the environment.
    char* env[] = {nullptr};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::execve(argv[0], argv.data(), env);
    std::perror("execve etcd");
    ::_exit(127);
  }
  member.pid = pid;
  return absl::OkStatus();
}

absl::Status EtcdCluster::WaitHealthy(int index, absl::Time deadline) {
  Member& member = members_[index];
  while (absl::Now() < deadline) {
    int status = 0;
    if (::waitpid(member.pid, &status, WNOHANG) == member.pid) {
      member.pid = -1;
      return absl::InternalError(absl::StrCat("etcd member ", member.name,
                                              " exited during start-up (status ", status,
                                              "); log:\n", Tail(ReadWholeFile(log_file(index)))));
    }
    if (Healthy(member.metrics_port)) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("etcd member ", member.name,
                                                  " not healthy in time; log:\n",
                                                  Tail(ReadWholeFile(log_file(index)))));
}

absl::Status EtcdCluster::MakePki() {
  const std::string pki = dir_ + "/pki";
  std::filesystem::create_directories(pki);
  {
    std::ofstream server(pki + "/server.ext");
    server << "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
    std::ofstream client(pki + "/client.ext");
    client << "extendedKeyUsage=clientAuth\n";
  }
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  const std::string commands = absl::StrCat(
      "cd '", pki, "' && ", "openssl req -x509 ", key,
      " -keyout ca.key -out ca.crt -days 2 -subj /CN=clavis-test-etcd-ca", " && openssl req ", key,
      " -keyout server.key -out server.csr -subj /CN=etcd",
      " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial",
      " -out server.crt -days 2 -extfile server.ext", " && openssl req ", key,
      " -keyout client.key -out client.csr -subj /CN=clavis",
      " && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial",
      " -out client.crt -days 2 -extfile client.ext", " && chmod 600 *.key > /dev/null 2>&1");
  const std::string command = absl::StrCat("(", commands, ") > '", pki, "/openssl.log' 2>&1");
  if (std::system(command.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("making the etcd test PKI failed:\n", ReadWholeFile(pki + "/openssl.log")));
  }
  return absl::OkStatus();
}

void EtcdCluster::Kill(int member) {
  Member& m = members_[member];
  if (m.pid <= 0) return;
  ::kill(m.pid, SIGKILL);
  ::kill(m.pid, SIGCONT);  // a frozen member dies too
  int status = 0;
  ::waitpid(m.pid, &status, 0);
  m.pid = -1;
}

void EtcdCluster::Freeze(int member) {
  if (members_[member].pid > 0) ::kill(members_[member].pid, SIGSTOP);
}

void EtcdCluster::Thaw(int member) {
  if (members_[member].pid > 0) ::kill(members_[member].pid, SIGCONT);
}

absl::Status EtcdCluster::Restart(int member, absl::Duration timeout) {
  Kill(member);
  // The data directory exists, so etcd ignores the --initial-cluster* flags
  // and rejoins with its stored membership.
  if (absl::Status spawned = Spawn(member, /*new_cluster=*/false); !spawned.ok()) return spawned;
  return WaitHealthy(member, absl::Now() + timeout);
}

}  // namespace clavis::testing
