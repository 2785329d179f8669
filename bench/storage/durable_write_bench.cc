// Durable writes of clavisd against RocksDB's own synced writes, same disk,
// same run (performance issue: "durable key creation at least 70% of
// RocksDB's own synced-write rate at the same concurrency").
//
// For each concurrency level (1, 8 and 32 callers):
//  - baseline: a bare RocksDB in a temp dir next to clavisd's data dir (same
//    filesystem), N threads doing Put with WriteOptions::sync of values as
//    large as a key record (measured from a real clavisd store first);
//  - CreateKey: the real RPC over loopback gRPC against an in-process
//    clavisd (audit log on with its defaults, as in production), one
//    connection per caller, on a fresh data dir;
//  - RotateKey: the same server restarted on that data dir, each caller
//    rotating the keys it created, round-robin (records stay at two or three
//    versions), against a baseline with values as large as a key record with
//    two versions.
// The disk of a shared VM changes speed from one second to the next, so the
// baseline and clavisd alternate in short rounds (0.5 s each) and the rates
// are totals over all rounds.
// Writes per WAL sync (group commit) come from RocksDB's statistics tickers:
// the baseline reads them directly, clavisd's store logs them when it closes
// (RocksDbStore's destructor), which this program captures. CPU time per
// call is this process's (clients and server, user and system).
//
//   build-e2e/bench/storage/durable_write_bench             # 10 rounds of 0.5 s per figure
//   build-e2e/bench/storage/durable_write_bench --quick     # 2 rounds: CI smoke
//   flags: --rounds N  --levels 1,8,32  --dir /tmp  --breakdown
// --breakdown adds, per level, the same creations without gRPC
// (KeyLifecycle::CreateKey on a RocksDbStore), the bare store write they make
// (RocksDbStore::Commit with an "absent" precondition) and the RPC floor (a
// GetKey, which writes nothing). Prints figures; asserts nothing about speed.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/keys/key_repository.h"
#include "kms/root/key_file_provider.h"
#include "kms/server/server.h"
#include "kms/storage/rocksdb_store.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/statistics.h"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

using clavis::kms::RocksDbWriteStats;
using clavis::v1::KeyAdmin;

constexpr absl::Duration kRound = absl::Milliseconds(500);
constexpr absl::Duration kWarmup = absl::Milliseconds(300);

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "durable_write_bench: %s\n", what.c_str());
  std::exit(1);
}

// Keeps the write statistics RocksDbStore logs when it closes:
// "RocksDB store <path>: <W> writes in <S> WAL syncs since open (...)".
class StoreStatsSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  RocksDbWriteStats Take() {
    std::lock_guard<std::mutex> lock(mutex_);
    RocksDbWriteStats out = last_;
    last_ = {};
    return out;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string text(msg.payload.data(), msg.payload.size());
    if (text.rfind("RocksDB store ", 0) != 0) return;
    const size_t colon = text.find(": ");
    if (colon == std::string::npos) return;
    std::vector<std::string> words = absl::StrSplit(text.substr(colon + 2), ' ');
    if (words.size() < 6 || words[1] != "writes" || words[4] != "WAL") return;
    RocksDbWriteStats stats;
    if (absl::SimpleAtoi(words[0], &stats.writes) && absl::SimpleAtoi(words[3], &stats.wal_syncs)) {
      last_ = stats;
    }
  }
  void flush_() override {}

 private:
  RocksDbWriteStats last_;
};

std::shared_ptr<StoreStatsSink> InstallLogger() {
  auto capture = std::make_shared<StoreStatsSink>();
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  // clavisd's warnings about its development mode would only repeat here.
  console->set_level(spdlog::level::err);
  auto logger = std::make_shared<spdlog::logger>(
      "bench", spdlog::sinks_init_list{std::static_pointer_cast<spdlog::sinks::sink>(capture),
                                       std::static_pointer_cast<spdlog::sinks::sink>(console)});
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);
  return capture;
}

double PerSync(const RocksDbWriteStats& s) {
  return s.wal_syncs == 0 ? 0.0 : static_cast<double>(s.writes) / s.wal_syncs;
}

