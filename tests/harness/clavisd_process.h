// ClavisdProcess: starts a real clavisd binary for integration tests, on a
// loopback port chosen at run time (port 0 + --port_file), in its own data
// directory, and stops it (SIGTERM, or SIGKILL to simulate a crash).
//
// The binary path comes from the CLAVISD_BINARY compile definition (set by
// tests/CMakeLists.txt to the built target).
//
// Authentication is on by default, as in production: the harness makes a
// CA (tools/pki) beside the data directory, starts clavisd with TLS, client
// certificates (mTLS) and service tokens, and makes each test tenant's
// "admin" principal (tenants/{t}/principals/admin) a tenant administrator.
// Channels authenticate with a client certificate of the principal asked
// for; TestKeyPolicy() gives that principal every right on a key (with the
// separation-of-duties override), which is what most tests want.
#ifndef CLAVIS_TESTS_HARNESS_CLAVISD_PROCESS_H_
#define CLAVIS_TESTS_HARNESS_CLAVISD_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
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

// The tenants whose admin principal is a tenant administrator in tests.
const std::vector<std::string>& TestTenants();

// tenants/{tenant}/principals/{id}
std::string PrincipalName(const std::string& tenant, const std::string& id = "admin");

// A key policy for `key` (tenants/{t}/keys/{k}) giving `principals` (default:
// the tenant's admin) every action, administrative and data plane alike.
std::string TestKeyPolicy(const std::string& key, std::vector<std::string> principals = {});

enum class HarnessAuth {
  kMutualTls,    // TLS + client certificates + service tokens (default)
  kInsecureDev,  // --insecure_dev_no_auth: plaintext, no authentication
  kExternal,     // no authentication flags: the test passes its own in extra_args
};

struct ClavisdOptions {
  ClavisdOptions() = default;
  explicit ClavisdOptions(std::string dir) : data_dir(std::move(dir)) {}

  std::string data_dir;  // REQUIRED
  bool dev_short_windows = true;
  HarnessAuth auth = HarnessAuth::kMutualTls;
  // kExternal: where the test's own CA certificate (ca.crt) is, so the
  // harness can still open TLS channels (and check clavisd is up).
  std::string external_pki_dir;
  std::vector<std::string> extra_args;
  // Start() after Stop() listens on the port of the first start again
  // (instead of a new one), for tests of clients that reconnect.
  bool keep_port_on_restart = false;
  // Where clavisd's stderr goes (appended), for post-mortems and log greps.
  std::string log_file;  // default: <data_dir>/../clavisd-<n>.log
  // --log_level (clavisd takes it once, so not through extra_args).
  std::string log_level = "info";
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
  // A channel authenticated as `principal` (mTLS; a client certificate is
  // issued on first use). Default: the admin of tenant "acme".
  std::shared_ptr<grpc::Channel> channel(const std::string& principal = "");
  // Not const: the first use of a principal issues its certificate.
  std::unique_ptr<clavis::v1::KeyAdmin::Stub> Admin(const std::string& principal = "");
  std::unique_ptr<clavis::v1::KeyManagement::Stub> Data(const std::string& principal = "");
  // A new channel of its own (not shared with other calls) as `principal`.
  std::shared_ptr<grpc::Channel> NewChannel(const std::string& principal = "");
  // A TLS channel without a client certificate (for token and bad-credential tests).
  std::shared_ptr<grpc::Channel> AnonymousChannel();

  // Files for clavisctl: CA certificate, and the client certificate/key of
  // `principal` (issued on first use).
  std::string ca_cert_file() const { return pki_dir_ + "/ca.crt"; }
  std::string client_cert_prefix(const std::string& principal);
  // A service token for `principal` signed by the harness's trusted issuer.
  std::string IssueToken(const std::string& principal, absl::Duration ttl = absl::Minutes(10),
                         const std::vector<std::string>& groups = {},
                         const std::string& audience = "clavis-test",
                         const std::string& token_id = "");
  const std::string& pki_dir() const { return pki_dir_; }
  // <data_dir>/audit-signing.pub content, decoded (32 bytes).
  std::string AuditPublicKey() const;
  const std::string& log_file() const { return options_.log_file; }

 private:
  absl::Status PreparePki();
  std::shared_ptr<grpc::Channel> MakeTlsChannel(const std::string& cert_prefix);

  ClavisdOptions options_;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string pki_dir_;
  // Guards channels_ and certificate issuance: tests open channels from
  // several threads.
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // by principal
};

// A client context with a deadline of `timeout` from now.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(
    absl::Duration timeout = absl::Seconds(10));

// Every regular file under `dir` (recursively), read whole.
std::vector<std::pair<std::string, std::string>> ReadAllFiles(const std::string& dir);

}  // namespace clavis::testing

#endif  // CLAVIS_TESTS_HARNESS_CLAVISD_PROCESS_H_
