// clavis-bench: what a call to clavisd costs, next to what any gRPC call
// costs on the same machine in the same run.
//
// It starts clavisd (TLS with client certificates, audit log on, as in
// production; the per-principal rate limit off, since it is the thing
// measured) and the bare gRPC echo server of the baseline (same gRPC, same
// TLS), each as a process of its own pinned to CPU 1, and drives both from
// this process on CPU 0 with the same closed-loop callers and the same
// message sizes. For each call it reports throughput, latency percentiles
// and the server's CPU time per call, each next to the echo figure and as
// a ratio; then p99 at half of the peak rate; then the calls again in
// development mode (plaintext, no authentication, no audit log) against a
// plaintext echo. bench/load/README.md explains the figures.
//
//   build/bench/load/clavis-bench                  # full: about 2 minutes
//   build/bench/load/clavis-bench --quick          # CI smoke: about 20 s
//   build/bench/load/clavis-bench --scenarios generate,decrypt --callers 32
//   build/bench/load/clavis-bench --clavisd_arg=--storage_backend=etcd
//       --clavisd_arg=--etcd_endpoints=127.0.0.1:2379   # clavisd on etcd
//
// It prints figures and asserts nothing about speed.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/load/files.h"
#include "bench/load/load_generator.h"
#include "bench/load/scenarios.h"
#include "bench/load/server_process.h"
#include "crypto/openssl_process.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "kms/server/config.pb.h"
#include "tools/pki/pki.h"

namespace clavis::bench {
namespace {

constexpr char kPrincipal[] = "tenants/bench/principals/app";

struct Settings {
  std::string clavisd = CLAVIS_BENCH_CLAVISD;
  std::string echo = CLAVIS_BENCH_ECHO;
  LoadOptions load;
  double seconds = 5, warmup = 1;
  int channels = 2;
  int batch_items = 100;
  std::vector<std::string> scenarios = {"generate", "decrypt", "batch-decrypt", "reencrypt",
                                        "encrypt"};
  bool quick = false;
  bool pin = true;
  // Appended to clavisd's command line, e.g. "--storage_backend=etcd".
  std::vector<std::string> clavisd_args;
};

// A CA, a server certificate for 127.0.0.1 and a client certificate of
// kPrincipal, under `dir`.
void MakePki(const std::string& dir) {
  auto ca = pki::CreateCertificateAuthority({});
  if (!ca.ok()) DieWith(std::string(ca.status().message()));
  auto server = pki::IssueServerCertificate(*ca, {});
  if (!server.ok()) DieWith(std::string(server.status().message()));
  pki::ClientCertOptions client_options;
  client_options.principal = kPrincipal;
  auto client = pki::IssueClientCertificate(*ca, client_options);
  if (!client.ok()) DieWith(std::string(client.status().message()));
  for (const auto& [pair, prefix] :
       {std::pair{&*ca, "/ca"}, std::pair{&*server, "/server"}, std::pair{&*client, "/client"}}) {
    if (auto s = pki::WriteKeyAndCertificate(*pair, dir + prefix); !s.ok()) {
      DieWith(std::string(s.message()));
    }
  }
}

// `count` connections to 127.0.0.1:`port`: TLS with kPrincipal's client
// certificate from `pki_dir`, or plaintext when `pki_dir` is empty.
std::vector<std::shared_ptr<grpc::Channel>> Channels(const std::string& pki_dir, int port,
                                                     int count) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!pki_dir.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFileOrDie(pki_dir + "/ca.crt");
    ssl.pem_cert_chain = ReadFileOrDie(pki_dir + "/client.crt");
    ssl.pem_private_key = ReadFileOrDie(pki_dir + "/client.key");
    credentials = grpc::SslCredentials(ssl);
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < count; ++i) {
    grpc::ChannelArguments args;
    // A connection of its own per channel, as separate clients would have.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("clavis-bench.channel", i);
    channels.push_back(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), credentials, args));
  }
  return channels;
}

