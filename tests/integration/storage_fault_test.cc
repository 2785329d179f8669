// Storage faults against a real clavisd (docs/clavisd.md, "Storage faults"):
//  - a flipped byte in a data file (SST) of a stopped clavisd: it refuses to
//    start with DATA_LOSS naming the file (start-up verification on), or,
//    with --verify_storage_at_start=false, serves DATA_LOSS for what it
//    cannot read, and never a different plaintext; then the documented
//    recovery (restore the backup into a new directory, docs/BACKUP.md)
//    serves every key and data key again;
//  - a full disk (a small tmpfs as the data directory, filled up): writes
//    fail with a status that says "storage full", nothing stored is
//    damaged, clavisd stays up, and writes resume without a restart once
//    the space is freed; with the audit log on another disk reads go on
//    meanwhile, with it on the full disk every call fails closed
//    (UNAVAILABLE: a call is never answered without its audit record);
//  - a read-only data directory at start-up: clavisd refuses to start with
//    "storage read-only"; made writable again, it starts with everything.
// The file-system tests need mount(2) (root): they are skipped otherwise.
// (A remount read-only of a directory clavisd has open for writing fails
// with EBUSY, so read-only while running is tested in rocksdb_store_test.)
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clavis/v1/operations.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/harness/run_shell.h"
#include "tests/integration/clavisd_fixture.h"

namespace clavis::testing {
namespace {

namespace fs = std::filesystem;

const std::string kOperator = "tenants/ops/principals/backup";

struct Issued {
  std::string blob;
  std::string plaintext;
  Context context;
};

grpc::Status CreateKey(ClavisdProcess& clavisd, const std::string& key_id) {
  clavis::v1::CreateKeyRequest r;
  r.set_parent("tenants/acme");
  r.set_key_id(key_id);
  r.set_policy(TestKeyPolicy("tenants/acme/keys/" + key_id));
  clavis::v1::Key key;
  return clavisd.Admin()->CreateKey(ContextWithDeadline().get(), r, &key);
}

grpc::Status GenerateDataKey(ClavisdProcess& clavisd, const std::string& key_id, int n,
                             Issued* out) {
  clavis::v1::GenerateDataKeyRequest r;
  r.set_key("tenants/acme/keys/" + key_id);
  r.set_segment(absl::StrCat("acme/orders/", n % 3));
  out->context = {{"customer", absl::StrCat(n)}};
  SetContext(out->context, r.mutable_encryption_context());
  clavis::v1::GenerateDataKeyResponse dk;
  grpc::Status s = clavisd.Data()->GenerateDataKey(ContextWithDeadline().get(), r, &dk);
  out->blob = dk.ciphertext_blob();
  out->plaintext = dk.plaintext();
  return s;
}

grpc::Status Decrypt(ClavisdProcess& clavisd, const Issued& issued, std::string* plaintext) {
  clavis::v1::DecryptRequest r;
  r.set_ciphertext_blob(issued.blob);
  SetContext(issued.context, r.mutable_encryption_context());
  clavis::v1::DecryptResponse out;
  grpc::Status s = clavisd.Data()->Decrypt(ContextWithDeadline().get(), r, &out);
  *plaintext = out.plaintext();
  return s;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The largest *.sst file in `dir`, or empty.
fs::path LargestSst(const std::string& dir) {
  fs::path found;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".sst" &&
        (found.empty() || entry.file_size() > fs::file_size(found))) {
      found = entry.path();
    }
  }
  return found;
}

class StorageFaultTest : public ::testing::Test {
 protected:
  std::unique_ptr<ClavisdProcess> MakeClavisd(const std::string& data_dir,
                                              std::vector<std::string> extra_args) {
    ClavisdOptions options(data_dir);
    options.extra_args = std::move(extra_args);
    return std::make_unique<ClavisdProcess>(options);
  }

