// Scale (performance issue): the re-wrap rate of segment keys after a
// master-key rotation with 100,000 and 1,000,000 segments, and clavisd's
// start-up time and memory with that many segments stored. Targets: re-wrap
// >= 50,000 segment keys/s; RSS < 512 MiB and start-up < 2 s with
// 1,000,000 segments.
//
// For each segment count, on a fresh data dir:
//  1. the real clavisd binary (a child process, dev mode) creates the key
//     tenants/bench/keys/k over gRPC, then stops;
//  2. this program populates the segments as fast as it can through the
//     domain layer's KeyRepository (each segment key wrapped under the key's
//     primary version exactly as clavisd does it) and the Store API
//     (batches of 1000 in one Commit each), then closes the store;
//  3. clavisd starts on the populated dir: start-up time is from fork() to
//     the first answered RPC (GetKey of the key), then RSS (VmRSS, VmHWM of
//     /proc/PID/status);
//  4. RotateKey, then RewrapSegments calls with batch_size 1000 until the
//     page token is empty, exactly as clavis-rotator does: the re-wrap rate
//     is segment keys re-wrapped per second of that loop; RSS again;
//  5. clavisd is killed (SIGKILL) and restarted, which replays the WAL of
//     the writes not yet flushed, then stopped cleanly and restarted:
//     start-up time and RSS of both.
//
//   build-e2e/bench/storage/scale_bench                    # 100,000 and 1,000,000
//   build-e2e/bench/storage/scale_bench --quick            # 10,000: CI smoke
//   flags: --segments 100000,1000000  --batch 1000  --dir /tmp  --clavisd PATH  --keep
// Prints figures; asserts nothing about speed. Deletes its data dirs unless
// --keep.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "crypto/random.h"
#include "grpcpp/create_channel.h"
#include "kms/keys/clock.h"
#include "kms/keys/key_lifecycle.h"
#include "kms/keys/key_repository.h"
#include "kms/root/key_file_provider.h"
#include "kms/storage/rocksdb_store.h"
#include "spdlog/spdlog.h"

namespace {

using clavis::kms::KeyName;
using clavis::kms::KeyRepository;
using clavis::kms::SegmentName;
using clavis::v1::KeyAdmin;

constexpr char kTenant[] = "bench";
constexpr char kKeyId[] = "k";
constexpr char kKey[] = "tenants/bench/keys/k";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "scale_bench: %s\n", what.c_str());
  std::exit(1);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// "VmRSS" / "VmHWM" of a process, in bytes (0 if unreadable).
long StatusBytes(pid_t pid, absl::string_view field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, field) || line.size() <= field.size() ||
        line[field.size()] != ':') {
      continue;
    }
    std::vector<absl::string_view> parts =
        absl::StrSplit(line.substr(field.size() + 1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    long kib = 0;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib * 1024;
  }
  return 0;
}

// User + system CPU seconds a process has used so far (/proc/PID/stat).
double CpuSeconds(pid_t pid) {
  const std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  const size_t end_of_name = stat.rfind(')');
  if (end_of_name == std::string::npos) return 0;
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(end_of_name + 2), ' ');
  // After the name: state is field 3, utime 14 and stime 15 (1-based).
  long utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return 0;
  }
  return static_cast<double>(utime + stime) / ::sysconf(_SC_CLK_TCK);
}

double MiB(long bytes) { return bytes / (1024.0 * 1024.0); }

// The clavisd binary as a child process in development mode.
class ClavisdProcess {
 public:
  ClavisdProcess(std::string binary, std::string dir)
      : binary_(std::move(binary)), dir_(std::move(dir)) {}
  ~ClavisdProcess() {
    if (pid_ > 0) Stop();
  }

