// Backups end to end (docs/BACKUP.md): a backup taken from a running clavisd
// while a client keeps writing, restored offline with `clavisd
// --restore_from` into a fresh data directory, serves every key that was
// acknowledged before the backup started, with the same key check values,
// and decrypts every data key issued before it. Only backup operators may
// take one; a refusal is PERMISSION_DENIED and audited. Restore refuses a
// non-empty target and the wrong root key.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clavis/v1/operations.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/audit/audit_query.h"
#include "tests/harness/run_shell.h"
#include "tests/integration/clavisd_fixture.h"

namespace clavis::testing {
namespace {

using ::testing::HasSubstr;

const std::string kOperator = "tenants/ops/principals/backup";

// The arguments every clavisd of these tests starts with: a backup operator.
std::vector<std::string> OperatorArgs() { return {"--backup_operator", kOperator}; }

// CreateBackup as `who` into `path`: the stream's status.
grpc::Status TakeBackup(ClavisdProcess& clavisd, const std::string& who, const std::string& path,
                        clavis::v1::BackupSummary* summary = nullptr) {
  auto stub = clavis::v1::Operations::NewStub(clavisd.channel(who));
  auto ctx = ContextWithDeadline(absl::Seconds(60));
  auto reader = stub->CreateBackup(ctx.get(), clavis::v1::CreateBackupRequest());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  clavis::v1::BackupChunk chunk;
  while (reader->Read(&chunk)) {
    if (chunk.has_summary() && summary != nullptr) *summary = chunk.summary();
    out << chunk.data();
  }
  return reader->Finish();
}

CommandResult Restore(const std::string& backup, const std::string& data_dir,
                      const std::string& root_key_file) {
  return RunShell(absl::StrCat(CLAVISD_BINARY, " --restore_from ", backup, " --data_dir ", data_dir,
                               " --root_key_file ", root_key_file, " 2>&1"));
}

class BackupTest : public ::testing::Test {
 protected:
  std::unique_ptr<ClavisdProcess> Start(const std::string& data_dir,
                                        std::vector<std::string> extra_args) {
    ClavisdOptions options(data_dir);
    options.extra_args = std::move(extra_args);
    auto clavisd = std::make_unique<ClavisdProcess>(options);
    absl::Status started = clavisd->Start();
    EXPECT_TRUE(started.ok()) << started;
    return clavisd;
  }

  static grpc::Status CreateKey(ClavisdProcess& clavisd, const std::string& key_id,
                                clavis::v1::Key* out) {
    clavis::v1::CreateKeyRequest r;
    r.set_parent("tenants/acme");
    r.set_key_id(key_id);
    r.set_policy(TestKeyPolicy("tenants/acme/keys/" + key_id));
    return clavisd.Admin()->CreateKey(ContextWithDeadline().get(), r, out);
  }

  TempDir dir_;
};

TEST_F(BackupTest, BackupTakenWhileWritingRestoresIntoAFreshDirectory) {
  const std::string a_dir = dir_.path() + "/a";
  std::unique_ptr<ClavisdProcess> a = Start(a_dir, OperatorArgs());
  ASSERT_TRUE(a->running());

  // Keys, rotated versions, segments and data keys from before the backup.
  struct Issued {
    std::string blob;
    std::string plaintext;
    Context context;
  };
  std::vector<Issued> issued;
  std::map<std::string, std::vector<std::string>> check_values;  // key -> per version
  for (int k = 0; k < 3; ++k) {
    const std::string id = absl::StrCat("crm-", k);
    clavis::v1::Key key;
    ASSERT_TRUE(IsOk(CreateKey(*a, id, &key)));
    clavis::v1::RotateKeyRequest rotate;
    rotate.set_name(key.name());
    ASSERT_TRUE(IsOk(a->Admin()->RotateKey(ContextWithDeadline().get(), rotate, &key)));
    for (const auto& v : key.versions()) check_values[key.name()].push_back(v.key_check_value());
    for (int s = 0; s < 4; ++s) {
      clavis::v1::GenerateDataKeyRequest r;
      r.set_key(key.name());
      r.set_segment(absl::StrCat("acme/orders/", s));
      Context context{{"customer", absl::StrCat(k * 10 + s)}};
      SetContext(context, r.mutable_encryption_context());
      clavis::v1::GenerateDataKeyResponse dk;
      ASSERT_TRUE(IsOk(a->Data()->GenerateDataKey(ContextWithDeadline().get(), r, &dk)));
      issued.push_back({dk.ciphertext_blob(), dk.plaintext(), context});
    }
  }

  // A client keeps creating keys while the backup runs.
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::atomic<int> writer_errors{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      const std::string id = absl::StrCat("w-", i);
      clavis::v1::Key key;
      if (!CreateKey(*a, id, &key).ok()) {
        ++writer_errors;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      acknowledged.insert(key.name());
    }
  });
  // Let it get going, then note what was acknowledged before the backup.
  while (true) {
    std::lock_guard<std::mutex> lock(mu);
    if (acknowledged.size() >= 5) break;
  }
  std::set<std::string> before;
  {
    std::lock_guard<std::mutex> lock(mu);
    before = acknowledged;
  }
  const std::string backup = dir_.path() + "/clavis.backup";
  clavis::v1::BackupSummary summary;
  grpc::Status backed_up = TakeBackup(*a, kOperator, backup, &summary);
  stop = true;
  writer.join();
  ASSERT_TRUE(IsOk(backed_up));
  EXPECT_EQ(writer_errors, 0);
  EXPECT_EQ(summary.size_bytes(), std::filesystem::file_size(backup));
  EXPECT_GT(summary.entries(), 3u + before.size());
  EXPECT_EQ(summary.backup_id().size(), 32u);
  EXPECT_THAT(summary.source(), HasSubstr("root key key-file:"));
  // Encrypted: no data key's plaintext nor any key name in clear.
  {
    std::ifstream in(backup, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find("tenants/acme"), std::string::npos);
    EXPECT_EQ(bytes.find("crm-0"), std::string::npos);
  }
  // Keep writing after the backup: none of it may reach the restore.
  clavis::v1::Key after;
  ASSERT_TRUE(IsOk(CreateKey(*a, "after-backup", &after)));
  ASSERT_TRUE(a->Stop().ok());