  TempDir dir_;
};

TEST_F(StorageFaultTest, CorruptDataFileIsRefusedOrDataLossNeverWrongAndBackupRestores) {
  const std::string data = dir_.path() + "/data";
  const std::string backup = dir_.path() + "/before.backup";
  std::vector<Issued> issued;
  {
    auto clavisd = MakeClavisd(data, {"--backup_operator", kOperator});
    ASSERT_TRUE(clavisd->Start().ok());
    for (int k = 0; k < 3; ++k) {
      const std::string id = absl::StrCat("crm-", k);
      ASSERT_TRUE(IsOk(CreateKey(*clavisd, id)));
      for (int n = 0; n < 20; ++n) {
        Issued dk;
        ASSERT_TRUE(IsOk(GenerateDataKey(*clavisd, id, k * 100 + n, &dk)));
        issued.push_back(dk);
      }
    }
    // The backup the recovery restores (docs/BACKUP.md).
    auto stub = clavis::v1::Operations::NewStub(clavisd->channel(kOperator));
    auto ctx = ContextWithDeadline(absl::Seconds(60));
    auto reader = stub->CreateBackup(ctx.get(), clavis::v1::CreateBackupRequest());
    std::ofstream out(backup, std::ios::binary | std::ios::trunc);
    clavis::v1::BackupChunk chunk;
    while (reader->Read(&chunk)) out << chunk.data();
    ASSERT_TRUE(IsOk(reader->Finish()));
    ASSERT_TRUE(clavisd->Stop().ok());  // flushes everything into SST files
  }

  // One flipped byte in the middle of the largest data file.
  const fs::path sst = LargestSst(data + "/db");
  ASSERT_FALSE(sst.empty()) << "no SST file in " << data << "/db";
  {
    std::string bytes = ReadText(sst.string());
    bytes[bytes.size() / 2] ^= 0x01;
    std::ofstream(sst, std::ios::binary | std::ios::trunc) << bytes;
  }

  // Default (start-up verification on): clavisd refuses to start, saying
  // which file is damaged and what to do.
  {
    auto clavisd = MakeClavisd(data, {"--backup_operator", kOperator});
    absl::Status started = clavisd->Start(absl::Seconds(30));
    ASSERT_FALSE(started.ok()) << "clavisd started on a damaged store";
    const std::string log = ReadText(clavisd->log_file());
    EXPECT_NE(log.find("storage corruption detected"), std::string::npos) << log;
    EXPECT_NE(log.find("(damaged file: " + sst.filename().string() + ")"), std::string::npos)
        << log;
    EXPECT_NE(log.find("Recovering from storage corruption"), std::string::npos) << log;
  }

  // Without the verification: clavisd may start (the damage is in a block
  // read on demand), but answers DATA_LOSS for what it cannot read, never a
  // wrong plaintext.
  {
    auto clavisd =
        MakeClavisd(data, {"--backup_operator", kOperator, "--verify_storage_at_start=false"});
    absl::Status started = clavisd->Start(absl::Seconds(30));
    if (!started.ok()) {
      EXPECT_NE(ReadText(clavisd->log_file()).find("storage corruption detected"),
                std::string::npos);
    } else {
      int data_loss = 0;
      for (const Issued& dk : issued) {
        std::string plaintext;
        grpc::Status s = Decrypt(*clavisd, dk, &plaintext);
        if (s.ok()) {
          ASSERT_TRUE(plaintext == dk.plaintext) << "a data key decrypted to another key";
        } else if (s.error_code() == grpc::StatusCode::DATA_LOSS) {
          ++data_loss;
          EXPECT_TRUE(StatusIs(s, grpc::StatusCode::DATA_LOSS, "storage corruption detected"));
        }
      }
      clavis::v1::ListKeysRequest list;
      list.set_parent("tenants/acme");
      clavis::v1::ListKeysResponse keys;
      grpc::Status listed = clavisd->Admin()->ListKeys(ContextWithDeadline().get(), list, &keys);
      if (!listed.ok()) {
        EXPECT_TRUE(StatusIs(listed, grpc::StatusCode::DATA_LOSS)) << Describe(listed);
        ++data_loss;
      }
      EXPECT_GT(data_loss, 0) << "the damage went unnoticed";
      ASSERT_TRUE(clavisd->Stop().ok());
    }
  }

  // The recovery: keep the damaged directory, restore the backup into a new
  // one at the same path, start on it.
  const std::string damaged = dir_.path() + "/data.damaged";
  fs::rename(data, damaged);
  CommandResult restored =
      RunShell(absl::StrCat(CLAVISD_BINARY, " --restore_from ", backup, " --data_dir ", data,
                            " --root_key_file ", damaged, "/root.key 2>&1"));
  ASSERT_EQ(restored.exit_code, 0) << restored.out;
  auto clavisd = MakeClavisd(data, {"--root_key_file", damaged + "/root.key", "--no_create"});
  ASSERT_TRUE(clavisd->Start().ok());
  for (const Issued& dk : issued) {
    std::string plaintext;
    ASSERT_TRUE(IsOk(Decrypt(*clavisd, dk, &plaintext)));
    ASSERT_TRUE(plaintext == dk.plaintext) << "a data key decrypted to another key";
  }
  EXPECT_TRUE(IsOk(CreateKey(*clavisd, "after-restore")));
}

// A tmpfs of `size` mounted on `dir` (mode 0700) for the test's lifetime,
// unmounted however the test ends.
class Tmpfs {
 public:
  Tmpfs(std::string dir, const std::string& size) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    const std::string options = absl::StrCat("size=", size, ",mode=0700");
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      error_ = absl::StrCat("mount -t tmpfs ", dir_, ": ", std::strerror(errno));
    } else {
      mounted_ = true;
    }
  }
  ~Tmpfs() {
    if (!mounted_) return;
    Remount(/*read_only=*/false);
    // Lazy: a clavisd killed by a failed assertion may still hold files.
    if (::umount2(dir_.c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "umount " << dir_ << ": " << std::strerror(errno);
    }
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // "" or the error.
  std::string Remount(bool read_only) {
    const unsigned long flags = MS_REMOUNT | (read_only ? MS_RDONLY : 0);
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", flags, nullptr) != 0) {
      return absl::StrCat("remount ", read_only ? "ro " : "rw ", dir_, ": ", std::strerror(errno));
    }
    return "";
  }

  // Writes a filler file until the file system is full; its size.
  uint64_t Fill() {
    const std::string path = dir_ + "/filler";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return 0;
    const std::string chunk(4096, 'f');
    uint64_t written = 0;
    while (true) {
      const ssize_t n = ::write(fd, chunk.data(), chunk.size());
      if (n <= 0) break;
      written += static_cast<uint64_t>(n);
    }
    ::close(fd);
    return written;
  }
  void Unfill() { fs::remove(dir_ + "/filler"); }

 private:
  const std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

#define SKIP_UNLESS_MOUNTED(tmpfs)                                                   \
  do {                                                                               \
    if (!(tmpfs).mounted()) {                                                        \
      GTEST_SKIP() << "needs mount(2) (root or CAP_SYS_ADMIN): " << (tmpfs).error(); \
    }                                                                                \
  } while (false)

// Calls `call` until it returns OK or 30 s pass; the last status.
template <typename Call>
grpc::Status UntilOk(Call call) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  grpc::Status s;
  do {
    s = call();
    if (s.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < deadline);
  return s;
}

// The full-disk scenario; `audit_dir` empty: the default, <data_dir>/audit,
// on the full disk.
void RunDiskFull(const std::string& root, const std::string& audit_dir) {
  const std::string data = root + "/data";
  Tmpfs tmpfs(data, "16m");
  SKIP_UNLESS_MOUNTED(tmpfs);
  std::vector<std::string> args;
  if (!audit_dir.empty()) args = {"--audit_dir", audit_dir};
  ClavisdOptions options(data);
  options.extra_args = args;
  ClavisdProcess clavisd(options);
  ASSERT_TRUE(clavisd.Start().ok());
  ASSERT_TRUE(IsOk(CreateKey(clavisd, "before")));
  std::vector<Issued> issued(5);
  for (int n = 0; n < 5; ++n) ASSERT_TRUE(IsOk(GenerateDataKey(clavisd, "before", n, &issued[n])));

  ASSERT_GT(tmpfs.Fill(), 0u);
  // Writes fail cleanly, saying why. The first few may still fit in the
  // slack of the files' last pages; whichever write then hits the full disk
  // first (the store's, or the audit record's) names it, and so do all
  // later ones.
  std::vector<std::string> created_keys;
  grpc::Status created;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = absl::StrCat("during-", i);
    created = CreateKey(clavisd, id);
    if (!created.ok()) break;
    created_keys.push_back(id);
  }
  ASSERT_FALSE(created.ok()) << "1000 keys created on a full disk";
  ASSERT_EQ(created.error_message().find("failed to connect"), std::string::npos)
      << "clavisd died; its log:\n"
      << ReadText(clavisd.log_file());
  for (int i = 0; i < 3; ++i) {
    if (i > 0) created = CreateKey(clavisd, absl::StrCat("refused-", i));
    ASSERT_FALSE(created.ok()) << "a key was created after a refusal on a full disk";
    EXPECT_TRUE(created.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                created.error_code() == grpc::StatusCode::UNAVAILABLE)
        << Describe(created);
    EXPECT_NE(created.error_message().find("storage full"), std::string::npos) << Describe(created);
    Issued dk;
    grpc::Status generated = GenerateDataKey(clavisd, "before", 100 + i, &dk);
    if (generated.ok()) {
      // An existing segment needs no store write: allowed, if audited (the
      // audit log is elsewhere, or found room in its last page).
      issued.push_back(dk);
    } else {
      EXPECT_NE(generated.error_message().find("storage full"), std::string::npos)
          << Describe(generated);
    }
  }
  // Reads: served with the right plaintext when the audit log takes the
  // record; refused (UNAVAILABLE, "audit log") when it cannot. Never wrong.
  for (const Issued& dk : issued) {
    std::string plaintext;
    grpc::Status s = Decrypt(clavisd, dk, &plaintext);
    if (!audit_dir.empty()) {
      ASSERT_TRUE(IsOk(s)) << "reads must go on while only the data disk is full";
    }
    if (s.ok()) {
      ASSERT_TRUE(plaintext == dk.plaintext) << "a data key decrypted to another key";
    } else {
      EXPECT_TRUE(StatusIs(s, grpc::StatusCode::UNAVAILABLE, "audit log")) << Describe(s);
    }
  }
  ASSERT_TRUE(clavisd.running());

  // Space is back: writes resume without a restart.
  tmpfs.Unfill();
  EXPECT_TRUE(IsOk(UntilOk([&] { return CreateKey(clavisd, "after"); })));
  Issued after;
  EXPECT_TRUE(IsOk(GenerateDataKey(clavisd, "after", 1, &after)));
  issued.push_back(after);
  for (const Issued& dk : issued) {
    std::string plaintext;
    ASSERT_TRUE(IsOk(Decrypt(clavisd, dk, &plaintext)));
    ASSERT_TRUE(plaintext == dk.plaintext);
  }
  // Nothing stored was damaged: a restart (with every checksum verified)
  // serves it all, and the audit log verifies.
  ASSERT_TRUE(clavisd.Stop().ok());
  ASSERT_TRUE(clavisd.Start().ok());
  for (const std::string& id : created_keys) {
    clavis::v1::GetKeyRequest get;
    get.set_name("tenants/acme/keys/" + id);
    clavis::v1::Key key;
    EXPECT_TRUE(IsOk(clavisd.Admin()->GetKey(ContextWithDeadline().get(), get, &key)))
        << id << " was acknowledged";
  }
  for (const Issued& dk : issued) {
    std::string plaintext;
    ASSERT_TRUE(IsOk(Decrypt(clavisd, dk, &plaintext)));
    ASSERT_TRUE(plaintext == dk.plaintext);
  }
  ASSERT_TRUE(clavisd.Stop().ok());
  CommandResult verified = RunShell(absl::StrCat(
      CLAVISCTL_BINARY, " audit verify --dir ", audit_dir.empty() ? data + "/audit" : audit_dir,
      " --public-key-file ", data, "/audit-signing.pub 2>&1"));
  EXPECT_EQ(verified.exit_code, 0) << verified.out;
}