// Production-like (`secure`): TLS with client certificates and the audit
// log on. Otherwise development mode: plaintext, no authentication and no
// audit log (clavisd allows the audit log off only there).
std::unique_ptr<ServerProcess> StartClavisd(const Settings& settings, const std::string& dir,
                                            bool secure, int cpu) {
  server::ServerConfig config;
  config.mutable_rate_limit()->set_disabled(true);
  if (!secure) config.mutable_audit()->set_insecure_disabled(true);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(config, &json);
  const std::string config_file = dir + (secure ? "/clavisd.json" : "/clavisd-dev.json");
  WriteFileOrDie(config_file, json);
  const std::string pki = dir + "/pki";
  std::vector<std::string> argv = {settings.clavisd,
                                   "--config=" + config_file,
                                   "--data_dir=" + dir + (secure ? "/data" : "/data-dev"),
                                   "--listen_address=127.0.0.1:0",
                                   "--port_file=" + dir + "/clavisd.port",
                                   "--log_level=warn"};
  if (secure) {
    for (const std::string& a :
         {"--tls_cert_file=" + pki + "/server.crt", "--tls_key_file=" + pki + "/server.key",
          "--client_ca_file=" + pki + "/ca.crt", std::string("--tenant_admin=") + kPrincipal}) {
      argv.push_back(a);
    }
  } else {
    argv.push_back("--insecure_dev_no_auth");
  }
  argv.insert(argv.end(), settings.clavisd_args.begin(), settings.clavisd_args.end());
  return std::make_unique<ServerProcess>(argv, dir + "/clavisd.port", dir + "/clavisd.log", cpu);
}

