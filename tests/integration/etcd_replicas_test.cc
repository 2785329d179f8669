// Several clavisd replicas on one etcd cluster (docs/ETCD.md, issue 10):
// a three-member etcd cluster and two clavisd replicas, all real processes
// on loopback ports chosen at run time.
//  - A key disabled (a segment revoked) through replica A is refused by
//    replica B, which had it cached, within one second, and B's
//    WatchKeyEvents subscribers hear of it (B's store change feed).
//  - Two clavis-rotators, one per replica, race for the same due rotations:
//    each due time gives exactly one new version (compare-and-set in etcd).
//  - Under load from SDK clients that know both replicas, one etcd member
//    and one replica are killed: the clients keep working (failover), no
//    acknowledged data key is lost, and after both come back every blob
//    decrypts on both replicas. Each replica keeps its own audit chain,
//    and each verifies.
// The replicas run in the development mode without authentication (one PKI
// per harness clavisd would otherwise need sharing); what is tested here
// is replication, which authentication does not change.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clavis/client.h"
#include "gtest/gtest.h"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/etcd_process.h"
#include "tests/harness/run_shell.h"
#include "tests/harness/spawn.h"

namespace clavis::testing {
namespace {

constexpr char kPrefix[] = "/clavis-replicas/";

std::unique_ptr<grpc::ClientContext> Ctx() { return ContextWithDeadline(absl::Seconds(10)); }

class EtcdReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = std::make_unique<EtcdCluster>(EtcdClusterOptions{3, {}, false});
    const absl::Status started = etcd_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  // Replica `name` ("a", "b") with its own data directory (audit log) and
  // the first replica's root key.
  ClavisdProcess& StartReplica(const std::string& name) {
    const std::string data = dir_.path() + "/" + name;
    if (!replicas_.empty()) {
      std::filesystem::create_directories(data);
      std::filesystem::permissions(data, std::filesystem::perms::owner_all);
      std::filesystem::copy_file(dir_.path() + "/a/root.key", data + "/root.key",
                                 std::filesystem::copy_options::skip_existing);
    }
    ClavisdOptions options(data);
    options.auth = HarnessAuth::kInsecureDev;
    options.keep_port_on_restart = true;
    options.extra_args = {"--storage_backend=etcd", "--etcd_endpoints=" + etcd_->endpoints_flag(),
                          std::string("--etcd_key_prefix=") + kPrefix,
                          "--etcd_request_timeout_ms=3000"};
    replicas_.push_back(std::make_unique<ClavisdProcess>(options));
    const absl::Status started = replicas_.back()->Start();
    EXPECT_TRUE(started.ok()) << started;
    return *replicas_.back();
  }

  static clavis::v1::Key CreateKey(ClavisdProcess& replica, const std::string& id,
                                   int64_t rotation_period_s = 0) {
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/acme");
    create.set_key_id(id);
    if (rotation_period_s > 0) create.mutable_rotation_period()->set_seconds(rotation_period_s);
    clavis::v1::Key key;
    const grpc::Status s = replica.Admin()->CreateKey(Ctx().get(), create, &key);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return key;
  }

  static grpc::Status Generate(ClavisdProcess& replica, const std::string& key,
                               const std::string& segment,
                               clavis::v1::GenerateDataKeyResponse* out = nullptr) {
    clavis::v1::GenerateDataKeyRequest r;
    r.set_key(key);
    r.set_segment(segment);
    clavis::v1::GenerateDataKeyResponse ignored;
    return replica.Data()->GenerateDataKey(Ctx().get(), r, out ? out : &ignored);
  }

  static grpc::Status Decrypt(ClavisdProcess& replica, const std::string& blob,
                              std::string* plaintext = nullptr) {
    clavis::v1::DecryptRequest r;
    r.set_ciphertext_blob(blob);
    clavis::v1::DecryptResponse out;
    grpc::Status s = replica.Data()->Decrypt(Ctx().get(), r, &out);
    if (plaintext != nullptr) *plaintext = out.plaintext();
    return s;
  }