// With the audit log elsewhere the store's own writes hit the full disk, and
// so does RocksDB's info LOG in the data directory: clavisd used to abort
// here (RocksDB 7.8 asserts `sync_without_flush_called_` on the next LOG line
// after a failed LOG write; the store now drops LOG lines it cannot write).
TEST_F(StorageFaultTest, DiskFullWithAuditElsewhereFailsWritesKeepsReadsAndResumes) {
  RunDiskFull(dir_.path(), dir_.path() + "/audit");
}

TEST_F(StorageFaultTest, DiskFullWithAuditOnTheSameDiskFailsClosedAndResumes) {
  RunDiskFull(dir_.path(), "");
}

TEST_F(StorageFaultTest, ReadOnlyDataDirectoryAtStartIsRefusedAndStartsOnceWritable) {
  const std::string data = dir_.path() + "/data";
  Tmpfs tmpfs(data, "16m");
  SKIP_UNLESS_MOUNTED(tmpfs);
  ClavisdProcess clavisd{ClavisdOptions(data)};
  ASSERT_TRUE(clavisd.Start().ok());
  ASSERT_TRUE(IsOk(CreateKey(clavisd, "before")));
  Issued dk;
  ASSERT_TRUE(IsOk(GenerateDataKey(clavisd, "before", 1, &dk)));
  ASSERT_TRUE(clavisd.Stop().ok());

  const std::string remounted = tmpfs.Remount(/*read_only=*/true);
  ASSERT_EQ(remounted, "");
  absl::Status started = clavisd.Start(absl::Seconds(30));
  ASSERT_FALSE(started.ok()) << "clavisd started on a read-only data directory";
  EXPECT_NE(started.ToString().find("read-only"), std::string::npos) << started;

  ASSERT_EQ(tmpfs.Remount(/*read_only=*/false), "");
  ASSERT_TRUE(clavisd.Start().ok());
  std::string plaintext;
  ASSERT_TRUE(IsOk(Decrypt(clavisd, dk, &plaintext)));
  EXPECT_TRUE(plaintext == dk.plaintext);
  EXPECT_TRUE(IsOk(CreateKey(clavisd, "after")));
  ASSERT_TRUE(clavisd.Stop().ok());
}

}  // namespace
}  // namespace clavis::testing
