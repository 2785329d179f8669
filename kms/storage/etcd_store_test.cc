#include "kms/storage/etcd_store.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "kms/storage/store_conformance.h"
#include "tests/harness/etcd_process.h"

namespace clavis::kms {
namespace {

using ::testing::HasSubstr;
using testing_harness = ::clavis::testing::EtcdCluster;

#define CLAVIS_ASSERT_OK(expr)            \
  do {                                    \
    const absl::Status status_ = (expr);  \
    ASSERT_TRUE(status_.ok()) << status_; \
  } while (false)

// One single-member etcd for the whole test binary (ctest runs each test in
// a process of its own, so in effect one etcd per test).
class EtcdEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    cluster_ = std::make_unique<testing_harness>();
    const absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }
  void TearDown() override { cluster_.reset(); }

  static testing_harness& cluster() { return *instance_->cluster_; }
  static EtcdEnvironment* instance_;

 private:
  std::unique_ptr<testing_harness> cluster_;
};
EtcdEnvironment* EtcdEnvironment::instance_ = nullptr;

[[maybe_unused]] ::testing::Environment* const kEnvironment = [] {
  EtcdEnvironment::instance_ = new EtcdEnvironment();
  return ::testing::AddGlobalTestEnvironment(EtcdEnvironment::instance_);
}();

// A key prefix no other store of this process has used.
std::string FreshPrefix() {
  static std::atomic<int> counter{0};
  return absl::StrCat("/clavis-test/", counter++, "/");
}

EtcdStoreOptions OptionsFor(std::vector<std::string> endpoints, std::string prefix = "") {
  EtcdStoreOptions options;
  options.endpoints = std::move(endpoints);
  options.key_prefix = prefix.empty() ? FreshPrefix() : std::move(prefix);
  return options;
}

std::unique_ptr<EtcdStore> MakeStore(EtcdStoreOptions options) {
  absl::StatusOr<std::unique_ptr<EtcdStore>> store = EtcdStore::New(options);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  return *std::move(store);
}

std::unique_ptr<Store> NewEtcdStore(size_t page_size) {
  EtcdStoreOptions options = OptionsFor(EtcdEnvironment::cluster().endpoints());
  options.page_size = page_size;
  return MakeStore(options);
}

INSTANTIATE_TEST_SUITE_P(Etcd, StoreConformanceTest,
                         ::testing::Values(StoreFactory([] { return NewEtcdStore(500); })));
// Scans and exports of many pages, all at one revision.
INSTANTIATE_TEST_SUITE_P(EtcdThreeEntryPages, StoreConformanceTest,
                         ::testing::Values(StoreFactory([] { return NewEtcdStore(3); })));

// Raw access to etcd, to look beneath the store.
class RawEtcd {
 public:
  explicit RawEtcd(const std::string& endpoint)
      : kv_(etcdserverpb::KV::NewStub(
            grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()))) {}

  // Range of one key at `revision` (0: newest).
  grpc::Status Range(const std::string& key, int64_t revision,
                     etcdserverpb::RangeResponse* response) {
    etcdserverpb::RangeRequest request;
    request.set_key(key);
    request.set_revision(revision);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return kv_->Range(&context, request, response);
  }

 private:
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
};

// The index of the member that is the Raft leader, or -1.
int LeaderOf(const testing_harness& cluster) {
  for (int i = 0; i < cluster.size(); ++i) {
    if (!cluster.running(i)) continue;
    auto maintenance = etcdserverpb::Maintenance::NewStub(
        grpc::CreateChannel(cluster.endpoint(i), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    etcdserverpb::StatusResponse status;
    if (maintenance->Status(&context, etcdserverpb::StatusRequest(), &status).ok() &&
        status.leader() == status.header().member_id()) {
      return i;
    }
  }
  return -1;
}

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str().find(needle) != std::string::npos;
}

// Every regular file under `dir` holding `needle`.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && FileContains(entry.path().string(), needle)) {
      found.push_back(entry.path().string());
    }
  }
  return found;
}