  // Starts clavisd and returns the time from fork() until it answered the
  // first RPC (GetKey of `probe_key`; NOT_FOUND counts as an answer too).
  absl::Duration Start(const std::string& probe_key) {
    const std::string port_file = dir_ + ".port";
    std::filesystem::remove(port_file);
    std::vector<std::string> args = {binary_,
                                     "--data_dir=" + dir_,
                                     "--listen_address=127.0.0.1:0",
                                     "--port_file=" + port_file,
                                     "--insecure_dev_no_auth",
                                     "--rate_limit_rps=1000000",
                                     "--log_level=warn"};
    const std::string log_file = dir_ + ".clavisd.log";
    const absl::Time start = absl::Now();
    const pid_t pid = ::fork();
    if (pid < 0) Die("fork failed");
    if (pid == 0) {
      const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
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
    const absl::Time deadline = start + absl::Seconds(120);
    int port = 0;
    while (port == 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        Die(absl::StrCat("clavisd exited during start-up; log:\n", ReadFile(log_file)));
      }
      if (absl::Now() > deadline) Die("clavisd did not report its port within 120 s");
      const std::string text = ReadFile(port_file);
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port)) port = 0;
      if (port == 0) absl::SleepFor(absl::Microseconds(500));
    }
    admin_ = KeyAdmin::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    while (true) {
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(absl::ToChronoTime(deadline));
      clavis::v1::GetKeyRequest request;
      request.set_name(probe_key);
      clavis::v1::Key key;
      grpc::Status s = admin_->GetKey(&ctx, request, &key);
      if (s.ok() || s.error_code() == grpc::StatusCode::NOT_FOUND) break;
      if (absl::Now() > deadline) Die("clavisd did not answer within 120 s: " + s.error_message());
    }
    return absl::Now() - start;
  }

  void Stop() {
    admin_.reset();
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      Die(absl::StrCat("clavisd exited with status ", status));
    }
  }

  // SIGKILL: a crash, leaving the WAL to be replayed by the next start.
  void Kill() {
    admin_.reset();
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  KeyAdmin::Stub* admin() { return admin_.get(); }
  pid_t pid() const { return pid_; }
  long rss() const { return StatusBytes(pid_, "VmRSS"); }
  long hwm() const { return StatusBytes(pid_, "VmHWM"); }
  double cpu_seconds() const { return CpuSeconds(pid_); }

 private:
  const std::string binary_;
  const std::string dir_;
  pid_t pid_ = -1;
  std::unique_ptr<KeyAdmin::Stub> admin_;
};

std::string SegmentLabel(uint64_t i) { return absl::StrFormat("seg-%08d", i); }

// Writes `count` segments of the bench key straight into the stopped
// server's store: records as KeyLifecycle::NewSegmentRecord makes them,
// 1000 per Commit, in two threads. Returns segments per second.
double Populate(const std::string& dir, uint64_t count) {
  auto store = clavis::kms::RocksDbStore::Open({dir + "/db", false});
  if (!store.ok()) Die(absl::StrCat("opening the store: ", store.status().message()));
  auto root = clavis::kms::KeyFileRootKeyProvider::Open(dir + "/root.key", false);
  if (!root.ok()) Die(absl::StrCat("opening the root key: ", root.status().message()));
  KeyRepository repository(store->get(), root->get());
  const KeyName key_name{kTenant, kKeyId};
  auto key = repository.GetKey(key_name);
  if (!key.ok()) Die(absl::StrCat("reading the key: ", key.status().message()));
  const uint32_t key_version = (*key)->record().primary_version();
  constexpr uint64_t kBatch = 1000;
  const uint64_t batches = (count + kBatch - 1) / kBatch;
  std::atomic<uint64_t> next_batch{0};
  std::atomic<bool> failed{false};
  const absl::Time start = absl::Now();
  auto work = [&] {
    for (uint64_t b = next_batch++; b < batches && !failed; b = next_batch++) {
      clavis::kms::WriteBatch batch;
      const int64_t now_us = absl::ToUnixMicros(absl::Now());
      for (uint64_t i = b * kBatch; i < std::min(count, (b + 1) * kBatch); ++i) {
        const std::string label = SegmentLabel(i);
        auto wrapped = repository.WrapSegmentKey(**key, key_version, label, 1,
                                                 clavis::crypto::RandomSecret(32));
        if (!wrapped.ok()) {
          failed = true;
          return;
        }
        clavis::internal::SegmentRecord r;
        r.set_format_version(1);
        r.set_segment(label);
        r.set_state(clavis::v1::KeyState::ENABLED);
        r.set_create_time_us(now_us);
        r.set_state_change_time_us(now_us);
        r.set_primary_version(1);
        auto* v = r.add_versions();
        v->set_version(1);
        v->set_key_version(key_version);
        v->set_wrapped_key(*std::move(wrapped));
        v->set_create_time_us(now_us);
        batch.Put(KeyRepository::SegmentStoreKey(SegmentName{key_name, label}),
                  r.SerializeAsString());
      }
      if (!(*store)->Commit(batch).ok()) failed = true;
    }
  };
  std::thread helper(work);
  work();
  helper.join();
  if (failed) Die("populating the segments failed");
  return count / absl::ToDoubleSeconds(absl::Now() - start);
}