  const std::string b_dir = dir_.path() + "/b";
  CommandResult restored = Restore(backup, b_dir, a_dir + "/root.key");
  ASSERT_EQ(restored.exit_code, 0) << restored.out;
  EXPECT_THAT(restored.out, HasSubstr(absl::StrCat("restored backup ", summary.backup_id())));
  EXPECT_EQ(std::filesystem::status(b_dir).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_all);

  std::unique_ptr<ClavisdProcess> b =
      Start(b_dir, {"--root_key_file", a_dir + "/root.key", "--no_create"});
  ASSERT_TRUE(b->running());
  for (const auto& [name, values] : check_values) {
    clavis::v1::GetKeyRequest get;
    get.set_name(name);
    clavis::v1::Key key;
    ASSERT_TRUE(IsOk(b->Admin()->GetKey(ContextWithDeadline().get(), get, &key))) << name;
    std::vector<std::string> restored_values;
    for (const auto& v : key.versions()) restored_values.push_back(v.key_check_value());
    EXPECT_EQ(restored_values, values) << name;
  }
  for (const std::string& name : before) {
    clavis::v1::GetKeyRequest get;
    get.set_name(name);
    clavis::v1::Key key;
    EXPECT_TRUE(IsOk(b->Admin()->GetKey(ContextWithDeadline().get(), get, &key)))
        << name << " was acknowledged before the backup started";
  }
  for (const Issued& dk : issued) {
    clavis::v1::DecryptRequest r;
    r.set_ciphertext_blob(dk.blob);
    SetContext(dk.context, r.mutable_encryption_context());
    clavis::v1::DecryptResponse out;
    ASSERT_TRUE(IsOk(b->Data()->Decrypt(ContextWithDeadline().get(), r, &out)));
    EXPECT_TRUE(out.plaintext() == dk.plaintext) << "a data key decrypts to another key";
  }
  clavis::v1::GetKeyRequest get;
  get.set_name(after.name());
  clavis::v1::Key key;
  EXPECT_TRUE(StatusIs(b->Admin()->GetKey(ContextWithDeadline().get(), get, &key),
                       grpc::StatusCode::NOT_FOUND));
  // The restored server keeps working: new keys and data keys.
  ASSERT_TRUE(IsOk(CreateKey(*b, "after-restore", &key)));
  ASSERT_TRUE(b->Stop().ok());
}

TEST_F(BackupTest, OnlyBackupOperatorsMayTakeABackupAndRefusalsAreAudited) {
  const std::string data_dir = dir_.path() + "/data";
  std::unique_ptr<ClavisdProcess> clavisd = Start(data_dir, OperatorArgs());
  ASSERT_TRUE(clavisd->running());
  const std::string tenant_admin = PrincipalName("acme");
  grpc::Status refused = TakeBackup(*clavisd, tenant_admin, dir_.path() + "/refused.backup");
  EXPECT_TRUE(StatusIs(refused, grpc::StatusCode::PERMISSION_DENIED,
                       "may not CreateBackup (a backup holds every tenant's keys"));
  refused = TakeBackup(*clavisd, "tenants/ops/principals/other", dir_.path() + "/refused.backup");
  EXPECT_TRUE(StatusIs(refused, grpc::StatusCode::PERMISSION_DENIED));
  EXPECT_TRUE(IsOk(TakeBackup(*clavisd, kOperator, dir_.path() + "/ok.backup")));
  ASSERT_TRUE(clavisd->Stop().ok());

  std::vector<kms::AuditRecord> backups;
  absl::Status read = kms::ForEachAuditRecord(data_dir + "/audit", kms::AuditFilter(),
                                              [&](const kms::AuditRecord& r) {
                                                if (r.action == "CreateBackup")
                                                  backups.push_back(r);
                                                return true;
                                              });
  ASSERT_TRUE(read.ok()) << read;
  ASSERT_EQ(backups.size(), 3u);
  EXPECT_EQ(backups[0].principal, tenant_admin);
  EXPECT_EQ(backups[0].resource, "store");
  EXPECT_EQ(backups[0].result_code, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(backups[1].result_code, absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(backups[2].principal, kOperator);
  EXPECT_EQ(backups[2].result_code, absl::StatusCode::kOk);
}

TEST_F(BackupTest, NobodyMayTakeABackupByDefault) {
  std::unique_ptr<ClavisdProcess> clavisd = Start(dir_.path() + "/data", {});
  ASSERT_TRUE(clavisd->running());
  EXPECT_TRUE(StatusIs(TakeBackup(*clavisd, kOperator, dir_.path() + "/x.backup"),
                       grpc::StatusCode::PERMISSION_DENIED));
  ASSERT_TRUE(clavisd->Stop().ok());
}

TEST_F(BackupTest, RestoreRefusesANonEmptyTargetTheWrongRootKeyAndABadFile) {
  const std::string data_dir = dir_.path() + "/data";
  std::unique_ptr<ClavisdProcess> clavisd = Start(data_dir, OperatorArgs());
  ASSERT_TRUE(clavisd->running());
  clavis::v1::Key key;
  ASSERT_TRUE(IsOk(CreateKey(*clavisd, "crm", &key)));
  const std::string backup = dir_.path() + "/clavis.backup";
  ASSERT_TRUE(IsOk(TakeBackup(*clavisd, kOperator, backup)));
  ASSERT_TRUE(clavisd->Stop().ok());
  const std::string root_key = data_dir + "/root.key";

  // Into the live data directory itself: never.
  CommandResult r = Restore(backup, data_dir, root_key);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("it is not empty (it holds"));

  // Another root key (a fresh key file of another instance).
  const std::string other_dir = dir_.path() + "/other";
  std::unique_ptr<ClavisdProcess> other = Start(other_dir, {});
  ASSERT_TRUE(other->Stop().ok());
  r = Restore(backup, dir_.path() + "/new1", other_dir + "/root.key");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("cannot unwrap the backup key with this root key"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/new1/db"));

  // A missing root key is never created by a restore.
  r = Restore(backup, dir_.path() + "/new2", dir_.path() + "/no-such.key");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/no-such.key"));

  // A truncated file.
  std::filesystem::copy_file(backup, dir_.path() + "/cut.backup");
  std::filesystem::resize_file(dir_.path() + "/cut.backup",
                               std::filesystem::file_size(backup) - 10);
  r = Restore(dir_.path() + "/cut.backup", dir_.path() + "/new3", root_key);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("truncated"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/new3/db"));

  // A root key file others can read is refused, as at a start.
  std::filesystem::create_directories(dir_.path() + "/new5");
  std::filesystem::permissions(dir_.path() + "/new5", std::filesystem::perms::owner_all);
  std::filesystem::copy_file(root_key, dir_.path() + "/new5/root.key");
  std::filesystem::permissions(
      dir_.path() + "/new5/root.key",
      std::filesystem::perms::group_read | std::filesystem::perms::others_read,
      std::filesystem::perm_options::add);
  r = Restore(backup, dir_.path() + "/new5", dir_.path() + "/new5/root.key");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr("chmod 600"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/new5/db"));

  // The root key file alone in the target is fine (that is how it comes along).
  std::filesystem::create_directories(dir_.path() + "/new4");
  std::filesystem::permissions(dir_.path() + "/new4", std::filesystem::perms::owner_all);
  std::filesystem::copy_file(root_key, dir_.path() + "/new4/root.key");
  // So is what an interrupted restore left behind: it is replaced.
  std::filesystem::create_directories(dir_.path() + "/new4/db.restore-tmp");
  std::ofstream(dir_.path() + "/new4/db.restore-tmp/000001.log") << "half a store";
  r = Restore(backup, dir_.path() + "/new4", dir_.path() + "/new4/root.key");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/new4/db.restore-tmp"));
  EXPECT_TRUE(std::filesystem::exists(dir_.path() + "/new4/db"));
}

}  // namespace
}  // namespace clavis::testing