// A development-mode clavisd in this process (loopback gRPC, no
// authentication, no rate limit, audit log on with its defaults) on a data
// dir that outlives it, so it can be restarted on the same store
// (bench/in_process_clavisd.h deletes its dir when it stops).
class Clavisd {
 public:
  explicit Clavisd(std::string dir) : dir_(std::move(dir)) {}
  ~Clavisd() {
    if (server_ != nullptr) Stop();
  }

  void Start() {
    clavis::server::ServerConfig config;
    config.set_listen_address("127.0.0.1:0");
    config.set_data_dir(dir_);
    config.set_create_if_missing(true);
    config.set_insecure_dev_no_auth(true);
    config.set_log_level("warn");  // nothing logged per call; raised in Stop
    config.mutable_rate_limit()->set_disabled(true);
    auto server = clavis::kms::Server::BuildAndStart(config);
    if (!server.ok()) Die(absl::StrCat("cannot start clavisd: ", server.status().message()));
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  // Stops the server and returns its store's write statistics since Start.
  RocksDbWriteStats Stop(const std::shared_ptr<StoreStatsSink>& stats = nullptr) {
    if (stats != nullptr) stats->Take();
    spdlog::set_level(spdlog::level::info);
    server_->Shutdown(absl::Seconds(5));
    server_->Wait();
    server_.reset();
    spdlog::set_level(spdlog::level::warn);
    return stats != nullptr ? stats->Take() : RocksDbWriteStats();
  }

  const std::string& address() const { return address_; }

 private:
  const std::string dir_;
  std::string address_;
  std::unique_ptr<clavis::kms::Server> server_;
};

std::unique_ptr<KeyAdmin::Stub> AdminStub(const std::string& address, int connection) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.channel_id", connection);  // one connection per caller
  return KeyAdmin::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

std::vector<std::unique_ptr<KeyAdmin::Stub>> AdminStubs(const std::string& address, int n) {
  std::vector<std::unique_ptr<KeyAdmin::Stub>> stubs;
  for (int t = 0; t < n; ++t) stubs.push_back(AdminStub(address, t));
  return stubs;
}

// CPU seconds (user + system) this process has used so far, all threads.
double ProcessCpuSeconds() {
  rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Operations, measured time and CPU time, summed over rounds.
struct Tally {
  uint64_t ops = 0;
  uint64_t failures = 0;
  double seconds = 0;
  double cpu_seconds = 0;
  RocksDbWriteStats writes;  // of the store written to

  double rate() const { return seconds > 0 ? ops / seconds : 0; }
  double cpu_us() const { return ops > 0 ? cpu_seconds * 1e6 / ops : 0; }
};

// Runs `op(thread)` in `threads` threads for `warmup` (not counted), then
// for `measure`, and adds the successful operations of the measured part to
// `tally`. `op` returns false for a failed operation.
template <typename Op>
void RunTimed(int threads, absl::Duration warmup, absl::Duration measure, Tally* tally,
              const Op& op) {
  std::atomic<bool> go{false}, stop{false};
  std::atomic<uint64_t> done{0}, failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      while (!stop) {
        if (op(t)) {
          done.fetch_add(1, std::memory_order_relaxed);
        } else {
          failed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  go = true;
  absl::SleepFor(warmup);
  const uint64_t start_count = done.load();
  const absl::Time start = absl::Now();
  const double start_cpu = ProcessCpuSeconds();
  absl::SleepFor(measure);
  tally->ops += done.load() - start_count;
  tally->seconds += absl::ToDoubleSeconds(absl::Now() - start);
  tally->cpu_seconds += ProcessCpuSeconds() - start_cpu;
  stop = true;
  for (auto& w : workers) w.join();
  tally->failures += failed.load();
}

// The baseline: a bare RocksDB (defaults; compression off, as in clavisd's
// store) with statistics, written to by `threads` threads with synced Puts.
class Baseline {
 public:
  explicit Baseline(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::remove_all(dir_);
    options_.create_if_missing = true;
    options_.compression = rocksdb::kNoCompression;
    options_.statistics = rocksdb::CreateDBStatistics();
    options_.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options_, dir_, &raw);
    if (!s.ok()) Die("baseline RocksDB: " + s.ToString());
    db_.reset(raw);
  }
  ~Baseline() {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Run(int threads, size_t value_size, absl::Duration warmup, Tally* tally) {
    std::string value(value_size, '\0');
    for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>((i * 131 + 7) & 0xff);
    const RocksDbWriteStats before = Stats();
    RunTimed(threads, warmup, kRound, tally, [&](int t) {
      rocksdb::WriteOptions write_options;
      write_options.sync = true;
      const std::string key =
          absl::StrCat(std::string("k\0bench\0", 8), "t", t, "n", next_.fetch_add(1));
      return db_->Put(write_options, key, value).ok();
    });
    const RocksDbWriteStats after = Stats();
    tally->writes.writes += after.writes - before.writes;
    tally->writes.wal_syncs += after.wal_syncs - before.wal_syncs;
  }

 private:
  RocksDbWriteStats Stats() const {
    RocksDbWriteStats s;
    s.writes = options_.statistics->getTickerCount(rocksdb::WRITE_DONE_BY_SELF) +
               options_.statistics->getTickerCount(rocksdb::WRITE_DONE_BY_OTHER);
    s.wal_syncs = options_.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED);
    return s;
  }

  const std::string dir_;
  rocksdb::Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::atomic<uint64_t> next_{0};
};

std::string KeyId(int level, int thread, uint64_t i) {
  return absl::StrCat("c", level, "-t", thread, "-", i);
}

// Average size of the key records stored under tenants/bench in `dir`.
size_t AverageKeyRecordSize(const std::string& dir) {
  auto store = clavis::kms::RocksDbStore::Open({dir + "/db", false});
  if (!store.ok()) Die(absl::StrCat("reading the key records: ", store.status().message()));
  auto rows = (*store)->Scan(std::string("k\0bench\0", 8), "", 0);
  if (!rows.ok() || rows->empty()) Die("no key records found");
  size_t total = 0;
  for (const auto& row : *rows) total += row.value.size();
  return total / rows->size();
}

struct RecordSizes {
  size_t created = 0;
  size_t rotated_once = 0;
};

// Sizes of the key records clavisd really writes, read from its store.
RecordSizes MeasureRecordSizes(const std::string& dir) {
  std::filesystem::remove_all(dir);
  RecordSizes sizes;
  Clavisd clavisd(dir);
  clavisd.Start();
  auto admin = AdminStub(clavisd.address(), 0);
  for (int i = 0; i < 4; ++i) {
    grpc::ClientContext ctx;
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/bench");
    create.set_key_id(KeyId(32, 31, 100000 + i));
    clavis::v1::Key key;
    if (!admin->CreateKey(&ctx, create, &key).ok()) Die("CreateKey failed");
  }
  admin.reset();
  clavisd.Stop();
  sizes.created = AverageKeyRecordSize(dir);
  clavisd.Start();
  admin = AdminStub(clavisd.address(), 0);
  for (int i = 0; i < 4; ++i) {
    grpc::ClientContext ctx;
    clavis::v1::RotateKeyRequest rotate;
    rotate.set_name("tenants/bench/keys/" + KeyId(32, 31, 100000 + i));
    clavis::v1::Key key;
    if (!admin->RotateKey(&ctx, rotate, &key).ok()) Die("RotateKey failed");
  }
  admin.reset();
  clavisd.Stop();
  sizes.rotated_once = AverageKeyRecordSize(dir);
  std::filesystem::remove_all(dir);
  return sizes;
}

struct LevelResults {
  Tally create, base_create, rotate, base_rotate;
};

// One concurrency level: CreateKey rounds alternating with baseline rounds,
// then (clavisd restarted on the same store) RotateKey rounds alternating
// with baseline rounds.
LevelResults MeasureLevel(const std::string& prefix, int threads, const RecordSizes& sizes,
                          int rounds, const std::shared_ptr<StoreStatsSink>& stats) {
  LevelResults out;
  const std::string dir = prefix + "-clavisd";
  std::filesystem::remove_all(dir);
  Baseline baseline(prefix + "-rocksdb");
  // The keys each caller created: it rotates only its own, so rotations do
  // not contend on one record.
  std::vector<std::vector<std::string>> created(threads);
  Clavisd clavisd(dir);
  clavisd.Start();
  auto stubs = AdminStubs(clavisd.address(), threads);
  std::vector<uint64_t> next(threads, 0);
  for (int r = 0; r < rounds; ++r) {
    const absl::Duration warmup = r == 0 ? kWarmup : absl::ZeroDuration();
    baseline.Run(threads, sizes.created, warmup, &out.base_create);
    RunTimed(threads, warmup, kRound, &out.create, [&](int t) {
      grpc::ClientContext ctx;
      clavis::v1::CreateKeyRequest request;
      request.set_parent("tenants/bench");
      request.set_key_id(KeyId(threads, t, next[t]++));
      clavis::v1::Key key;
      if (!stubs[t]->CreateKey(&ctx, request, &key).ok()) return false;
      created[t].push_back(key.name());
      return true;
    });
  }
  stubs.clear();
  out.create.writes = clavisd.Stop(stats);

  clavisd.Start();
  stubs = AdminStubs(clavisd.address(), threads);
  std::fill(next.begin(), next.end(), 0);
  for (int r = 0; r < rounds; ++r) {
    const absl::Duration warmup = r == 0 ? kWarmup : absl::ZeroDuration();
    baseline.Run(threads, sizes.rotated_once, warmup, &out.base_rotate);
    RunTimed(threads, warmup, kRound, &out.rotate, [&](int t) {
      if (created[t].empty()) return false;
      grpc::ClientContext ctx;
      clavis::v1::RotateKeyRequest request;
      request.set_name(created[t][next[t]++ % created[t].size()]);
      clavis::v1::Key key;
      return stubs[t]->RotateKey(&ctx, request, &key).ok();
    });
  }
  stubs.clear();
  out.rotate.writes = clavisd.Stop(stats);
  std::filesystem::remove_all(dir);
  return out;
}

// --breakdown: the layers under CreateKey at `threads` callers, each in its
// own fresh store, `rounds` rounds each.
void Breakdown(const std::string& dir, int threads, size_t value_size, int rounds) {
  std::filesystem::remove_all(dir);
  {
    // The RPC floor: GetKey of one key (no store write; audited like any call).
    Clavisd clavisd(dir);
    clavisd.Start();
    auto stubs = AdminStubs(clavisd.address(), threads);
    grpc::ClientContext ctx;
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/bench");
    create.set_key_id("k");
    clavis::v1::Key created;
    if (!stubs[0]->CreateKey(&ctx, create, &created).ok()) Die("CreateKey failed");
    Tally tally;
    for (int r = 0; r < rounds; ++r) {
      RunTimed(threads, r == 0 ? kWarmup : absl::ZeroDuration(), kRound, &tally, [&](int t) {
        grpc::ClientContext get_ctx;
        clavis::v1::GetKeyRequest request;
        request.set_name("tenants/bench/keys/k");
        clavis::v1::Key key;
        return stubs[t]->GetKey(&get_ctx, request, &key).ok();
      });
    }
    std::printf("    GetKey RPC (writes nothing)        %8.0f /s  %4.0f us CPU/call\n",
                tally.rate(), tally.cpu_us());
    stubs.clear();
    clavisd.Stop();
  }
  std::filesystem::remove_all(dir);
  {
    auto store = clavis::kms::RocksDbStore::Open({dir + "/db", true});
    if (!store.ok()) Die(std::string(store.status().message()));
    auto root = clavis::kms::KeyFileRootKeyProvider::Open(dir + "/root.key", true);
    if (!root.ok()) Die(std::string(root.status().message()));
    clavis::kms::KeyRepository repository(store->get(), root->get());
    clavis::kms::SystemClock clock;
    clavis::kms::KeyLifecycle lifecycle(&repository, &clock, nullptr);
    std::atomic<uint64_t> next{0};
    Tally tally;
    for (int r = 0; r < rounds; ++r) {
      RunTimed(threads, r == 0 ? kWarmup : absl::ZeroDuration(), kRound, &tally, [&](int t) {
        clavis::kms::CreateKeyParams params;
        params.tenant = "bench";
        params.key_id = KeyId(threads, t, next++);
        return lifecycle.CreateKey(params).ok();
      });
    }
    std::printf(
        "    KeyLifecycle::CreateKey (no gRPC)  %8.0f /s  %4.0f us CPU/call  %5.2f writes/sync\n",
        tally.rate(), tally.cpu_us(), PerSync((*store)->write_stats()));
  }
  std::filesystem::remove_all(dir);
  {
    auto store = clavis::kms::RocksDbStore::Open({dir + "/db", true});
    if (!store.ok()) Die(std::string(store.status().message()));
    const std::string value(value_size, 'v');
    std::atomic<uint64_t> next{0};
    Tally tally;
    for (int r = 0; r < rounds; ++r) {
      RunTimed(threads, r == 0 ? kWarmup : absl::ZeroDuration(), kRound, &tally, [&](int t) {
        const std::string key = absl::StrCat(std::string("k\0bench\0", 8), "t", t, "n", next++);
        clavis::kms::WriteBatch batch;
        batch.Expect(key, std::nullopt).Put(key, value);
        return (*store)->Commit(batch).ok();
      });
    }
    std::printf(
        "    RocksDbStore::Commit (store only)  %8.0f /s  %4.0f us CPU/call  %5.2f writes/sync\n",
        tally.rate(), tally.cpu_us(), PerSync((*store)->write_stats()));
  }
  std::filesystem::remove_all(dir);
  std::fflush(stdout);
}

void PrintRow(const char* what, int threads, const Tally& clavisd, const Tally& base) {
  const double ratio = base.rate() > 0 ? clavisd.rate() / base.rate() : 0;
  std::printf(
      "  %-9s %2d callers  clavisd %7.0f /s %5.2f writes/sync %4.0f us CPU/call | RocksDB "
      "%7.0f /s %5.2f writes/sync %4.0f us CPU/put | ratio %.2f%s\n",
      what, threads, clavisd.rate(), PerSync(clavisd.writes), clavisd.cpu_us(), base.rate(),
      PerSync(base.writes), base.cpu_us(), ratio,
      clavisd.failures + base.failures > 0
          ? absl::StrCat("  [", clavisd.failures + base.failures, " failed]").c_str()
          : "");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, breakdown = false;
  int rounds = 0;
  std::vector<int> levels = {1, 8, 32};
  std::string base_dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--quick") {
      quick = true;
    } else if (flag == "--breakdown") {
      breakdown = true;
    } else if (flag == "--rounds" && has_value) {
      (void)absl::SimpleAtoi(argv[++i], &rounds);
    } else if (flag == "--levels" && has_value) {
      levels.clear();
      for (absl::string_view part : absl::StrSplit(argv[++i], ',')) {
        int level = 0;
        if (absl::SimpleAtoi(part, &level) && level > 0) levels.push_back(level);
      }
    } else if (flag == "--dir" && has_value) {
      base_dir = argv[++i];
    } else {
      Die("usage: durable_write_bench [--quick] [--rounds N] [--levels 1,8,32] [--dir /tmp] "
          "[--breakdown]");
    }
  }
  if (rounds <= 0) rounds = quick ? 2 : 10;
  auto stats = InstallLogger();
  const std::string prefix = absl::StrCat(base_dir, "/clavis-durable-", ::getpid());

  const RecordSizes sizes = MeasureRecordSizes(prefix + "-sizes");
  std::printf("Durable writes: %d alternating rounds of %.1f s per figure, data under %s\n", rounds,
              absl::ToDoubleSeconds(kRound), base_dir.c_str());
  std::printf("key record: %zu bytes created, %zu bytes after a rotation (the baseline's values)\n",
              sizes.created, sizes.rotated_once);
  for (int threads : levels) {
    const LevelResults r = MeasureLevel(prefix, threads, sizes, rounds, stats);
    PrintRow("CreateKey", threads, r.create, r.base_create);
    PrintRow("RotateKey", threads, r.rotate, r.base_rotate);
    if (breakdown) Breakdown(prefix + "-layers", threads, sizes.created, rounds);
  }
  return 0;
}
