// EtcdCluster: starts real etcd processes (/usr/bin/etcd, Debian's
// etcd-server, which scripts/setup installs) for tests: N members on loopback
// ports chosen at run time, each with its own data directory under a fresh
// temporary directory, and kills them at destruction.
//
// etcd cannot listen on port 0 and report the port, so the harness picks free
// ports (binds a socket to port 0, reads the port, closes it) and passes
// them; if a member then fails to bind (another process took the port
// meanwhile), the whole cluster is started again on new ports.
//
// Readiness is polled on each member's plain-HTTP metrics URL (/health),
// which also works when clients must use TLS.
//
// Members start with --max-txn-ops=10240 and --max-request-bytes=10485760,
// the values docs/ETCD.md asks for, unless extra_args override them.
//
// Not thread-safe: one test thread drives it.
#ifndef CLAVIS_TESTS_HARNESS_ETCD_PROCESS_H_
#define CLAVIS_TESTS_HARNESS_ETCD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace clavis::testing {

// Where the etcd binary is; tests fail (not skip) if it is missing.
inline constexpr char kEtcdBinary[] = "/usr/bin/etcd";

struct EtcdClusterOptions {
  int members = 1;
  // Appended to every member's command line (e.g. "--max-txn-ops=128").
  std::vector<std::string> extra_args;
  // Serve clients over TLS only (https:// client URLs) and require client
  // certificates (--client-cert-auth). The harness makes a CA, a server
  // certificate for 127.0.0.1 and a client certificate with openssl.
  bool tls = false;
};

class EtcdCluster {
 public:
  explicit EtcdCluster(EtcdClusterOptions options = {});
  ~EtcdCluster();  // SIGKILL every member, remove the directory
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // Starts every member and waits until each answers /health with a leader
  // elected (up to `timeout`). Errors name the member and end with its log.
  absl::Status Start(absl::Duration timeout = absl::Seconds(30));

  // SIGKILL of one member (a crash); its data directory stays.
  void Kill(int member);
  // SIGSTOP / SIGCONT: a member that stops answering without closing its
  // connections (as after a power loss or a cut network).
  void Freeze(int member);
  void Thaw(int member);
  // Starts a killed member again on the same ports and data directory and
  // waits until it is healthy.
  absl::Status Restart(int member, absl::Duration timeout = absl::Seconds(30));
  bool running(int member) const { return members_[member].pid > 0; }

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:<client port>" of `member`.
  std::string endpoint(int member) const;
  // Every member's endpoint.
  std::vector<std::string> endpoints() const;
  // The same, comma-separated (for clavisd's --etcd_endpoints).
  std::string endpoints_flag() const;
  // "http://127.0.0.1:<port>" or, with tls, "https://...".
  std::string client_url(int member) const;
  // With tls: the CA certificate, and a client certificate and key it signed.
  std::string ca_file() const { return dir_ + "/pki/ca.crt"; }
  std::string client_cert_file() const { return dir_ + "/pki/client.crt"; }
  std::string client_key_file() const { return dir_ + "/pki/client.key"; }
  // The member's data directory (member/snap/db, member/wal/...).
  std::string data_dir(int member) const;
  std::string log_file(int member) const;
  const std::string& dir() const { return dir_; }

 private:
  struct Member {
    std::string name;
    int client_port = 0;
    int peer_port = 0;
    int metrics_port = 0;  // plain HTTP /health, also when clients use TLS
    pid_t pid = -1;
  };

  absl::Status StartOnce(absl::Duration timeout);
  absl::Status MakePki();
  absl::Status Spawn(int member, bool new_cluster);
  absl::Status WaitHealthy(int member, absl::Time deadline);
  std::string InitialCluster() const;

  EtcdClusterOptions options_;
  std::string dir_;
  std::vector<Member> members_;
};

// A loopback TCP port that was free a moment ago.
int PickFreePort();

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_HARNESS_ETCD_PROCESS_H_