  // How long after `since` calling `refused` first returned true (polled
  // every 5 ms, for up to 10 s); nullopt if never.
  static std::optional<absl::Duration> TimeUntil(absl::Time since,
                                                 const std::function<bool()>& refused) {
    while (absl::Now() - since < absl::Seconds(10)) {
      if (refused()) return absl::Now() - since;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return std::nullopt;
  }

  TempDir dir_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::vector<std::unique_ptr<ClavisdProcess>> replicas_;
};

TEST_F(EtcdReplicasTest, AKeyDisabledThroughOneReplicaIsRefusedByTheOtherWithinOneSecond) {
  ClavisdProcess& a = StartReplica("a");
  ClavisdProcess& b = StartReplica("b");
  const clavis::v1::Key key = CreateKey(a, "crm");
  // B reads and caches the key and the segment.
  clavis::v1::GenerateDataKeyResponse dk;
  ASSERT_TRUE(Generate(b, key.name(), "acme/orders", &dk).ok());
  ASSERT_TRUE(Decrypt(b, dk.ciphertext_blob()).ok());

  // A subscriber of B's events.
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  clavis::v1::WatchKeyEventsRequest watch;
  watch.set_tenant("tenants/acme");
  auto stream = b.Data()->WatchKeyEvents(&watch_ctx, watch);
  stream->WaitForInitialMetadata();

  clavis::v1::KeyNameRequest disable;
  disable.set_name(key.name());
  clavis::v1::Key disabled;
  ASSERT_TRUE(a.Admin()->DisableKey(Ctx().get(), disable, &disabled).ok());
  const absl::Time answered = absl::Now();
  auto lag = TimeUntil(answered, [&] {
    return !Generate(b, key.name(), "acme/orders").ok() && !Decrypt(b, dk.ciphertext_blob()).ok();
  });
  ASSERT_TRUE(lag.has_value()) << "replica B never refused the disabled key";
  std::cout << "replica B refused the key " << absl::FormatDuration(*lag)
            << " after replica A disabled it\n";
  EXPECT_LT(*lag, absl::Seconds(1));
  EXPECT_EQ(Generate(b, key.name(), "acme/orders").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  clavis::v1::KeyEvent event;
  bool heard = false;
  while (!heard && stream->Read(&event)) {
    heard = event.type() == clavis::v1::KeyEvent::DISABLED && event.key() == key.name();
  }
  EXPECT_TRUE(heard) << "B's WatchKeyEvents subscriber was not told";
  std::cout << "B's subscriber heard DISABLED " << absl::FormatDuration(absl::Now() - answered)
            << " after the answer\n";
  watch_ctx.TryCancel();
  (void)stream->Finish();

  // And back, the other way round; then a segment revoked through B.
  clavis::v1::Key enabled;
  ASSERT_TRUE(b.Admin()->EnableKey(Ctx().get(), disable, &enabled).ok());
  lag = TimeUntil(absl::Now(), [&] { return Decrypt(a, dk.ciphertext_blob()).ok(); });
  ASSERT_TRUE(lag.has_value());
  EXPECT_LT(*lag, absl::Seconds(1));
  ASSERT_TRUE(Decrypt(a, dk.ciphertext_blob()).ok());
  clavis::v1::SegmentRequest revoke;
  revoke.set_name(key.name() + "/segments/acme/orders");
  clavis::v1::Segment segment;
  ASSERT_TRUE(b.Admin()->RevokeSegment(Ctx().get(), revoke, &segment).ok());
  lag = TimeUntil(absl::Now(), [&] { return !Decrypt(a, dk.ciphertext_blob()).ok(); });
  ASSERT_TRUE(lag.has_value());
  EXPECT_LT(*lag, absl::Seconds(1));
}

// clavis-rotator as a child process against one replica (plaintext,
// development mode), a pass every 100 ms.
pid_t StartRotator(ClavisdProcess& replica, const std::string& log_file) {
  std::vector<std::string> args = {CLAVIS_ROTATOR_BINARY,
                                   "--endpoint",
                                   absl::StrCat("127.0.0.1:", replica.port()),
                                   "--tenant",
                                   "acme",
                                   "--interval_s",
                                   "0.1",
                                   "--full_scan_s",
                                   "3600",
                                   "--metrics_listen",
                                   "",
                                   "--log_level",
                                   "info"};
  return SpawnLogged(std::move(args), log_file);
}

void StopProcess(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

TEST_F(EtcdReplicasTest, TwoRotatorsOnTwoReplicasRotateEachDueTimeOnce) {
  ClavisdProcess& a = StartReplica("a");
  ClavisdProcess& b = StartReplica("b");
  constexpr int kKeys = 4;
  constexpr int64_t kPeriodS = 2;
  for (int i = 0; i < kKeys; ++i) CreateKey(a, absl::StrCat("rotating-", i), kPeriodS);
  const pid_t ra = StartRotator(a, dir_.path() + "/rotator-a.log");
  const pid_t rb = StartRotator(b, dir_.path() + "/rotator-b.log");
  absl::SleepFor(absl::Seconds(9));
  StopProcess(ra);
  StopProcess(rb);
  int rotations = 0;
  for (int i = 0; i < kKeys; ++i) {
    clavis::v1::GetKeyRequest get;
    get.set_name(absl::StrCat("tenants/acme/keys/rotating-", i));
    clavis::v1::Key key;
    ASSERT_TRUE(b.Admin()->GetKey(Ctx().get(), get, &key).ok());
    // Versions 1..n, each made at least a period (less scheduling slack)
    // after the one before: a due time rotated twice would make two versions
    // within moments of each other.
    ASSERT_GE(key.versions_size(), 2) << key.name() << " was never rotated";
    for (int v = 1; v < key.versions_size(); ++v) {
      EXPECT_EQ(key.versions(v).version(), static_cast<uint32_t>(v + 1));
      const int64_t gap_ms =
          (key.versions(v).create_time().seconds() - key.versions(v - 1).create_time().seconds()) *
              1000 +
          (key.versions(v).create_time().nanos() - key.versions(v - 1).create_time().nanos()) /
              1000000;
      EXPECT_GE(gap_ms, kPeriodS * 1000 - 300)
          << key.name() << " versions " << v << " and " << v + 1 << " only " << gap_ms
          << " ms apart: one due time rotated twice";
    }
    rotations += key.versions_size() - 1;
  }
  // Both rotators did work (each logs the rotations it made).
  const std::string log_a = RunShell("cat " + dir_.path() + "/rotator-a.log").out;
  const std::string log_b = RunShell("cat " + dir_.path() + "/rotator-b.log").out;
  std::cout << rotations << " rotations in all\n";
  EXPECT_NE(log_a.find("rotator: rotated"), std::string::npos) << log_a;
  EXPECT_NE(log_b.find("rotator: rotated"), std::string::npos) << log_b;
}

TEST_F(EtcdReplicasTest, ClientsKeepWorkingWhenAnEtcdMemberAndAReplicaDie) {
  ClavisdProcess& a = StartReplica("a");
  ClavisdProcess& b = StartReplica("b");
  const clavis::v1::Key key = CreateKey(a, "orders");

  ClientOptions options;
  options.endpoint = absl::StrCat("127.0.0.1:", a.port(), ",127.0.0.1:", b.port());
  options.call_timeout = absl::Seconds(5);
  options.max_attempts = 6;
  options.initial_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(500);
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();

  struct Acked {
    std::string segment;
    std::string blob;
    std::string plaintext;
  };
  std::mutex mu;
  std::vector<Acked> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, after_kills{0};
  std::atomic<bool> killed{false};
  std::string last_error;
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string segment = absl::StrCat("acme/w", t, "/", i % 16);
        auto dk = (*client)->GenerateDataKey(key.name(), segment, {});
        if (!dk.ok()) {
          ++failures;
          std::lock_guard<std::mutex> lock(mu);
          last_error = std::string(dk.status().message());
          continue;
        }
        auto back = (*client)->DecryptDataKey(key.name(), segment, dk->ciphertext_blob, {});
        if (!back.ok() || back->view() != dk->plaintext.view()) {
          ++failures;
          continue;
        }
        if (killed) ++after_kills;
        std::lock_guard<std::mutex> lock(mu);
        acked.push_back(Acked{segment, dk->ciphertext_blob, std::string(dk->plaintext.view())});
      }
    });
  }
  absl::SleepFor(absl::Seconds(2));
  etcd_->Kill(0);
  a.Kill();
  killed = true;
  absl::SleepFor(absl::Seconds(5));
  stop = true;
  for (auto& w : workers) w.join();
  std::cout << acked.size() << " data keys acknowledged, " << after_kills << " after the kills; "
            << failures << " calls failed" << (failures > 0 ? " (last: " + last_error + ")" : "")
            << "\n";
  EXPECT_GT(after_kills.load(), 20) << "clients did not keep working on replica B";