void CreateBenchKey(ClavisdProcess& clavisd) {
  grpc::ClientContext ctx;
  clavis::v1::CreateKeyRequest create;
  create.set_parent(absl::StrCat("tenants/", kTenant));
  create.set_key_id(kKeyId);
  clavis::v1::Key key;
  grpc::Status s = clavisd.admin()->CreateKey(&ctx, create, &key);
  if (!s.ok()) Die("CreateKey failed: " + s.error_message());
}

struct RewrapResult {
  double rate = 0;
  double cpu_us_per_segment = 0;  // clavisd's CPU time per re-wrapped segment
  double seconds = 0;
  uint64_t rewrapped = 0;
  uint64_t already_current = 0;
  uint64_t calls = 0;
};

// RotateKey, then RewrapSegments until done, as clavis-rotator does.
RewrapResult RotateAndRewrap(ClavisdProcess& clavisd, int batch_size) {
  {
    grpc::ClientContext ctx;
    clavis::v1::RotateKeyRequest rotate;
    rotate.set_name(kKey);
    clavis::v1::Key key;
    grpc::Status s = clavisd.admin()->RotateKey(&ctx, rotate, &key);
    if (!s.ok()) Die("RotateKey failed: " + s.error_message());
  }
  RewrapResult result;
  clavis::v1::RewrapSegmentsRequest request;
  request.set_name(kKey);
  request.set_batch_size(batch_size);
  const absl::Time start = absl::Now();
  const double start_cpu = clavisd.cpu_seconds();
  while (true) {
    grpc::ClientContext ctx;
    clavis::v1::RewrapSegmentsResponse response;
    grpc::Status s = clavisd.admin()->RewrapSegments(&ctx, request, &response);
    if (!s.ok()) Die("RewrapSegments failed: " + s.error_message());
    ++result.calls;
    result.rewrapped += response.rewrapped();
    result.already_current += response.already_current();
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.rate = result.rewrapped / result.seconds;
  result.cpu_us_per_segment =
      (clavisd.cpu_seconds() - start_cpu) * 1e6 / std::max<uint64_t>(1, result.rewrapped);
  return result;
}

// --domain_only (profiling aid): the same rotation and re-wrap without gRPC
// or clavisd, KeyLifecycle::RewrapSegments called in this process on the
// populated store. Returns segment keys re-wrapped per second.
double DomainRewrap(const std::string& dir, int batch_size) {
  auto store = clavis::kms::RocksDbStore::Open({dir + "/db", false});
  if (!store.ok()) Die(absl::StrCat("opening the store: ", store.status().message()));
  auto root = clavis::kms::KeyFileRootKeyProvider::Open(dir + "/root.key", false);
  if (!root.ok()) Die(absl::StrCat("opening the root key: ", root.status().message()));
  KeyRepository repository(store->get(), root->get());
  clavis::kms::SystemClock clock;
  clavis::kms::KeyLifecycle lifecycle(&repository, &clock, nullptr);
  const KeyName name{kTenant, kKeyId};
  if (!lifecycle.RotateKey(name).ok()) Die("RotateKey failed");
  const absl::Time start = absl::Now();
  uint64_t rewrapped = 0;
  std::string next;
  do {
    auto progress = lifecycle.RewrapSegments(name, next, batch_size);
    if (!progress.ok()) Die(absl::StrCat("RewrapSegments: ", progress.status().message()));
    rewrapped += progress->rewrapped;
    next = progress->next_segment;
  } while (!next.empty());
  return rewrapped / absl::ToDoubleSeconds(absl::Now() - start);
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  }
  return total;
}

