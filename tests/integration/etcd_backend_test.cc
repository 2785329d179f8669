// clavisd on the etcd backend (docs/ETCD.md): a real etcd member and a real
// clavisd started with --storage_backend etcd. Keys live in etcd; the data
// directory keeps only the root key and the audit log.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kms/keys/key_repository.h"
#include "kms/keys/names.h"
#include "kms/keys/records.pb.h"
#include "kms/storage/etcd_store.h"
#include "tests/harness/clavisd_process.h"
#include "tests/harness/etcd_process.h"

namespace clavis::testing {
namespace {

std::vector<std::string> EtcdArgs(const EtcdCluster& etcd, const std::string& prefix) {
  return {"--storage_backend=etcd", "--etcd_endpoints=" + etcd.endpoints_flag(),
          "--etcd_key_prefix=" + prefix};
}

clavis::v1::Key CreateKey(ClavisdProcess& clavisd, const std::string& id) {
  clavis::v1::CreateKeyRequest create;
  create.set_parent("tenants/acme");
  create.set_key_id(id);
  create.set_policy(TestKeyPolicy("tenants/acme/keys/" + id));
  clavis::v1::Key key;
  const grpc::Status status = clavisd.Admin()->CreateKey(ContextWithDeadline().get(), create, &key);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return key;
}

TEST(EtcdBackendTest, DataKeySurvivesARestartWithTheKeysInEtcd) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start().ok());
  TempDir dir;
  ClavisdOptions options(dir.path() + "/data");
  options.extra_args = EtcdArgs(etcd, "/clavis-it/");
  ClavisdProcess clavisd(options);
  const absl::Status started = clavisd.Start();
  ASSERT_TRUE(started.ok()) << started;

  const clavis::v1::Key key = CreateKey(clavisd, "crm");
  ASSERT_EQ(key.name(), "tenants/acme/keys/crm");
  clavis::v1::GenerateDataKeyRequest gen;
  gen.set_key(key.name());
  gen.set_segment("acme/orders/2026-11");
  (*gen.mutable_encryption_context())["customer"] = "42";
  clavis::v1::GenerateDataKeyResponse dk;
  grpc::Status status = clavisd.Data()->GenerateDataKey(ContextWithDeadline().get(), gen, &dk);
  ASSERT_TRUE(status.ok()) << status.error_message();

  ASSERT_TRUE(clavisd.Stop().ok());
  ASSERT_TRUE(clavisd.Start().ok());

  clavis::v1::DecryptRequest dec;
  dec.set_ciphertext_blob(dk.ciphertext_blob());
  (*dec.mutable_encryption_context())["customer"] = "42";
  clavis::v1::DecryptResponse plain;
  status = clavisd.Data()->Decrypt(ContextWithDeadline().get(), dec, &plain);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(plain.plaintext(), dk.plaintext());

  // Nothing of the store is on local disk: no RocksDB directory; the log
  // says which store it used.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/data/db"));
  std::ifstream log(clavisd.log_file());
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_TRUE(absl::StrContains(text.str(), "store: etcd 3.")) << text.str();
}

TEST(EtcdBackendTest, ASecondReplicaWithTheSameRootKeyServesTheSameKeys) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start().ok());
  TempDir dir;
  ClavisdOptions first_options(dir.path() + "/a");
  first_options.extra_args = EtcdArgs(etcd, "/clavis-ha/");
  ClavisdProcess first(first_options);
  ASSERT_TRUE(first.Start().ok());
  const clavis::v1::Key key = CreateKey(first, "shared");
  clavis::v1::GenerateDataKeyRequest gen;
  gen.set_key(key.name());
  gen.set_segment("acme/shared/1");
  clavis::v1::GenerateDataKeyResponse dk;
  ASSERT_TRUE(first.Data()->GenerateDataKey(ContextWithDeadline().get(), gen, &dk).ok());

  // The second replica has its own data directory (audit log) and a copy of
  // the root key file.
  std::filesystem::create_directories(dir.path() + "/b");
  std::filesystem::permissions(dir.path() + "/b", std::filesystem::perms::owner_all);
  std::filesystem::copy_file(dir.path() + "/a/root.key", dir.path() + "/b/root.key");
  ClavisdOptions second_options(dir.path() + "/b");
  second_options.extra_args = EtcdArgs(etcd, "/clavis-ha/");
  ClavisdProcess second(second_options);
  const absl::Status started = second.Start();
  ASSERT_TRUE(started.ok()) << started;
  clavis::v1::DecryptRequest dec;
  dec.set_ciphertext_blob(dk.ciphertext_blob());
  clavis::v1::DecryptResponse plain;
  const grpc::Status status = second.Data()->Decrypt(ContextWithDeadline().get(), dec, &plain);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(plain.plaintext(), dk.plaintext());
}

bool FileContains(const std::string& path, const std::string& needle) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str().find(needle) != std::string::npos;
}

