// etcd_bench: the etcd Store backend against RocksDB, same machine, same run
// (issue 10: "measure throughput and latency on etcd against RocksDB and say
// what scales and what does not"). bench/README.md "etcd vs RocksDB" has the
// figures and what they mean.
//
// Backends, all on this machine's disk (the same filesystem), fsync on:
//  - rocksdb: RocksDbStore as clavisd opens it (every write WAL-synced);
//  - etcd-1: one real etcd member on loopback (tests/harness/etcd_process.h);
//  - etcd-3: a three-member cluster on loopback, separate data dirs, so each
//    write is a Raft round trip and an fsync on a quorum of members.
//
// Store level (kms::Store, no gRPC of Clavis's own), each row measured on
// every backend in turn, closed loop (bench/load/load_generator.h):
//  - Get of 1000 stored entries, Put of a new key, and a single-key
//    compare-and-set Commit (each caller updates its own key), at 1, 8 and
//    32 concurrent callers;
//  - a 1000-operation Commit (1000 compares and 1000 puts: a RewrapSegments
//    batch) and a Scan of 1000 entries, one caller; CommitAndPurge (a put
//    and a delete, then the backend's purge: RocksDB flush + compaction,
//    etcd compaction + defragmentation of every member), 5 in a row after
//    an untimed one (its "p99" is the slowest);
//  - Get (one caller) while another thread runs CommitAndPurge back to
//    back: how long a purge holds up reads.
// clavisd level: real clavisd processes in development mode (plaintext, no
// authentication, audit log off, so the store is what differs) on rocksdb,
// etcd-1 and etcd-3, and two replicas sharing etcd-3 with the callers split
// over both: GenerateDataKey of a new segment per call (a store write) and
// Decrypt (the segment key cached: no store access), bench/load/scenarios.h.
// CPU per call of the clavisd processes and of the etcd members is read
// from /proc.
//
//   build/bench/storage/etcd_bench            # full: about 3 minutes
//   build/bench/storage/etcd_bench --quick    # CI smoke: about 15 s
//   flags: --seconds S  --levels 1,8,32  --callers N (clavisd level)
//          --no-store  --no-clavisd
// Prints figures and ratios etcd / RocksDB; asserts nothing about speed.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/load/files.h"
#include "bench/load/load_generator.h"
#include "bench/load/scenarios.h"
#include "bench/load/server_process.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/create_channel.h"
#include "kms/server/config.pb.h"
#include "kms/storage/etcd_store.h"
#include "kms/storage/rocksdb_store.h"
#include "spdlog/spdlog.h"
#include "tests/harness/etcd_process.h"