std::string Micros(absl::Duration d) {
  return absl::StrCat(static_cast<int64_t>(absl::ToDoubleMicroseconds(d) + 0.5));
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

void PrintHeader() {
  std::printf("%-15s %10s %10s %6s | %7s %7s %8s | %9s %9s %6s\n", "call", "calls/s", "echo",
              "ratio", "p50 us", "p99 us", "p99.9 us", "CPU/call", "echo CPU", "ratio");
}

void PrintRow(const Scenario& scenario, const LoadResult& clavis, const LoadResult& echo) {
  std::printf("%-15s %10.0f %10.0f %6.2f | %7s %7s %8s | %7sus %7sus %6.2f%s\n",
              scenario.name.c_str(), clavis.calls_per_second, echo.calls_per_second,
              Ratio(clavis.calls_per_second, echo.calls_per_second), Micros(clavis.p50).c_str(),
              Micros(clavis.p99).c_str(), Micros(clavis.p999).c_str(),
              Micros(clavis.ServerCpuPerCall()).c_str(), Micros(echo.ServerCpuPerCall()).c_str(),
              Ratio(absl::ToDoubleSeconds(clavis.ServerCpuPerCall()),
                    absl::ToDoubleSeconds(echo.ServerCpuPerCall())),
              clavis.errors + echo.errors > 0
                  ? absl::StrCat("  (", clavis.errors, " errors, echo ", echo.errors, ")").c_str()
                  : "");
  if (scenario.items_per_call > 1) {
    std::printf("%-15s %10.0f items/s (%d per call)\n", "",
                clavis.calls_per_second * scenario.items_per_call, scenario.items_per_call);
  }
  std::fflush(stdout);
}

int Run(const Settings& settings) {
  const bool two_cpus = settings.pin && ::sysconf(_SC_NPROCESSORS_ONLN) >= 2;
  const int server_cpu = two_cpus ? 1 : -1;
  if (two_cpus) PinToCpu(0);
  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("clavis-bench-", ::getpid())).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir + "/pki");
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  MakePki(dir + "/pki");

  LoadOptions load = settings.load;
  load.duration = absl::Seconds(settings.seconds);
  load.warmup = absl::Seconds(settings.warmup);
  std::printf(
      "clavis-bench: %d callers over %d connections, %.1f s per run after %.1f s of warm-up; "
      "servers %s; TLS with client certificates on both\n",
      load.callers, settings.channels, settings.seconds, settings.warmup,
      two_cpus ? "on CPU 1, callers on CPU 0" : "not pinned");

  ServerProcess echo(
      {settings.echo, "--port_file=" + dir + "/echo.port",
       "--tls_cert_file=" + dir + "/pki/server.crt", "--tls_key_file=" + dir + "/pki/server.key",
       "--client_ca_file=" + dir + "/pki/ca.crt"},
      dir + "/echo.port", dir + "/echo.log", server_cpu);
  auto echo_channels = Channels(dir + "/pki", echo.port(), settings.channels);
  auto echo_cpu = [&echo] { return echo.CpuSeconds(); };

  std::unique_ptr<ServerProcess> clavisd = StartClavisd(settings, dir, /*secure=*/true, server_cpu);
  auto channels = Channels(dir + "/pki", clavisd->port(), settings.channels);
  PrepareBenchKey(channels[0], kPrincipal);

  std::printf("\n== production: TLS with client certificates, audit log on (group commit) ==\n");
  PrintHeader();
  struct Peak {
    Scenario scenario;
    double calls_per_second;
  };
  std::map<std::string, double> peak_rates;  // by call
  {
    std::vector<Peak> peaks;
    const std::vector<Scenario> scenarios =
        ClavisScenarios(channels, settings.scenarios, settings.batch_items);
    auto clavis_cpu = [&clavisd] { return clavisd->CpuSeconds(); };
    for (const Scenario& scenario : scenarios) {
      const Scenario echo_like = EchoScenario(echo_channels, scenario);
      const LoadResult echo_result = RunLoad(load, echo_like.call, echo_cpu);
      const LoadResult clavis_result = RunLoad(load, scenario.call, clavis_cpu);
      PrintRow(scenario, clavis_result, echo_result);
      peaks.push_back({scenario, clavis_result.calls_per_second});
      peak_rates[scenario.name] = clavis_result.calls_per_second;
    }

    std::printf("\n== latency at half of the peak rate (paced callers; target p99 < 2 ms) ==\n");
    for (const Peak& peak : peaks) {
      if (peak.scenario.name != "generate" && peak.scenario.name != "decrypt") continue;
      LoadOptions paced = load;
      paced.target_calls_per_second = peak.calls_per_second / 2;
      const LoadResult result = RunLoad(paced, peak.scenario.call, clavis_cpu);
      std::printf("%-15s %8.0f calls/s: p50 %s us, p99 %s us, p99.9 %s us%s\n",
                  peak.scenario.name.c_str(), result.calls_per_second, Micros(result.p50).c_str(),
                  Micros(result.p99).c_str(), Micros(result.p999).c_str(),
                  result.p99 < absl::Milliseconds(2) ? "" : "  (above 2 ms)");
    }
    std::fflush(stdout);
  }
  // Open connections would hold up the servers' graceful stop.
  channels.clear();
  echo_channels.clear();
  const long rss_secure = clavisd->PeakRssBytes();
  clavisd->Stop();
  const long rss_echo = echo.PeakRssBytes();
  echo.Stop();

  std::printf(
      "\n== development mode: plaintext, no authentication, audit log off; echo plaintext too ==\n"
      "   (what TLS, authentication and the audit log cost together)\n");
  ServerProcess plain_echo({settings.echo, "--port_file=" + dir + "/echo.port"}, dir + "/echo.port",
                           dir + "/echo.log", server_cpu);
  auto plain_echo_channels = Channels("", plain_echo.port(), settings.channels);
  auto plain_echo_cpu = [&plain_echo] { return plain_echo.CpuSeconds(); };
  if (!settings.clavisd_args.empty()) {
    // --clavisd_arg may point both runs at one shared store (etcd) that
    // already holds the bench key, wrapped under the first run's root key.
    std::filesystem::create_directories(dir + "/data-dev");
    std::filesystem::permissions(dir + "/data-dev", std::filesystem::perms::owner_all);
    std::filesystem::copy_file(dir + "/data/root.key", dir + "/data-dev/root.key",
                               std::filesystem::copy_options::skip_existing);
  }
  clavisd = StartClavisd(settings, dir, /*secure=*/false, server_cpu);
  channels = Channels("", clavisd->port(), settings.channels);
  PrepareBenchKey(channels[0], /*principal=*/"");
  {
    std::vector<std::string> names;
    for (const std::string& name : settings.scenarios) {
      if (name == "generate" || name == "decrypt") names.push_back(name);
    }
    const std::vector<Scenario> scenarios = ClavisScenarios(channels, names, settings.batch_items);
    auto clavis_cpu = [&clavisd] { return clavisd->CpuSeconds(); };
    PrintHeader();
    for (const Scenario& scenario : scenarios) {
      const Scenario echo_like = EchoScenario(plain_echo_channels, scenario);
      const LoadResult echo_result = RunLoad(load, echo_like.call, plain_echo_cpu);
      const LoadResult clavis_result = RunLoad(load, scenario.call, clavis_cpu);
      PrintRow(scenario, clavis_result, echo_result);
      std::printf("%-15s production / development mode: %.2f of the throughput\n", "",
                  Ratio(peak_rates[scenario.name], clavis_result.calls_per_second));
    }
  }
  std::printf(
      "\npeak RSS: clavisd %.0f MiB (production run), %.0f MiB (development run); "
      "echo %.0f MiB\n",
      rss_secure / 1048576.0, clavisd->PeakRssBytes() / 1048576.0, rss_echo / 1048576.0);
  channels.clear();
  plain_echo_channels.clear();
  clavisd->Stop();
  plain_echo.Stop();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace clavis::bench

