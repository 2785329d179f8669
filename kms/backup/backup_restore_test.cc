// BackupMaker and RestoreBackup: a store backed up online and restored into
// a fresh directory holds exactly the same entries; a bad backup, the wrong
// root key or an existing target never leave a store behind.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/backup/backup_maker.h"
#include "kms/backup/backup_restore.h"
#include "kms/keys/clock.h"
#include "kms/root/key_file_provider.h"
#include "kms/root/root_key_testing.h"
#include "kms/storage/memory_store.h"
#include "kms/storage/rocksdb_store.h"

namespace clavis::kms {
namespace {

using root_testing::ScopedTempDir;
using ::testing::HasSubstr;

std::unique_ptr<RootKeyProvider> NewRoot(const std::string& path) {
  auto root = KeyFileRootKeyProvider::Open(path, /*create_if_missing=*/true);
  EXPECT_TRUE(root.ok()) << root.status();
  return root.ok() ? std::unique_ptr<RootKeyProvider>(*std::move(root)) : nullptr;
}

std::vector<std::pair<std::string, std::string>> Everything(Store& store) {
  auto all = store.Scan("", "", 0);
  EXPECT_TRUE(all.ok()) << all.status();
  std::vector<std::pair<std::string, std::string>> out;
  if (all.ok()) {
    for (KeyValue& entry : *all) out.emplace_back(std::move(entry.key), std::move(entry.value));
  }
  return out;
}

class BackupRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(source_
                      .Put(absl::StrCat(std::string("s\0acme\0crm\0seg-", 15), i),
                           absl::StrCat("segment record ", i, std::string(100, 'x')))
                      .ok());
    }
    ASSERT_TRUE(source_.Put(std::string("m\0audit-keys", 12), std::string(64, '\x7f')).ok());
  }

  // Backs source_ up into <dir>/backup.bin; returns the path.
  std::string MakeBackupFile() {
    BackupMaker maker(&source_, root_.get(), &clock_, dir_.path(), "clavisd test");
    auto prepared = maker.Prepare();
    EXPECT_TRUE(prepared.ok()) << prepared.status();
    if (!prepared.ok()) return "";
    EXPECT_EQ((*prepared)->entries(), 2001u);
    const std::string path = dir_.Join("backup.bin");
    std::ofstream out(path, std::ios::binary);
    uint64_t streamed = 0;
    EXPECT_TRUE((*prepared)
                    ->Stream(
                        [&](absl::string_view piece) {
                          out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
                          streamed += piece.size();
                          return absl::OkStatus();
                        },
                        /*piece_size=*/4096)
                    .ok());
    EXPECT_EQ(streamed, (*prepared)->size());
    return path;
  }

  ScopedTempDir dir_;
  FakeClock clock_;
  MemoryStore source_;
  std::unique_ptr<RootKeyProvider> root_ = NewRoot(dir_.Join("root.key"));
};

TEST_F(BackupRestoreTest, RestoredStoreHoldsExactlyTheBackedUpEntries) {
  const std::string backup = MakeBackupFile();
  const std::string db = dir_.Join("new/db");
  std::filesystem::create_directories(dir_.Join("new"));
  auto restored = RestoreBackup(backup, root_.get(), db);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->entries, 2001u);
  EXPECT_EQ(restored->header.source, "clavisd test");
  EXPECT_FALSE(std::filesystem::exists(db + ".restore-tmp"));

  RocksDbStoreOptions options;
  options.path = db;
  options.create_if_missing = false;
  auto store = RocksDbStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(Everything(**store), Everything(source_));
}

TEST_F(BackupRestoreTest, SpoolFileLeavesNoTrace) {
  MakeBackupFile();
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr("spool")));
  }
}