TEST(EtcdStoreTest, NewRejectsBadOptions) {
  EtcdStoreOptions options;
  EXPECT_EQ(EtcdStore::New(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.endpoints = {"127.0.0.1:2379"};
  options.key_prefix = "";
  EXPECT_EQ(EtcdStore::New(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.key_prefix = "/clavis/";
  options.endpoints = {"etcd-a:2379", "etcd-b:2379"};
  EXPECT_THAT(EtcdStore::New(options).status().message(), HasSubstr("IPv4 or all IPv6"));
  options.endpoints = {"127.0.0.1"};
  EXPECT_EQ(EtcdStore::New(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.endpoints = {"127.0.0.1:2379"};
  options.tls_cert_file = "client.crt";
  EXPECT_THAT(EtcdStore::New(options).status().message(), HasSubstr("both or neither"));
  options.tls_key_file = "/nonexistent/client.key";
  options.tls_cert_file = "/nonexistent/client.crt";
  EXPECT_EQ(EtcdStore::New(options).status().code(), absl::StatusCode::kNotFound);
  // Several members over TLS: one name their certificates list is needed.
  options.tls_key_file.clear();
  options.tls_cert_file.clear();
  options.endpoints = {"https://127.0.0.1:2379", "https://127.0.0.2:2379"};
  EXPECT_THAT(EtcdStore::New(options).status().message(), HasSubstr("etcd_server_name"));
}

TEST(EtcdStoreTest, EndpointsBecomeOneBalancedTarget) {
  EtcdStoreOptions options = OptionsFor({"http://127.0.0.1:1", "127.0.0.1:2"});
  std::unique_ptr<EtcdStore> store = MakeStore(options);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->target(), "ipv4:127.0.0.1:1,127.0.0.1:2");
  store = MakeStore(OptionsFor({"etcd.example:2379"}));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->target(), "dns:///etcd.example:2379");
}

TEST(EtcdStoreTest, CheckReachableReturnsTheEtcdVersion) {
  std::unique_ptr<EtcdStore> store = MakeStore(OptionsFor(EtcdEnvironment::cluster().endpoints()));
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::string> version = store->CheckReachable();
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_THAT(*version, ::testing::StartsWith("3."));
}

TEST(EtcdStoreTest, KeysLiveUnderThePrefixAndStoresWithOtherPrefixesDoNotSeeThem) {
  testing_harness& cluster = EtcdEnvironment::cluster();
  std::unique_ptr<EtcdStore> a = MakeStore(OptionsFor(cluster.endpoints(), "/deploy-a/"));
  std::unique_ptr<EtcdStore> b = MakeStore(OptionsFor(cluster.endpoints(), "/deploy-b/"));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  CLAVIS_ASSERT_OK(a->Put("keys/1", "va"));
  CLAVIS_ASSERT_OK(b->Put("keys/2", "vb"));
  EXPECT_EQ(*a->Get("keys/2"), std::nullopt);
  ASSERT_TRUE(b->Scan("", "", 0).ok());
  EXPECT_EQ(b->Scan("", "", 0)->size(), 1u);
  RawEtcd raw(cluster.endpoint(0));
  etcdserverpb::RangeResponse response;
  ASSERT_TRUE(raw.Range("/deploy-a/keys/1", 0, &response).ok());
  ASSERT_EQ(response.kvs_size(), 1);
  EXPECT_EQ(response.kvs(0).value(), "va");
  // A purge of one deployment's prefix leaves the other's keys alone.
  CLAVIS_ASSERT_OK(a->CommitAndPurge(WriteBatch(), {""}));
  EXPECT_EQ(*a->Get("keys/1"), std::nullopt);
  EXPECT_EQ(*b->Get("keys/2"), "vb");
}

TEST(EtcdStoreTest, RepeatedWritesOfOneKeyInABatchApplyTheLast) {
  std::unique_ptr<EtcdStore> store = MakeStore(OptionsFor(EtcdEnvironment::cluster().endpoints()));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  batch.Put("k", "1").Put("k", "2").Put("gone", "x").Delete("gone").Put("p/1", "doomed");
  CLAVIS_ASSERT_OK(store->CommitAndPurge(batch, {"p/"}));
  EXPECT_EQ(*store->Get("k"), "2");
  EXPECT_EQ(*store->Get("gone"), std::nullopt);
  EXPECT_EQ(*store->Get("p/1"), std::nullopt);
}

TEST(EtcdStoreTest, CommitAndPurgeCompactsAndDefragmentsSoOldValuesLeaveTheDatabase) {
  testing_harness& cluster = EtcdEnvironment::cluster();
  std::unique_ptr<EtcdStore> store = MakeStore(OptionsFor(cluster.endpoints(), "/purge/"));
  ASSERT_NE(store, nullptr);
  const std::string old_value = "OLD-WRAPPED-SEGMENT-KEY-4f1c9a7e";
  const std::string destroyed = "DESTROYED-SEGMENT-KEY-b83d02c5";
  CLAVIS_ASSERT_OK(store->Put("seg/1", old_value));
  CLAVIS_ASSERT_OK(store->Put("seg/1", destroyed));
  CLAVIS_ASSERT_OK(store->Put("other", "kept"));
  RawEtcd raw(cluster.endpoint(0));
  etcdserverpb::RangeResponse before;
  ASSERT_TRUE(raw.Range("/purge/seg/1", 0, &before).ok());
  const int64_t old_revision = before.kvs(0).mod_revision() - 1;  // holds old_value
  etcdserverpb::RangeResponse old_read;
  ASSERT_TRUE(raw.Range("/purge/seg/1", old_revision, &old_read).ok());
  ASSERT_EQ(old_read.kvs_size(), 1);
  EXPECT_EQ(old_read.kvs(0).value(), old_value);

  WriteBatch batch;
  batch.Expect("other", "kept");
  CLAVIS_ASSERT_OK(store->CommitAndPurge(batch, {"seg/"}));

  // The old revisions are compacted away: etcd no longer serves them...
  etcdserverpb::RangeResponse after;
  const grpc::Status compacted = raw.Range("/purge/seg/1", old_revision, &after);
  EXPECT_FALSE(compacted.ok());
  EXPECT_THAT(compacted.error_message(), HasSubstr("compacted"));
  EXPECT_EQ(*store->Get("other"), "kept");
  // ...and after the defragmentation the database file holds neither value.
  const std::string db = cluster.data_dir(0) + "/member/snap/db";
  ASSERT_TRUE(std::filesystem::exists(db)) << db;
  EXPECT_FALSE(FileContains(db, old_value));
  EXPECT_FALSE(FileContains(db, destroyed));
  // What CommitAndPurge does not reach (docs/ETCD.md): the Raft WAL still
  // holds the write requests until etcd rotates the WAL out. If this ever
  // fails, etcd changed and docs/ETCD.md should say so.
  std::vector<std::string> wal = FilesContaining(cluster.data_dir(0) + "/member/wal", destroyed);
  EXPECT_FALSE(wal.empty()) << "the WAL no longer holds the purged value: update docs/ETCD.md";
}

TEST(EtcdStoreTest, TooManyOperationsForEtcdIsAClearErrorAndWritesNothing) {
  // The harness starts etcd with --max-txn-ops=10240.
  std::unique_ptr<EtcdStore> store = MakeStore(OptionsFor(EtcdEnvironment::cluster().endpoints()));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  for (int i = 0; i < 10300; ++i) batch.Put(absl::StrFormat("k/%05d", i), "v");
  const absl::Status status = store->Commit(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("--max-txn-ops"));
  EXPECT_TRUE(store->Scan("k/", "", 0)->empty());
  // Just under the limit goes through as one atomic Txn.
  WriteBatch fits;
  for (int i = 0; i < 10240; ++i) fits.Put(absl::StrFormat("k/%05d", i), "v");
  CLAVIS_ASSERT_OK(store->Commit(fits));
  EXPECT_EQ(store->Scan("k/", "", 0)->size(), 10240u);
}

TEST(EtcdStoreTest, TooLargeARequestForEtcdIsAClearErrorAndNamesNoValue) {
  // The harness starts etcd with --max-request-bytes=10485760.
  std::unique_ptr<EtcdStore> store = MakeStore(OptionsFor(EtcdEnvironment::cluster().endpoints()));
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  for (int i = 0; i < 11; ++i) {
    batch.Put(absl::StrCat("big/", i), std::string(1 << 20, static_cast<char>('a' + i)));
  }
  const absl::Status status = store->Commit(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status.code();
  EXPECT_THAT(status.message(), HasSubstr("--max-request-bytes"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("aaaa")));
  EXPECT_TRUE(store->Scan("big/", "", 0)->empty());
}

TEST(EtcdStoreTest, UnreachableEndpointIsUnavailableWithinTheTimeout) {
  const std::string endpoint = absl::StrCat("127.0.0.1:", testing::PickFreePort());
  EtcdStoreOptions options = OptionsFor({endpoint});
  options.request_timeout = absl::Milliseconds(500);
  std::unique_ptr<EtcdStore> store = MakeStore(options);
  ASSERT_NE(store, nullptr);
  const absl::Time start = absl::Now();
  const absl::Status get = store->Get("k").status();
  const absl::Status commit = store->Commit(WriteBatch().Put("k", "v"));
  const absl::Status scan = store->Scan("", "", 0).status();
  const absl::Status reachable = store->CheckReachable().status();
  const absl::Duration took = absl::Now() - start;
  for (const absl::Status& status : {get, commit, scan, reachable}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_THAT(status.message(), HasSubstr(endpoint));
  }
  EXPECT_THAT(commit.message(), HasSubstr("outcome is unknown"));
  EXPECT_LT(took, absl::Seconds(4)) << "four calls with a 0.5 s timeout took " << took;
}

TEST(EtcdStoreTest, KilledAndRestartedEtcdRecovers) {
  testing_harness cluster;
  CLAVIS_ASSERT_OK(cluster.Start());
  EtcdStoreOptions options = OptionsFor(cluster.endpoints());
  options.request_timeout = absl::Seconds(2);
  std::unique_ptr<EtcdStore> store = MakeStore(options);
  ASSERT_NE(store, nullptr);
  CLAVIS_ASSERT_OK(store->Put("k", "before"));

  cluster.Kill(0);
  const absl::Status down = store->Get("k").status();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;

  CLAVIS_ASSERT_OK(cluster.Restart(0));
  // The same store object reconnects by itself (within about a second).
  absl::StatusOr<std::optional<std::string>> value = store->Get("k");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "before");
  CLAVIS_ASSERT_OK(store->Commit(WriteBatch().Expect("k", "before").Put("k", "after")));
  EXPECT_EQ(*store->Get("k"), "after");
}

TEST(EtcdStoreTest, TlsWithAClientCertificateWorksAndPlaintextOrNoCertificateDoesNot) {
  testing_harness cluster({.members = 1, .extra_args = {}, .tls = true});
  CLAVIS_ASSERT_OK(cluster.Start());
  EtcdStoreOptions options = OptionsFor({cluster.client_url(0)});
  options.tls_ca_file = cluster.ca_file();
  options.tls_cert_file = cluster.client_cert_file();
  options.tls_key_file = cluster.client_key_file();
  std::unique_ptr<EtcdStore> store = MakeStore(options);
  ASSERT_NE(store, nullptr);
  CLAVIS_ASSERT_OK(store->Put("k", "v"));
  EXPECT_EQ(*store->Get("k"), "v");
  // The purge's defragmentation opens TLS channels of its own to each member.
  CLAVIS_ASSERT_OK(store->CommitAndPurge(WriteBatch().Delete("k"), {}));
  EXPECT_EQ(*store->Get("k"), std::nullopt);

  // An IP endpoint without a scheme is TLS too once a CA is given.
  options.endpoints = {cluster.endpoint(0)};
  std::unique_ptr<EtcdStore> bare = MakeStore(options);
  ASSERT_NE(bare, nullptr);
  EXPECT_TRUE(bare->Get("k").ok()) << bare->Get("k").status();

  EtcdStoreOptions no_certificate = options;
  no_certificate.tls_cert_file.clear();
  no_certificate.tls_key_file.clear();
  no_certificate.request_timeout = absl::Seconds(1);
  std::unique_ptr<EtcdStore> anonymous = MakeStore(no_certificate);
  ASSERT_NE(anonymous, nullptr);
  EXPECT_FALSE(anonymous->Get("k").ok());

  EtcdStoreOptions plaintext = OptionsFor({cluster.endpoint(0)});
  plaintext.request_timeout = absl::Seconds(1);
  std::unique_ptr<EtcdStore> insecure = MakeStore(plaintext);
  ASSERT_NE(insecure, nullptr);
  EXPECT_EQ(insecure->Get("k").status().code(), absl::StatusCode::kUnavailable);
}

TEST(EtcdStoreTest, ThreeMemberClusterSurvivesTheLossOfAMemberAndPurgesEveryMember) {
  testing_harness cluster({.members = 3, .extra_args = {}, .tls = false});
  CLAVIS_ASSERT_OK(cluster.Start());
  EtcdStoreOptions options = OptionsFor(cluster.endpoints());
  std::unique_ptr<EtcdStore> store = MakeStore(options);
  ASSERT_NE(store, nullptr);
  const std::string destroyed = "DESTROYED-IN-A-CLUSTER-9d2e71";
  CLAVIS_ASSERT_OK(store->Put("seg/1", destroyed));
  CLAVIS_ASSERT_OK(store->CommitAndPurge(WriteBatch().Delete("seg/1"), {}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(FileContains(cluster.data_dir(i) + "/member/snap/db", destroyed))
        << "member " << i << " was not defragmented";
  }

  // A store that only knows one member still defragments all three
  // (MemberList gives the others' client URLs).
  std::unique_ptr<EtcdStore> one = MakeStore(OptionsFor({cluster.endpoint(1)}, options.key_prefix));
  ASSERT_NE(one, nullptr);
  CLAVIS_ASSERT_OK(one->Put("seg/2", destroyed + "-2"));
  CLAVIS_ASSERT_OK(one->CommitAndPurge(WriteBatch(), {"seg/"}));
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(FileContains(cluster.data_dir(i) + "/member/snap/db", destroyed + "-2"))
        << "member " << i << " was not defragmented";
  }

  // Losing one member of three (perhaps the leader): reads go on through
  // the others at once (re-sent within the timeout if one was stuck on the
  // dead leader); a write sent in the moment the leader dies may time out
  // with an unknown outcome (etcd drops proposals forwarded to a dead
  // leader), and the next one goes through.
  const int leader = LeaderOf(cluster);
  ASSERT_GE(leader, 0);
  const absl::Time killed = absl::Now();
  cluster.Kill(leader);
  absl::StatusOr<std::optional<std::string>> read = store->Get("seg/1");
  ASSERT_TRUE(read.ok()) << read.status();
  const absl::Duration read_after = absl::Now() - killed;
  absl::Status written = store->Put("k", "with two members");
  int write_attempts = 1;
  for (; !written.ok() && write_attempts < 3; ++write_attempts) {
    EXPECT_EQ(written.code(), absl::StatusCode::kUnavailable) << written;
    written = store->Put("k", "with two members");
  }
  CLAVIS_ASSERT_OK(written);
  std::cout << "after killing the leader: first read after " << read_after << ", first write after "
            << absl::Now() - killed << " (" << write_attempts << " attempts)\n";
  EXPECT_EQ(*store->Get("k"), "with two members");
  // A purge cannot reach the dead member: it says so (the commit stands).
  const absl::Status purge = store->CommitAndPurge(WriteBatch().Delete("k"), {});
  EXPECT_EQ(purge.code(), absl::StatusCode::kUnavailable) << purge;
  EXPECT_THAT(purge.message(), HasSubstr("the batch was committed"));
  EXPECT_EQ(*store->Get("k"), std::nullopt);
  CLAVIS_ASSERT_OK(cluster.Restart(leader));
  CLAVIS_ASSERT_OK(store->CommitAndPurge(WriteBatch(), {}));
}

TEST(EtcdStoreTest, FailsWithoutTheEtcdBinaryInsteadOfSkipping) {
  // Documents the contract: the harness needs /usr/bin/etcd (scripts/setup).
  EXPECT_TRUE(std::filesystem::exists(testing::kEtcdBinary))
      << testing::kEtcdBinary << " is missing: run scripts/setup";
}

}  // namespace
}  // namespace clavis::kms

namespace clavis::kms {
namespace {

// What a change feed reported, for the tests below.
class RecordingHandler {
 public:
  StoreChangeHandler handler() {
    StoreChangeHandler h;
    h.on_changes = [this](const std::vector<StoreChange>& changes) {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& c : changes) changes_.push_back(c);
      cv_.notify_all();
    };
    h.on_resync = [this](bool connected) {
      std::lock_guard<std::mutex> lock(mu_);
      resyncs_.push_back(connected);
      cv_.notify_all();
    };
    return h;
  }
  // Waits (up to 20 s) until `pred` holds over what was recorded.
  bool WaitFor(
      const std::function<bool(const std::vector<StoreChange>&, const std::vector<bool>&)>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return pred(changes_, resyncs_); });
  }
  std::vector<StoreChange> changes() {
    std::lock_guard<std::mutex> lock(mu_);
    return changes_;
  }
  std::vector<bool> resyncs() {
    std::lock_guard<std::mutex> lock(mu_);
    return resyncs_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<StoreChange> changes_;
  std::vector<bool> resyncs_;
};

bool Connected(const std::vector<StoreChange>&, const std::vector<bool>& resyncs) {
  return !resyncs.empty() && resyncs.back();
}

TEST(EtcdChangeFeedTest, ReportsEveryChangeOfAnyWriterWithOldAndNewValues) {
  const std::string prefix = FreshPrefix();
  auto watcher = MakeStore(OptionsFor(EtcdEnvironment::cluster().endpoints(), prefix));
  auto writer = MakeStore(OptionsFor(EtcdEnvironment::cluster().endpoints(), prefix));
  auto other = MakeStore(OptionsFor(EtcdEnvironment::cluster().endpoints()));
  ASSERT_TRUE(watcher && writer && other);
  RecordingHandler recorded;
  auto feed = watcher->WatchChanges("k", recorded.handler());
  ASSERT_TRUE(feed.ok()) << feed.status();
  ASSERT_TRUE(recorded.WaitFor(Connected));

  CLAVIS_ASSERT_OK(writer->Put("k1", "a"));
  CLAVIS_ASSERT_OK(writer->Commit(WriteBatch().Expect("k1", "a").Put("k1", "b").Put("k2", "c")));
  CLAVIS_ASSERT_OK(writer->Delete("k2"));
  CLAVIS_ASSERT_OK(writer->Put("s1", "outside the watched prefix"));
  CLAVIS_ASSERT_OK(other->Put("k1", "another store's prefix"));
  CLAVIS_ASSERT_OK(writer->CommitAndPurge(WriteBatch().Put("k3", "d"), {"k1"}));
  ASSERT_TRUE(recorded.WaitFor(
      [](const std::vector<StoreChange>& c, const std::vector<bool>&) { return c.size() >= 6; }));
  const auto changes = recorded.changes();
  ASSERT_EQ(changes.size(), 6u);
  auto is = [](const StoreChange& c, const std::string& key, std::optional<std::string> old_value,
               std::optional<std::string> new_value) {
    return c.key == key && c.old_value == old_value && c.new_value == new_value;
  };
  EXPECT_TRUE(is(changes[0], "k1", std::nullopt, "a"));
  EXPECT_TRUE(is(changes[1], "k1", "a", "b"));
  EXPECT_TRUE(is(changes[2], "k2", std::nullopt, "c"));
  EXPECT_TRUE(is(changes[3], "k2", "c", std::nullopt));
  // The purge's batch: k3 put and the k1 prefix deleted, in one revision.
  std::set<std::string> last;
  for (size_t i = 4; i < 6; ++i) last.insert(changes[i].key);
  EXPECT_EQ(last, (std::set<std::string>{"k1", "k3"}));
  EXPECT_EQ(recorded.resyncs(), std::vector<bool>{true});
}

TEST(EtcdChangeFeedTest, AnOutageIsReportedAndTheFeedComesBackByItself) {
  testing_harness cluster;
  CLAVIS_ASSERT_OK(cluster.Start());
  const std::string prefix = FreshPrefix();
  auto store = MakeStore(OptionsFor(cluster.endpoints(), prefix));
  ASSERT_NE(store, nullptr);
  RecordingHandler recorded;
  auto feed = store->WatchChanges("", recorded.handler());
  ASSERT_TRUE(feed.ok());
  ASSERT_TRUE(recorded.WaitFor(Connected));
  cluster.Kill(0);
  ASSERT_TRUE(recorded.WaitFor(
      [](const std::vector<StoreChange>&, const std::vector<bool>& r) { return r.size() == 2; }));
  EXPECT_FALSE(recorded.resyncs()[1]) << "the outage is reported";
  CLAVIS_ASSERT_OK(cluster.Restart(0));
  ASSERT_TRUE(recorded.WaitFor(Connected)) << "the feed reconnects by itself";
  CLAVIS_ASSERT_OK(store->Put("after", "1"));
  ASSERT_TRUE(recorded.WaitFor([](const std::vector<StoreChange>& c, const std::vector<bool>&) {
    return !c.empty() && c.back().key == "after";
  }));
  // Destroying the feed stops it promptly, also while it waits.
  feed->reset();
}

// A member that stops answering but keeps its connections open (power
// loss, a cut network look like this to the client) must not leave the feed
// looking alive: it reports the outage within seconds, not when TCP gives up.
TEST(EtcdChangeFeedTest, AMemberThatGoesSilentIsReportedWithinSeconds) {
  testing_harness cluster;
  CLAVIS_ASSERT_OK(cluster.Start());
  auto store = MakeStore(OptionsFor(cluster.endpoints()));
  ASSERT_NE(store, nullptr);
  RecordingHandler recorded;
  auto feed = store->WatchChanges("", recorded.handler());
  ASSERT_TRUE(feed.ok());
  ASSERT_TRUE(recorded.WaitFor(Connected));
  cluster.Freeze(0);
  const absl::Time frozen = absl::Now();
  ASSERT_TRUE(recorded.WaitFor(
      [](const std::vector<StoreChange>&, const std::vector<bool>& r) { return r.size() == 2; }));
  const absl::Duration noticed = absl::Now() - frozen;
  std::cout << "silent member noticed after " << absl::FormatDuration(noticed) << "\n";
  EXPECT_FALSE(recorded.resyncs()[1]);
  EXPECT_LT(noticed, absl::Seconds(8));
  cluster.Thaw(0);
  ASSERT_TRUE(recorded.WaitFor(Connected)) << "the feed comes back once the member answers";
}

}  // namespace
}  // namespace clavis::kms
