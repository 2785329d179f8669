// What the audit log costs: GenerateDataKey throughput of a real clavisd
// (in this process, over loopback gRPC) with the audit log off, on with
// group commit (the default), and on with an fsync per record, measured in
// the same run and reported as ratios to "off" (machines are noisy; ratios
// travel). Goal from the access-control issue: group commit costs at most
// 20% of throughput.
//
//   build/bench/audit_overhead_bench [--seconds 3] [--threads 8]
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "kms/server/server.h"
#include "spdlog/spdlog.h"

namespace {

enum class Audit { kOff, kGroupCommit, kSyncEveryRecord };

const char* Name(Audit a) {
  switch (a) {
    case Audit::kOff:
      return "audit off";
    case Audit::kGroupCommit:
      return "audit on, group commit 100 ms (default)";
    case Audit::kSyncEveryRecord:
      return "audit on, fsync every record";
  }
  return "?";
}

// Calls per second of GenerateDataKey over `threads` connections.
double Measure(Audit audit, const std::string& dir, absl::Duration duration, int threads) {
  std::filesystem::remove_all(dir);
  clavis::server::ServerConfig config;
  config.set_listen_address("127.0.0.1:0");
  config.set_data_dir(dir);
  config.set_create_if_missing(true);
  config.set_insecure_dev_no_auth(true);
  config.set_log_level("warn");
  config.mutable_rate_limit()->set_disabled(true);
  if (audit == Audit::kOff) config.mutable_audit()->set_insecure_disabled(true);
  if (audit == Audit::kSyncEveryRecord) config.mutable_audit()->set_sync_every_record(true);
  auto server = clavis::kms::Server::BuildAndStart(config);
  if (!server.ok()) {
    std::fprintf(stderr, "cannot start clavisd: %s\n",
                 std::string(server.status().message()).c_str());
    std::exit(1);
  }
  const std::string address = absl::StrCat("127.0.0.1:", (*server)->port());
  {
    auto admin = clavis::v1::KeyAdmin::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/bench");
    create.set_key_id("k");
    clavis::v1::Key key;
    if (!admin->CreateKey(&ctx, create, &key).ok()) std::exit(1);
  }
  std::atomic<bool> go{false}, stop{false};
  std::atomic<uint64_t> calls{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      grpc::ChannelArguments args;
      args.SetInt("grpc.channel_id", t);  // one connection per thread
      auto data = clavis::v1::KeyManagement::NewStub(
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
      clavis::v1::GenerateDataKeyRequest r;
      r.set_key("tenants/bench/keys/k");
      (*r.mutable_encryption_context())["customer"] = "42";
      while (!go) std::this_thread::yield();
      for (uint64_t i = 0; !stop; ++i) {
        r.set_segment(absl::StrCat("s", t, "-", i % 64));
        grpc::ClientContext ctx;
        clavis::v1::GenerateDataKeyResponse out;
        if (data->GenerateDataKey(&ctx, r, &out).ok()) calls.fetch_add(1);
      }
    });
  }
  // Warm-up (segment creation, caches), then measure.
  go = true;
  absl::SleepFor(absl::Milliseconds(500));
  const uint64_t start_calls = calls.load();
  const absl::Time start = absl::Now();
  absl::SleepFor(duration);
  const uint64_t done = calls.load() - start_calls;
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  stop = true;
  for (auto& w : workers) w.join();
  (*server)->Shutdown(absl::Seconds(5));
  (*server)->Wait();
  server->reset();
  std::filesystem::remove_all(dir);
  return done / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 3, threads = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--seconds") (void)absl::SimpleAtoi(argv[i + 1], &seconds);
    if (flag == "--threads") (void)absl::SimpleAtoi(argv[i + 1], &threads);
  }
  spdlog::set_level(spdlog::level::warn);
  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("clavis-bench-", ::getpid())).string();
  std::printf("GenerateDataKey over loopback gRPC, %d client threads, %d s per run\n", threads,
              seconds);
  double baseline = 0;
  for (Audit audit : {Audit::kOff, Audit::kGroupCommit, Audit::kSyncEveryRecord}) {
    const double rate = Measure(audit, dir, absl::Seconds(seconds), threads);
    if (audit == Audit::kOff) baseline = rate;
    std::printf("  %-42s %9.0f calls/s   ratio to audit off: %.3f\n", Name(audit), rate,
                baseline > 0 ? rate / baseline : 0.0);
  }
  return 0;
}