namespace clavis::bench {
namespace {

using kms::Store;
using kms::WriteBatch;

constexpr size_t kValueBytes = 256;  // about a segment record
constexpr int kBatchEntries = 1000;  // RewrapSegments' default batch_size
constexpr char kEtcdStorePrefix[] = "/bench-store/";

struct Settings {
  std::string clavisd = CLAVIS_BENCH_CLAVISD;
  bool quick = false;
  bool store = true;
  bool server = true;
  double seconds = 2, warmup = 0.5;  // store level, per row and backend
  double purge_seconds = 1.5;        // reads during purges
  int purges = 5;                    // CommitAndPurge row: timed purges per backend
  // clavisd level: alternating rounds of each set-up.
  int server_rounds = 4;
  double server_seconds = 1.5, server_warmup = 0.5;
  int callers = 16;
  std::vector<int> levels = {1, 8, 32};
};

std::string Value(uint64_t n) {
  std::string value = absl::StrCat("v", n, "-");
  value.resize(kValueBytes, 'x');
  return value;
}

std::string BatchKey(int i) { return absl::StrCat("batch/", 10000 + i); }

// The members of the etcd cluster in `cluster_dir`: this process's children
// named etcd whose command line names that directory.
std::vector<pid_t> EtcdPids(const std::string& cluster_dir) {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    const std::string stat = ReadFileIfPresent(absl::StrCat("/proc/", pid, "/stat"));
    const size_t open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    if (stat.substr(open + 1, close - open - 1) != "etcd") continue;
    std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
    pid_t parent = 0;
    if (fields.size() > 1 && absl::SimpleAtoi(fields[1], &parent) && parent == ::getpid() &&
        ReadFileIfPresent(absl::StrCat("/proc/", pid, "/cmdline")).find(cluster_dir) !=
            std::string::npos) {
      pids.push_back(pid);
    }
  }
  return pids;
}

double CpuSecondsOfAll(const std::vector<pid_t>& pids) {
  double total = 0;
  for (pid_t pid : pids) total += CpuSecondsOf(pid);
  return total;
}

std::string LoadAverage() {
  return std::string(absl::StripAsciiWhitespace(ReadFileIfPresent("/proc/loadavg")));
}

// One backend under measurement, with the state its operations keep.
struct Backend {
  std::string name;
  std::unique_ptr<Store> store;
  std::vector<pid_t> etcd_pids;  // empty for RocksDB
  std::atomic<uint64_t> next{0};
  // Current value of each compare-and-set key ("cas/<level>/<caller>"), and
  // of the batch entries.
  std::vector<std::string> cas_values;
  std::vector<std::string> batch_values;
};

void Check(const absl::Status& status, const std::string& what) {
  if (!status.ok()) DieWith(absl::StrCat(what, ": ", status.ToString()));
}

void Populate(Backend& b) {
  WriteBatch batch;
  b.batch_values.clear();
  for (int i = 0; i < kBatchEntries; ++i) {
    b.batch_values.push_back(Value(b.next++));
    batch.Put(BatchKey(i), b.batch_values.back());
  }
  Check(b.store->Commit(batch), b.name + ": populating");
  Check(b.store->Put("victim/0", Value(0)), b.name + ": populating");
}

// The operations, as calls of RunLoad: `caller` is 0..callers-1.
std::function<bool(int)> Operation(Backend& b, const std::string& op, int callers) {
  if (op == "Get") {
    return [&b](int caller) {
      static thread_local uint64_t position = 0;
      const int i = static_cast<int>((position++ * 7919 + caller * 131) % kBatchEntries);
      auto value = b.store->Get(BatchKey(i));
      return value.ok() && value->has_value();
    };
  }
  if (op == "Put") {
    return [&b](int caller) {
      const uint64_t n = b.next++;
      return b.store->Put(absl::StrCat("put/", caller, "/", n), Value(n)).ok();
    };
  }
  if (op == "CAS Commit") {
    b.cas_values.assign(callers, "");
    for (int c = 0; c < callers; ++c) {
      b.cas_values[c] = Value(b.next++);
      Check(b.store->Put(absl::StrCat("cas/", callers, "/", c), b.cas_values[c]), b.name);
    }
    return [&b, callers](int caller) {
      const std::string key = absl::StrCat("cas/", callers, "/", caller);
      std::string value = Value(b.next++);
      WriteBatch batch;
      batch.Expect(key, b.cas_values[caller]).Put(key, value);
      if (!b.store->Commit(batch).ok()) return false;
      b.cas_values[caller] = std::move(value);
      return true;
    };
  }
  if (op == "Commit 1000") {
    return [&b](int) {
      WriteBatch batch;
      std::vector<std::string> values;
      for (int i = 0; i < kBatchEntries; ++i) {
        values.push_back(Value(b.next++));
        batch.Expect(BatchKey(i), b.batch_values[i]).Put(BatchKey(i), values.back());
      }
      if (!b.store->Commit(batch).ok()) return false;
      b.batch_values = std::move(values);
      return true;
    };
  }
  if (op == "Scan 1000") {
    return [&b](int) {
      auto rows = b.store->Scan("batch/", "", 0);
      return rows.ok() && rows->size() == static_cast<size_t>(kBatchEntries);
    };
  }
  if (op == "CommitAndPurge") {
    return [&b](int) {
      // A destruction: one record replaced, the old one purged.
      static thread_local uint64_t victim = 0;
      WriteBatch batch;
      batch.Delete(absl::StrCat("victim/", victim)).Put(absl::StrCat("victim/", victim + 1), "x");
      ++victim;
      return b.store->CommitAndPurge(batch, {}).ok();
    };
  }
  DieWith("unknown operation " + op);
}

std::string Ms(absl::Duration d) {
  const double ms = absl::ToDoubleMilliseconds(d);
  return ms < 10 ? absl::StrFormat("%.2f", ms) : absl::StrFormat("%.0f", ms);
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

void PrintStoreHeader(const std::vector<std::unique_ptr<Backend>>& backends) {
  std::printf("%-16s %3s", "operation", "n");
  for (const auto& b : backends) {
    std::printf(" | %-7s %8s %7s %7s", b->name.c_str(), "ops/s", "p50 ms", "p99 ms");
    if (b != backends.front()) std::printf(" %6s", "ratio");
  }
  std::printf("\n");
}

void PrintStoreRow(const std::string& op, int callers,
                   const std::vector<std::unique_ptr<Backend>>& backends,
                   const std::vector<LoadResult>& results) {
  std::printf("%-16s %3d", op.c_str(), callers);
  int64_t errors = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    const LoadResult& r = results[i];
    std::printf(" | %-7s %8.0f %7s %7s", "", r.calls_per_second, Ms(r.p50).c_str(),
                Ms(r.p99).c_str());
    if (i > 0) {
      std::printf(" %6.3f", Ratio(r.calls_per_second, results[0].calls_per_second));
    }
    errors += r.errors;
  }
  if (errors > 0) std::printf("  [%lld failed]", static_cast<long long>(errors));
  std::printf("\n");
  std::fflush(stdout);
}

LoadOptions Load(int callers, double warmup, double seconds) {
  LoadOptions load;
  load.callers = callers;
  load.warmup = absl::Seconds(warmup);
  load.duration = absl::Seconds(seconds);
  return load;
}

double NoCpu() { return 0; }

// `count` calls of `op` one after another, after one untimed call (the
// first purge also drops the history the earlier rows left). p99 is the
// slowest call.
LoadResult Sequential(const std::function<bool(int)>& op, int count) {
  op(0);
  std::vector<absl::Duration> times;
  LoadResult result;
  const absl::Time start = absl::Now();
  for (int i = 0; i < count; ++i) {
    const absl::Time began = absl::Now();
    if (!op(0)) {
      ++result.errors;
      continue;
    }
    times.push_back(absl::Now() - began);
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.calls = static_cast<int64_t>(times.size());
  result.calls_per_second = result.seconds > 0 ? result.calls / result.seconds : 0;
  std::sort(times.begin(), times.end());
  if (!times.empty()) {
    result.p50 = times[times.size() / 2];
    result.p99 = times.back();
  }
  return result;
}

void StoreLevel(const Settings& settings, const std::string& dir,
                const std::vector<const testing::EtcdCluster*>& clusters) {
  std::vector<std::unique_ptr<Backend>> backends;
  {
    auto rocksdb = kms::RocksDbStore::Open({dir + "/rocksdb", true});
    if (!rocksdb.ok()) DieWith(std::string(rocksdb.status().message()));
    backends.push_back(std::make_unique<Backend>());
    backends.back()->name = "rocksdb";
    backends.back()->store = *std::move(rocksdb);
  }
  for (const testing::EtcdCluster* cluster : clusters) {
    kms::EtcdStoreOptions options;
    options.endpoints = cluster->endpoints();
    options.key_prefix = kEtcdStorePrefix;
    auto etcd = kms::EtcdStore::New(options);
    if (!etcd.ok()) DieWith(std::string(etcd.status().message()));
    auto version = (*etcd)->CheckReachable();
    if (!version.ok()) DieWith(std::string(version.status().message()));
    backends.push_back(std::make_unique<Backend>());
    backends.back()->name = absl::StrCat("etcd-", cluster->size());
    backends.back()->store = *std::move(etcd);
    backends.back()->etcd_pids = EtcdPids(cluster->dir());
  }
  for (auto& b : backends) Populate(*b);

  std::printf(
      "\n== store level: kms::Store calls, closed loop, %.1f s per row and backend after %.1f s "
      "of warm-up; ratio = etcd / rocksdb ops/s ==\n",
      settings.seconds, settings.warmup);
  PrintStoreHeader(backends);
  auto row = [&](const std::string& op, int callers, double warmup, double seconds) {
    std::vector<LoadResult> results;
    for (auto& b : backends) {
      results.push_back(RunLoad(Load(callers, warmup, seconds), Operation(*b, op, callers), NoCpu));
    }
    PrintStoreRow(op, callers, backends, results);
    return results;
  };
  for (const std::string op : {"Get", "Put", "CAS Commit"}) {
    for (int level : settings.levels) row(op, level, settings.warmup, settings.seconds);
  }
  const std::vector<LoadResult> batches = row("Commit 1000", 1, settings.warmup, settings.seconds);
  row("Scan 1000", 1, settings.warmup, settings.seconds);
  {
    // A purge can take longer than a quick run's window: a fixed number.
    std::vector<LoadResult> results;
    for (auto& b : backends) {
      results.push_back(Sequential(Operation(*b, "CommitAndPurge", 1), settings.purges));
    }
    PrintStoreRow("CommitAndPurge", 1, backends, results);
  }

  std::printf("%-20s", "Commit 1000:");
  for (size_t i = 0; i < backends.size(); ++i) {
    const double per_second = batches[i].calls_per_second * kBatchEntries;
    std::printf("  %s %.0f entries/s (1M segments: %.0f s)", backends[i]->name.c_str(), per_second,
                per_second > 0 ? 1e6 / per_second : 0);
  }
  std::printf("\n");

  // Reads while purges run back to back in another thread.
  std::printf("%-20s", "Get during purges:");
  for (auto& b : backends) {
    std::atomic<bool> stop{false};
    std::atomic<int> purged{0};
    const std::function<bool(int)> purge = Operation(*b, "CommitAndPurge", 1);
    std::thread purger([&] {
      while (!stop) {
        if (purge(0)) ++purged;
      }
    });
    const LoadResult gets =
        RunLoad(Load(1, 0.1, std::max(settings.seconds, settings.purge_seconds)),
                Operation(*b, "Get", 1), NoCpu);
    stop = true;
    purger.join();
    std::printf("  %s p50 %s p99 %s p99.9 %s ms (%d purges)", b->name.c_str(), Ms(gets.p50).c_str(),
                Ms(gets.p99).c_str(), Ms(gets.p999).c_str(), purged.load());
  }
  std::printf("\n");
  for (auto& b : backends) {
    auto rows = b->store->Scan("", "", 0);
    std::printf("%s: %zu entries at the end\n", b->name.c_str(), rows.ok() ? rows->size() : 0);
  }
  std::fflush(stdout);
}

// clavisd level.
struct ServerSetup {
  std::string name;
  const testing::EtcdCluster* etcd = nullptr;  // nullptr: RocksDB
  int replicas = 1;
};

// One set-up of the clavisd level, started once; its figures summed over
// the rounds.
struct Running {
  const ServerSetup* setup = nullptr;
  std::vector<std::unique_ptr<ServerProcess>> replicas;
  std::vector<pid_t> etcd_pids;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<Scenario> scenarios;
  struct Sum {
    int64_t calls = 0, errors = 0;
    double seconds = 0, cpu = 0, etcd_cpu = 0;
    std::vector<absl::Duration> p50, p99;  // per round
  };
  std::vector<Sum> sums;  // by scenario
};

absl::Duration Median(std::vector<absl::Duration> values) {
  if (values.empty()) return absl::ZeroDuration();
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}
std::unique_ptr<ServerProcess> StartClavisd(const Settings& settings, const std::string& dir,
                                            const std::vector<std::string>& extra) {
  server::ServerConfig config;
  config.mutable_rate_limit()->set_disabled(true);
  config.mutable_audit()->set_insecure_disabled(true);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(config, &json);
  WriteFileOrDie(dir + "/clavisd.json", json);
  std::vector<std::string> argv = {settings.clavisd,
                                   "--config=" + dir + "/clavisd.json",
                                   "--data_dir=" + dir,
                                   "--listen_address=127.0.0.1:0",
                                   "--port_file=" + dir + "/clavisd.port",
                                   "--log_level=warn",
                                   "--insecure_dev_no_auth"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<ServerProcess>(argv, dir + "/clavisd.port", dir + "/clavisd.log", -1);
}

void ServerLevel(const Settings& settings, const std::string& dir,
                 const std::vector<ServerSetup>& setups) {
  std::printf(
      "\n== clavisd level: real clavisd processes, development mode (plaintext, no "
      "authentication, audit log off), %d callers split over the replicas; %d alternating "
      "rounds of %.1f s (after %.1f s of warm-up each) per figure; generate-new-segment = "
      "GenerateDataKey of a new segment (a store write), decrypt = Decrypt with the segment key "
      "cached; p50/p99: median over the rounds; CPU: per call, all replicas / all etcd members "
      "==\n",
      settings.callers, settings.server_rounds, settings.server_seconds, settings.server_warmup);
  // Every set-up runs all along (idle while another is measured), so the
  // rounds can alternate between them.
  std::vector<Running> running(setups.size());
  for (size_t index = 0; index < setups.size(); ++index) {
    const ServerSetup& setup = setups[index];
    Running& run = running[index];
    run.setup = &setup;
    for (int r = 0; r < setup.replicas; ++r) {
      const std::string data = absl::StrCat(dir, "/clavisd-", index, "-", r);
      std::filesystem::create_directories(data);
      std::filesystem::permissions(data, std::filesystem::perms::owner_all);
      std::vector<std::string> extra;
      if (setup.etcd != nullptr) {
        extra = {"--storage_backend=etcd", "--etcd_endpoints=" + setup.etcd->endpoints_flag(),
                 absl::StrCat("--etcd_key_prefix=/clavis-bench-", index, "/")};
        run.etcd_pids = EtcdPids(setup.etcd->dir());
      }
      if (r > 0) {
        // Replicas share the root key (tests/integration/etcd_replicas_test.cc).
        std::filesystem::copy_file(absl::StrCat(dir, "/clavisd-", index, "-0/root.key"),
                                   data + "/root.key");
      }
      run.replicas.push_back(StartClavisd(settings, data, extra));
    }
    // Two connections per replica; caller c uses channels[c % size], so
    // the callers are split evenly over the replicas.
    for (int c = 0; c < 2 * setup.replicas; ++c) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("etcd-bench.channel", c);
      run.channels.push_back(grpc::CreateCustomChannel(
          absl::StrCat("127.0.0.1:", run.replicas[c % setup.replicas]->port()),
          grpc::InsecureChannelCredentials(), args));
    }
    PrepareBenchKey(run.channels[0], "");
    run.scenarios = ClavisScenarios(run.channels, {"generate-new-segment", "decrypt"}, 1);
    run.sums.resize(run.scenarios.size());
  }
  for (int round = 0; round < settings.server_rounds; ++round) {
    for (size_t i = 0; i < running[0].scenarios.size(); ++i) {
      for (Running& run : running) {
        std::vector<double> etcd_cpu;
        const LoadResult r =
            RunLoad(Load(settings.callers, settings.server_warmup, settings.server_seconds),
                    run.scenarios[i].call, [&] {
                      etcd_cpu.push_back(CpuSecondsOfAll(run.etcd_pids));
                      double total = 0;
                      for (const auto& p : run.replicas) total += p->CpuSeconds();
                      return total;
                    });
        Running::Sum& sum = run.sums[i];
        sum.calls += r.calls;
        sum.errors += r.errors;
        sum.seconds += r.seconds;
        sum.cpu += r.server_cpu_seconds;
        if (etcd_cpu.size() == 2) sum.etcd_cpu += etcd_cpu[1] - etcd_cpu[0];
        sum.p50.push_back(r.p50);
        sum.p99.push_back(r.p99);
      }
    }
  }
  std::printf("%-19s %-21s %8s %7s %7s %6s | %11s %11s\n", "store", "call", "calls/s", "p50 ms",
              "p99 ms", "ratio", "clavisd CPU", "etcd CPU");
  for (size_t i = 0; i < running[0].scenarios.size(); ++i) {
    const Running::Sum& base = running[0].sums[i];
    const double base_rate = base.seconds > 0 ? base.calls / base.seconds : 0;
    for (const Running& run : running) {
      const Running::Sum& sum = run.sums[i];
      const double rate = sum.seconds > 0 ? sum.calls / sum.seconds : 0;
      const double calls = std::max<double>(1, sum.calls);
      std::printf("%-19s %-21s %8.0f %7s %7s %6.3f | %8.0f us %8.0f us%s\n",
                  run.setup->name.c_str(), run.scenarios[i].name.c_str(), rate,
                  Ms(Median(sum.p50)).c_str(), Ms(Median(sum.p99)).c_str(), Ratio(rate, base_rate),
                  sum.cpu * 1e6 / calls, sum.etcd_cpu * 1e6 / calls,
                  sum.errors > 0 ? absl::StrCat("  [", sum.errors, " failed]").c_str() : "");
    }
  }
  std::fflush(stdout);
  // Open connections would hold up the servers' graceful stop.
  for (Running& run : running) {
    run.scenarios.clear();
    run.channels.clear();
  }
  for (Running& run : running) {
    for (auto& p : run.replicas) p->Stop();
  }
}

// A running cluster of `members` members. The harness picks its ports by
// binding port 0; on a busy machine two picks can collide, so it is tried
// three times. nullptr (with a message) if it does not start: the caller
// returns, so the clusters already started are stopped (DieWith would leave
// their members running).
std::unique_ptr<testing::EtcdCluster> StartEtcd(int members) {
  absl::Status started;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto cluster =
        std::make_unique<testing::EtcdCluster>(testing::EtcdClusterOptions{members, {}, false});
    started = cluster->Start();
    if (started.ok()) return cluster;
  }
  std::fprintf(stderr, "etcd_bench: etcd with %d members: %s\n", members,
               std::string(started.message()).c_str());
  return nullptr;
}

int Run(const Settings& settings) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / absl::StrCat("clavis-etcd-bench-", ::getpid()))
          .string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all);
  const absl::Time began = absl::Now();
  std::printf(
      "etcd_bench: rocksdb, etcd 1 member, etcd 3 members (loopback), all under %s, "
      "%ld CPUs, load average %s\n",
      std::filesystem::temp_directory_path().c_str(), ::sysconf(_SC_NPROCESSORS_ONLN),
      LoadAverage().c_str());
  const std::unique_ptr<testing::EtcdCluster> one = StartEtcd(1);
  const std::unique_ptr<testing::EtcdCluster> three = one != nullptr ? StartEtcd(3) : nullptr;
  if (three == nullptr) {
    std::filesystem::remove_all(dir);
    return 1;
  }
  if (settings.store) StoreLevel(settings, dir, {one.get(), three.get()});
  if (settings.server) {
    ServerLevel(settings, dir,
                {{"rocksdb", nullptr, 1},
                 {"etcd-1", one.get(), 1},
                 {"etcd-3", three.get(), 1},
                 {"etcd-3, 2 replicas", three.get(), 2}});
  }
  std::printf("\n%.0f s in all; load average at the end %s\n",
              absl::ToDoubleSeconds(absl::Now() - began), LoadAverage().c_str());
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace clavis::bench