int main(int argc, char** argv) {
  clavis::bench::Settings settings;
  CLI::App app{"clavis-bench: clavisd's calls next to a bare gRPC echo server, same run"};
  app.footer(
      "Examples:\n"
      "  clavis-bench                      # every call, 5 s each (about 2 minutes)\n"
      "  clavis-bench --quick              # 1 s each: the CI smoke run\n"
      "  clavis-bench --scenarios generate,decrypt --callers 32 --seconds 10\n"
      "Prints figures and ratios; asserts nothing about speed (bench/load/README.md).");
  app.add_option("--clavisd", settings.clavisd, "clavisd binary")->capture_default_str();
  app.add_option("--echo", settings.echo, "clavis-bench-echo binary")->capture_default_str();
  app.add_option("--callers", settings.load.callers, "concurrent callers")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--channels", settings.channels, "connections the callers share")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--seconds", settings.seconds, "measured seconds per run")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--warmup", settings.warmup, "warm-up seconds before each run")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  app.add_option("--batch", settings.batch_items, "items of one batch-decrypt call")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--scenarios", settings.scenarios,
                 "calls to measure: generate, decrypt, batch-decrypt, reencrypt, encrypt")
      ->delimiter(',');
  app.add_option("--clavisd_arg", settings.clavisd_args,
                 "an argument appended to clavisd's command line (repeatable), e.g. "
                 "--clavisd_arg=--storage_backend=etcd --clavisd_arg=--etcd_endpoints=H:P "
                 "(bench/storage/etcd_bench compares the backends in one run)");
  app.add_flag("--quick", settings.quick, "1 s per run after 0.3 s of warm-up (CI smoke)");
  bool no_pin = false;
  app.add_flag("--no-pin", no_pin, "do not pin the servers and the callers to separate CPUs");
  CLI11_PARSE(app, argc, argv);
  settings.pin = !no_pin;
  if (settings.quick) {
    settings.seconds = 1;
    settings.warmup = 0.3;
  }
  // Not exit(): crypto/openssl_process.h says why.
  clavis::crypto::ExitWithoutLibraryCleanUp(clavis::bench::Run(settings));
}