// DestroySegment on etcd: the destroyed segment key's wrapped bytes leave
// the member's database file (compaction + defragmentation), the other
// segment's stay; the Raft WAL still holds them (docs/ETCD.md).
TEST(EtcdBackendTest, DestroySegmentPurgesTheWrappedKeyFromTheEtcdDatabase) {
  EtcdCluster etcd;
  ASSERT_TRUE(etcd.Start().ok());
  TempDir dir;
  ClavisdOptions options(dir.path() + "/data");
  options.extra_args = EtcdArgs(etcd, "/clavis-shred/");
  ClavisdProcess clavisd(options);
  ASSERT_TRUE(clavisd.Start().ok());
  const clavis::v1::Key key = CreateKey(clavisd, "orders");
  clavis::v1::GenerateDataKeyResponse a_key, b_key;
  for (auto [segment, out] : {std::pair{"a", &a_key}, std::pair{"b", &b_key}}) {
    clavis::v1::GenerateDataKeyRequest gen;
    gen.set_key(key.name());
    gen.set_segment(segment);
    const grpc::Status status =
        clavisd.Data()->GenerateDataKey(ContextWithDeadline().get(), gen, out);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // The wrapped segment keys, read from etcd beside the running clavisd.
  kms::EtcdStoreOptions store_options;
  store_options.endpoints = etcd.endpoints();
  store_options.key_prefix = "/clavis-shred/";
  auto store = kms::EtcdStore::New(store_options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto wrapped = [&](const std::string& segment) {
    auto raw = (*store)->Get(kms::KeyRepository::SegmentStoreKey(
        kms::SegmentName{kms::KeyName{"acme", "orders"}, segment}));
    EXPECT_TRUE(raw.ok() && raw->has_value());
    clavis::internal::SegmentRecord record;
    if (raw.ok() && raw->has_value()) {
      EXPECT_TRUE(record.ParseFromString(**raw));
    }
    return record.versions_size() > 0 ? record.versions(0).wrapped_key() : std::string();
  };
  const std::string a_wrapped = wrapped("a");
  const std::string b_wrapped = wrapped("b");
  ASSERT_GE(a_wrapped.size(), 32u);
  ASSERT_GE(b_wrapped.size(), 32u);
  const std::string db = etcd.data_dir(0) + "/member/snap/db";
  // etcd commits its bbolt database in batches (every 100 ms by default).
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!FileContains(db, a_wrapped) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(FileContains(db, a_wrapped)) << "the search must be able to find it before";

  clavis::v1::ScheduleSegmentDestructionRequest schedule;
  schedule.set_name(key.name() + "/segments/a");
  schedule.mutable_pending_window()->set_seconds(1);
  clavis::v1::Segment segment;
  grpc::Status status =
      clavisd.Admin()->ScheduleSegmentDestruction(ContextWithDeadline().get(), schedule, &segment);
  ASSERT_TRUE(status.ok()) << status.error_message();
  absl::SleepFor(absl::Milliseconds(1300));
  clavis::v1::SegmentRequest destroy;
  destroy.set_name(key.name() + "/segments/a");
  status = clavisd.Admin()->DestroySegment(ContextWithDeadline(absl::Seconds(30)).get(), destroy,
                                           &segment);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(segment.state(), clavis::v1::KeyState::DESTROYED);

  EXPECT_FALSE(FileContains(db, a_wrapped)) << "the destroyed segment key is still in " << db;
  EXPECT_TRUE(FileContains(db, b_wrapped)) << "segment b's key should still be stored";
  bool in_wal = false;
  for (const auto& [path, content] : ReadAllFiles(etcd.data_dir(0) + "/member/wal")) {
    in_wal = in_wal || content.find(a_wrapped) != std::string::npos;
  }
  EXPECT_TRUE(in_wal) << "etcd's WAL no longer keeps purged values: update docs/ETCD.md";

  clavis::v1::DecryptRequest dec;
  dec.set_ciphertext_blob(a_key.ciphertext_blob());
  clavis::v1::DecryptResponse plain;
  status = clavisd.Data()->Decrypt(ContextWithDeadline().get(), dec, &plain);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  dec.set_ciphertext_blob(b_key.ciphertext_blob());
  status = clavisd.Data()->Decrypt(ContextWithDeadline().get(), dec, &plain);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST(EtcdBackendTest, UnreachableEtcdFailsTheStartWithAClearMessage) {
  TempDir dir;
  ClavisdOptions options(dir.path() + "/data");
  const std::string endpoint = "127.0.0.1:" + std::to_string(PickFreePort());
  options.extra_args = {"--storage_backend=etcd", "--etcd_endpoints=" + endpoint,
                        "--etcd_request_timeout_ms=500"};
  ClavisdProcess clavisd(options);
  const absl::Status started = clavisd.Start(absl::Seconds(20));
  ASSERT_FALSE(started.ok());
  EXPECT_TRUE(absl::StrContains(started.message(), "no etcd member answered at " + endpoint))
      << started;
}

}  // namespace
}  // namespace clavis::testing