TEST_F(BackupRestoreTest, ExistingTargetIsRefusedAndLeftAlone) {
  const std::string backup = MakeBackupFile();
  const std::string db = dir_.Join("db");
  std::filesystem::create_directories(db);
  { std::ofstream(db + "/CURRENT") << "keep me"; }
  auto restored = RestoreBackup(backup, root_.get(), db);
  EXPECT_EQ(restored.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(restored.status().message(), HasSubstr("already exists"));
  EXPECT_EQ(root_testing::ReadFile(db + "/CURRENT"), "keep me");
}

TEST_F(BackupRestoreTest, DamagedBackupCreatesNothing) {
  const std::string backup = MakeBackupFile();
  std::string bytes = root_testing::ReadFile(backup);
  // Damage the very end: every entry was already read and written to the
  // temporary store when the final chunk fails.
  bytes[bytes.size() - 3] ^= 0x40;
  root_testing::WriteFile(backup, bytes);
  const std::string db = dir_.Join("db");
  auto restored = RestoreBackup(backup, root_.get(), db);
  EXPECT_EQ(restored.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(std::filesystem::exists(db));
  EXPECT_FALSE(std::filesystem::exists(db + ".restore-tmp"));

  root_testing::WriteFile(backup, bytes.substr(0, bytes.size() / 2));
  restored = RestoreBackup(backup, root_.get(), db);
  EXPECT_THAT(restored.status().message(), HasSubstr("truncated"));
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST_F(BackupRestoreTest, WrongRootKeyCreatesNothing) {
  const std::string backup = MakeBackupFile();
  std::unique_ptr<RootKeyProvider> other = NewRoot(dir_.Join("other.key"));
  const std::string db = dir_.Join("db");
  auto restored = RestoreBackup(backup, other.get(), db);
  EXPECT_EQ(restored.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(restored.status().message(), HasSubstr("cannot unwrap the backup key"));
  EXPECT_FALSE(std::filesystem::exists(db));
}

TEST_F(BackupRestoreTest, MissingBackupFileIsNotFound) {
  auto restored = RestoreBackup(dir_.Join("nope.bin"), root_.get(), dir_.Join("db"));
  EXPECT_EQ(restored.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(BackupRestoreTest, OneBackupAtATimeUntilItsSpoolIsGone) {
  BackupMaker maker(&source_, root_.get(), &clock_, dir_.path(), "clavisd test");
  // A first backup held in the middle of its export.
  std::promise<void> in_export;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  int polls = 0;
  auto first = std::async(std::launch::async, [&] {
    return maker.Prepare([&] {
      if (++polls == 10) {
        in_export.set_value();
        released.wait();
      }
      return false;
    });
  });
  in_export.get_future().wait();
  // Without the limit the second export might wait for the first: a
  // timeout, not a hang.
  auto second = std::async(std::launch::async, [&] { return maker.Prepare(); });
  const bool answered = second.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  release.set_value();
  EXPECT_TRUE(answered) << "the second backup waited for the first";
  auto during_export = second.get();
  EXPECT_EQ(during_export.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(during_export.status().message(),
              HasSubstr("a backup is already running; try again when it has finished"));

  auto made = first.get();
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ((*made)->entries(), 2001u);
  // Still running while its spool waits to be streamed.
  EXPECT_EQ(maker.Prepare().status().code(), absl::StatusCode::kResourceExhausted);
  made->reset();
  auto next = maker.Prepare();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ((*next)->entries(), 2001u);
}

TEST_F(BackupRestoreTest, CancellationStopsTheExportEarlyAndFreesTheMaker) {
  BackupMaker maker(&source_, root_.get(), &clock_, dir_.path(), "clavisd test");
  int polls = 0;
  auto cancelled = maker.Prepare([&] { return ++polls > 5; });
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LE(polls, 7) << "the export went on after the cancellation";
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_THAT(entry.path().filename().string(), ::testing::Not(HasSubstr("spool")));
  }

  EXPECT_EQ(maker.Prepare([] { return true; }).status().code(), absl::StatusCode::kCancelled);
  auto made = maker.Prepare([] { return false; });
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ((*made)->entries(), 2001u);
}

TEST_F(BackupRestoreTest, RocksDbStoreBacksUpWhileWritersRun) {
  RocksDbStoreOptions options;
  options.path = dir_.Join("live");
  auto live = RocksDbStore::Open(options);
  ASSERT_TRUE(live.ok()) << live.status();
  for (int i = 0; i < 500; ++i) ASSERT_TRUE((*live)->Put(absl::StrCat("before-", i), "v").ok());
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) ASSERT_TRUE((*live)->Put(absl::StrCat("during-", i), "v").ok());
  });
  BackupMaker maker(live->get(), root_.get(), &clock_, dir_.path(), "clavisd test");
  auto prepared = maker.Prepare();
  stop = true;
  writer.join();
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  const std::string path = dir_.Join("live.bin");
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE((*prepared)
                    ->Stream([&](absl::string_view piece) {
                      out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
                      return absl::OkStatus();
                    })
                    .ok());
  }
  auto restored = RestoreBackup(path, root_.get(), dir_.Join("restored"));
  ASSERT_TRUE(restored.ok()) << restored.status();
  options.path = dir_.Join("restored");
  auto copy = RocksDbStore::Open(options);
  ASSERT_TRUE(copy.ok()) << copy.status();
  for (int i = 0; i < 500; ++i) {
    auto value = (*copy)->Get(absl::StrCat("before-", i));
    ASSERT_TRUE(value.ok() && value->has_value()) << i;
  }
  // "during-" writes are a prefix of the writer's sequence: the snapshot
  // cut it at one point, it holds no gaps.
  auto during = (*copy)->Scan("during-", "", 0);
  ASSERT_TRUE(during.ok());
  for (size_t i = 0; i < during->size(); ++i) {
    auto value = (*copy)->Get(absl::StrCat("during-", i));
    ASSERT_TRUE(value.ok() && value->has_value()) << "gap at during-" << i;
  }
}

}  // namespace
}  // namespace clavis::kms
