// clavisd on the etcd backend (docs/ETCD.md): a real etcd member and a real
// clavisd started with --storage_backend etcd. Keys live in etcd; the data
// directory keeps only the root key and the audit log.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
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