void RunScale(const std::string& binary, const std::string& dir, uint64_t segments, int batch_size,
              bool keep, bool domain_only) {
  std::filesystem::remove_all(dir);
  std::printf("%llu segments (data dir %s)\n", static_cast<unsigned long long>(segments),
              dir.c_str());
  ClavisdProcess clavisd(binary, dir);
  clavisd.Start(kKey);
  CreateBenchKey(clavisd);
  clavisd.Stop();

  const double populate_rate = Populate(dir, segments);
  std::printf("  populated at %.0f segments/s (store API, not a target); store %.0f MiB\n",
              populate_rate, MiB(static_cast<long>(DirBytes(dir + "/db"))));
  std::fflush(stdout);
  if (domain_only) {
    std::printf("  re-wrap (KeyLifecycle in this process, no gRPC) %.0f segment keys/s\n",
                DomainRewrap(dir, batch_size));
    if (!keep) std::filesystem::remove_all(dir);
    return;
  }

  const absl::Duration startup = clavisd.Start(kKey);
  const long rss_start = clavisd.rss(), hwm_start = clavisd.hwm();
  std::printf("  start-up      %7.3f s   VmRSS %6.1f MiB  VmHWM %6.1f MiB\n",
              absl::ToDoubleSeconds(startup), MiB(rss_start), MiB(hwm_start));
  std::fflush(stdout);

  const RewrapResult rewrap = RotateAndRewrap(clavisd, batch_size);
  std::printf(
      "  re-wrap       %7.0f segment keys/s, clavisd CPU %.1f us/segment (%llu re-wrapped, "
      "%llu already current, %llu calls of %d, %.2f s)   VmRSS %6.1f MiB  VmHWM %6.1f MiB\n",
      rewrap.rate, rewrap.cpu_us_per_segment, static_cast<unsigned long long>(rewrap.rewrapped),
      static_cast<unsigned long long>(rewrap.already_current),
      static_cast<unsigned long long>(rewrap.calls), batch_size, rewrap.seconds, MiB(clavisd.rss()),
      MiB(clavisd.hwm()));
  if (rewrap.rewrapped != segments) {
    std::printf("  WARNING: re-wrapped %llu of %llu segments\n",
                static_cast<unsigned long long>(rewrap.rewrapped),
                static_cast<unsigned long long>(segments));
  }
  std::fflush(stdout);
  // Killed right after the re-wrap: the next start replays the WAL of the
  // writes not yet flushed (at most a memtable's worth).
  clavisd.Kill();
  const absl::Duration crash_restart = clavisd.Start(kKey);
  std::printf("  restart after SIGKILL %7.3f s   VmRSS %6.1f MiB  VmHWM %6.1f MiB   (WAL replay)\n",
              absl::ToDoubleSeconds(crash_restart), MiB(clavisd.rss()), MiB(clavisd.hwm()));
  clavisd.Stop();
  const absl::Duration restart = clavisd.Start(kKey);
  std::printf("  clean restart %7.3f s   VmRSS %6.1f MiB  VmHWM %6.1f MiB\n",
              absl::ToDoubleSeconds(restart), MiB(clavisd.rss()), MiB(clavisd.hwm()));
  std::fflush(stdout);
  clavisd.Stop();
  if (!keep) {
    std::filesystem::remove_all(dir);
    std::filesystem::remove(dir + ".port");
    std::filesystem::remove(dir + ".clavisd.log");
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, keep = false, domain_only = false;
  int batch_size = 1000;  // clavis-rotator's default
  std::vector<uint64_t> counts;
  std::string binary = CLAVIS_BENCH_CLAVISD;
  std::string base_dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--quick") {
      quick = true;
    } else if (flag == "--keep") {
      keep = true;
    } else if (flag == "--domain_only") {
      domain_only = true;
    } else if (flag == "--segments" && has_value) {
      for (absl::string_view part : absl::StrSplit(argv[++i], ',')) {
        uint64_t n = 0;
        if (absl::SimpleAtoi(part, &n) && n > 0) counts.push_back(n);
      }
    } else if (flag == "--batch" && has_value) {
      (void)absl::SimpleAtoi(argv[++i], &batch_size);
    } else if (flag == "--dir" && has_value) {
      base_dir = argv[++i];
    } else if (flag == "--clavisd" && has_value) {
      binary = argv[++i];
    } else {
      Die("usage: scale_bench [--quick] [--segments 100000,1000000] [--batch 1000] [--dir /tmp] "
          "[--clavisd PATH] [--keep] [--domain_only]");
    }
  }
  if (counts.empty())
    counts = quick ? std::vector<uint64_t>{10000} : std::vector<uint64_t>{100000, 1000000};
  spdlog::set_level(spdlog::level::warn);
  std::printf("Scale: clavisd %s, RewrapSegments batch_size %d, data under %s\n", binary.c_str(),
              batch_size, base_dir.c_str());
  for (uint64_t n : counts) {
    RunScale(binary, absl::StrCat(base_dir, "/clavis-scale-", ::getpid(), "-", n), n, batch_size,
             keep, domain_only);
  }
  return 0;
}
