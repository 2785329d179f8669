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
#include "bench/in_process_clavisd.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "grpcpp/create_channel.h"
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
double Measure(Audit audit, absl::Duration duration, int threads) {
  clavis::bench::InProcessClavisd clavisd([audit](clavis::server::ServerConfig& config) {
    if (audit == Audit::kOff) config.mutable_audit()->set_insecure_disabled(true);
    if (audit == Audit::kSyncEveryRecord) config.mutable_audit()->set_sync_every_record(true);
  });
  const std::string& address = clavisd.address();
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
      r.set_key(clavis::bench::kBenchKey);
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
  std::printf("GenerateDataKey over loopback gRPC, %d client threads, %d s per run\n", threads,
              seconds);
  double baseline = 0;
  for (Audit audit : {Audit::kOff, Audit::kGroupCommit, Audit::kSyncEveryRecord}) {
    const double rate = Measure(audit, absl::Seconds(seconds), threads);
    if (audit == Audit::kOff) baseline = rate;
    std::printf("  %-42s %9.0f calls/s   ratio to audit off: %.3f\n", Name(audit), rate,
                baseline > 0 ? rate / baseline : 0.0);
  }
  return 0;
}