  // Everything back; every acknowledged data key decrypts on both replicas.
  ASSERT_TRUE(etcd_->Restart(0).ok());
  ASSERT_TRUE(a.Start().ok());
  std::lock_guard<std::mutex> lock(mu);
  for (ClavisdProcess* replica : {&a, &b}) {
    size_t bad = 0;
    for (const Acked& k : acked) {
      std::string plaintext;
      if (!Decrypt(*replica, k.blob, &plaintext).ok() || plaintext != k.plaintext) ++bad;
    }
    EXPECT_EQ(bad, 0u) << "acknowledged data keys that no longer decrypt on port "
                       << replica->port();
  }

  // Each replica's audit log is a chain of its own, and each verifies.
  for (ClavisdProcess* replica : {&a, &b}) {
    const absl::Status stopped = replica->Stop();
    ASSERT_TRUE(stopped.ok()) << stopped << "\n" << RunShell("tail -20 " + replica->log_file()).out;
  }
  // Replica a was killed, restarted (it continued its chain) and stopped
  // cleanly, like b: both chains verify, alone and together.
  const std::string key_file = dir_.path() + "/a/audit-signing.pub";
  EXPECT_EQ(RunShell("cmp -s " + key_file + " " + dir_.path() + "/b/audit-signing.pub").exit_code,
            0)
      << "the replicas sign with the same key (kept in the store)";
  for (const auto& [dirs, want] : std::vector<std::pair<std::string, int>>{
           {" --dir " + dir_.path() + "/b/audit", 0},
           {" --dir " + dir_.path() + "/a/audit --dir " + dir_.path() + "/b/audit", 0}}) {
    const CommandResult verify = RunShell(absl::StrCat(CLAVISCTL_BINARY, " audit verify", dirs,
                                                       " --public-key-file ", key_file, " 2>&1"));
    EXPECT_EQ(verify.exit_code, want) << verify.out;
  }
}

}  // namespace
}  // namespace clavis::testing
