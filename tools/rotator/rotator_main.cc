// clavis-rotator: the daemon that makes rotation happen on schedule, re-wraps
// segment keys after each rotation, carries out destructions at the end of
// their windows and expires imported material at its valid-to time, for the
// tenants it is given. It acts through clavisd's KeyAdmin API as its own
// principal (mTLS certificate or service token), so every action is
// authorized by key policies and audited. Several rotators may run at once:
// a due rotation happens exactly once (compare-and-set on the due time).
//
// SIGTERM/SIGINT: finish the current call, stop, exit 0.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "kms/logging/json_log_format.h"
#include "kms/server/process_hardening.h"
#include "spdlog/spdlog.h"
#include "tools/clavisctl/channel.h"
#include "tools/rotator/metrics_server.h"
#include "tools/rotator/rotator.h"

namespace {

constexpr char kFooter[] = R"(Examples:
  clavis-rotator --endpoint kms.internal:7370 --ca_cert ca.crt --cert rotator.crt \
      --key rotator.key --tenant acme --metrics_listen 127.0.0.1:9464
  clavis-rotator --config /etc/clavis/rotator.ini

The rotator's principal needs, on the keys it looks after: GetKey, Rotate,
RewrapSegments, Destroy, ManageVersions, DestroySegment, ListSegments, and
ListKeys on the tenant (docs/ACCESS.md). A principal belongs to one tenant
and access never crosses tenants: run one rotator per tenant (several
--tenant only work against a development clavisd). Metrics: GET /metrics.)";

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"clavis-rotator: scheduled rotation, re-wrap, destruction and expiry for Clavis"};
  app.footer(kFooter);
  app.set_config("--config", "", "INI/TOML file with these options (same names)");
  // A misspelt option in the file must not be silently ignored.
  app.allow_config_extras(CLI::config_extras_mode::error);
  std::string endpoint = "127.0.0.1:7370", ca_cert, cert, key, token_file,
              metrics_listen = "127.0.0.1:9464", log_level = "info", log_format = "text";
  std::vector<std::string> tenants;
  double interval_s = 60, full_scan_s = 600, retire_grace_s = 300;
  int batch = 1000;
  bool once = false, allow_shared_secret_files = false;
  app.add_option("--endpoint", endpoint, "clavisd address (default 127.0.0.1:7370)");
  app.add_option("--ca_cert", ca_cert, "PEM CA of clavisd's certificate: use TLS");
  app.add_option("--cert", cert, "PEM client certificate of the rotator's principal (mTLS)");
  app.add_option("--key", key, "PEM private key of --cert");
  app.add_option("--token_file", token_file, "a service token instead of a certificate");
  app.add_option("--tenant", tenants,
                 "tenant to look after: the principal's own (repeatable for a development "
                 "clavisd only)")
      ->required();
  app.add_option("--interval_s", interval_s, "seconds between passes (default 60)")
      ->check(CLI::PositiveNumber);
  app.add_option("--full_scan_s", full_scan_s,
                 "seconds between full scans of every key's segments (default 600)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--retire_grace_s", retire_grace_s,
                 "seconds a key's newest version must have been primary before older versions "
                 "that protect nothing are retired per the key's version_retirement (default 300)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rewrap_batch_size", batch, "segments per RewrapSegments call (default 1000)")
      ->check(CLI::Range(1, 10000));
  app.add_option("--metrics_listen", metrics_listen,
                 "IPv4:PORT for Prometheus metrics (default 127.0.0.1:9464; empty: none)");
  app.add_option("--log_level", log_level, "trace, debug, info, warn, error");
  app.add_option("--log_format", log_format,
                 "text (default) or json: one JSON object per line (time, level, logger, msg) "
                 "for log shippers")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--once", once, "one pass, then exit (exit 1 if a tenant could not be listed)");
  app.add_flag("--insecure_allow_shared_secret_files", allow_shared_secret_files,
               "accept a --key or --token_file that group or others can read or another user "
               "owns (containers that mount secrets so); logged as a warning at every start");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  // Before the key or token is read: a core file would hold them.
  if (absl::Status s = clavis::hardening::DisableCoreDumps(); !s.ok()) {
    std::fprintf(stderr, "clavis-rotator: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (absl::Status s = clavis::logging::SetLogFormat(log_format); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
    return 2;
  }
  // Its credentials must be private to the rotator's user (docs/clavis-rotator.md).
  clavis::hardening::PermissionOptions permissions;
  permissions.allow_shared_secret_files = allow_shared_secret_files;
  for (const auto& [path, what] : {std::pair<const std::string&, const char*>{key, "--key file"},
                                   {token_file, "--token_file"}}) {
    if (absl::Status s = clavis::hardening::CheckSecretFile(path, what, permissions); !s.ok()) {
      spdlog::error("clavis-rotator: {}", std::string(s.message()));
      return 2;
    }
  }
  // Signals go to one thread (sigwait), so they must be blocked before gRPC
  // starts threads of its own, which would otherwise take SIGTERM's default
  // action. A one-shot run keeps the default: it just ends.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  if (!once) pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  clavis::clavisctl::ChannelOptions channel;
  channel.endpoint = endpoint;
  channel.user_agent = "clavis-rotator";
  if (!ca_cert.empty() && !ReadFile(ca_cert, &channel.root_certificates_pem)) {
    spdlog::error("cannot read --ca_cert {}", ca_cert);
    return 2;
  }
  if (!cert.empty() && (!ReadFile(cert, &channel.client_certificate_pem) ||
                        !ReadFile(key, &channel.client_key_pem))) {
    spdlog::error("cannot read --cert {} / --key {}", cert, key);
    return 2;
  }
  if (!token_file.empty()) {
    if (!ReadFile(token_file, &channel.token)) {
      spdlog::error("cannot read --token_file {}", token_file);
      return 2;
    }
    while (!channel.token.empty() &&
           (channel.token.back() == '\n' || channel.token.back() == '\r')) {
      channel.token.pop_back();
    }
  }
  if (channel.root_certificates_pem.empty() &&
      (!channel.client_certificate_pem.empty() || !channel.token.empty())) {
    spdlog::error("--cert and --token_file need TLS: give --ca_cert");
    return 2;
  }
  auto stub = clavis::v1::KeyAdmin::NewStub(clavis::clavisctl::MakeChannel(channel));
  std::fill(channel.client_key_pem.begin(), channel.client_key_pem.end(), '\0');

  clavis::rotator::RotatorMetrics metrics;
  clavis::rotator::RotatorOptions options;
  options.tenants = tenants;
  options.rewrap_batch_size = batch;
  options.full_scan_interval = absl::Seconds(full_scan_s);
  options.retire_grace = absl::Seconds(retire_grace_s);
  clavis::rotator::Rotator rotator(stub.get(), options, &metrics);

  if (once) return rotator.RunOnce().ok() ? 0 : 1;

  absl::Notification stop;
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("clavis-rotator: received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    stop.Notify();
  });

  std::unique_ptr<clavis::rotator::MetricsServer> server;
  if (!metrics_listen.empty()) {
    auto started =
        clavis::rotator::MetricsServer::Start(metrics_listen, [&] { return metrics.Prometheus(); });
    if (!started.ok()) {
      spdlog::error("clavis-rotator: {}", std::string(started.status().message()));
      ::kill(::getpid(), SIGTERM);
      signal_thread.join();
      return 1;
    }
    server = *std::move(started);
    spdlog::info("clavis-rotator: metrics on 127.0.0.1:{}/metrics", server->port());
  }
  spdlog::info("clavis-rotator: looking after {} tenant(s) of {}, a pass every {}s", tenants.size(),
               endpoint, interval_s);
  while (!stop.HasBeenNotified()) {
    if (absl::Status s = rotator.RunOnce(); !s.ok()) {
      spdlog::warn("clavis-rotator: {}", std::string(s.message()));
    }
    stop.WaitForNotificationWithTimeout(absl::Seconds(interval_s));
  }
  signal_thread.join();
  server.reset();
  spdlog::info("clavis-rotator: stopped");
  return 0;
}