int main(int argc, char** argv) {
  clavis::bench::Settings settings;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--quick") {
      settings.quick = true;
    } else if (flag == "--no-store") {
      settings.store = false;
    } else if (flag == "--no-clavisd") {
      settings.server = false;
    } else if (flag == "--seconds" && has_value) {
      (void)absl::SimpleAtod(argv[++i], &settings.seconds);
    } else if (flag == "--callers" && has_value) {
      (void)absl::SimpleAtoi(argv[++i], &settings.callers);
    } else if (flag == "--levels" && has_value) {
      settings.levels.clear();
      for (absl::string_view part : absl::StrSplit(argv[++i], ',')) {
        int level = 0;
        if (absl::SimpleAtoi(part, &level) && level > 0) settings.levels.push_back(level);
      }
    } else {
      clavis::bench::DieWith(
          "usage: etcd_bench [--quick] [--seconds S] [--levels 1,8,32] [--callers N] "
          "[--no-store] [--no-clavisd]");
    }
  }
  if (settings.quick) {
    settings.seconds = 0.1;
    settings.warmup = 0.02;
    settings.purge_seconds = 0.5;
    settings.purges = 2;
    settings.server_rounds = 1;
    settings.server_seconds = 0.3;
    settings.server_warmup = 0.1;
    settings.callers = 8;
  }
  spdlog::set_level(spdlog::level::err);
  return clavis::bench::Run(settings);
}
