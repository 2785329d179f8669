#include "kms/storage/rocksdb_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "kms/storage/store_conformance.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"
#include "rocksdb/options.h"

namespace clavis::kms {
namespace {

namespace fs = std::filesystem;

#define CLAVIS_ASSERT_OK(expr)            \
  do {                                    \
    const absl::Status status_ = (expr);  \
    ASSERT_TRUE(status_.ok()) << status_; \
  } while (false)

RocksDbStoreOptions OptionsFor(std::string path, bool create_if_missing = true) {
  RocksDbStoreOptions options;
  options.path = std::move(path);
  options.create_if_missing = create_if_missing;
  return options;
}

// A fresh directory under the test temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "clavis_rocksdb_XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string data_path() const { return path_ + "/data"; }

 private:
  std::string path_;
};

// A RocksDbStore that owns its temporary directory, for the conformance
// suite: the store closes before the directory is removed.
class TempDirStore : public Store {
 public:
  static std::unique_ptr<Store> Make() {
    auto dir = std::make_unique<TempDir>();
    if (!dir->ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<RocksDbStore>> store =
        RocksDbStore::Open(OptionsFor(dir->data_path()));
    if (!store.ok()) {
      ADD_FAILURE() << store.status();
      return nullptr;
    }
    return std::unique_ptr<Store>(new TempDirStore(std::move(dir), std::move(*store)));
  }

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override {
    return store_->Get(key);
  }
  absl::Status Put(absl::string_view key, absl::string_view value) override {
    return store_->Put(key, value);
  }
  absl::Status Delete(absl::string_view key) override { return store_->Delete(key); }
  absl::StatusOr<std::vector<KeyValue>> Scan(absl::string_view prefix,
                                             absl::string_view start_after, size_t limit) override {
    return store_->Scan(prefix, start_after, limit);
  }
  absl::Status Commit(const WriteBatch& batch) override { return store_->Commit(batch); }
  absl::Status CommitAndPurge(const WriteBatch& batch,
                              const std::vector<std::string>& delete_prefixes) override {
    return store_->CommitAndPurge(batch, delete_prefixes);
  }
  absl::Status ExportSnapshot(const ExportVisitor& visit) override {
    return store_->ExportSnapshot(visit);
  }

 private:
  TempDirStore(std::unique_ptr<TempDir> dir, std::unique_ptr<RocksDbStore> store)
      : dir_(std::move(dir)), store_(std::move(store)) {}

  // Declared first, destroyed last.
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<RocksDbStore> store_;
};

INSTANTIATE_TEST_SUITE_P(RocksDb, StoreConformanceTest,
                         ::testing::Values(StoreFactory(&TempDirStore::Make)));

std::string RandomBytes(size_t size) {
  std::random_device device;
  std::mt19937_64 rng((static_cast<uint64_t>(device()) << 32) | device());
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  return bytes;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The names (relative to `dir`) of the files under `dir`, recursively, whose
// raw bytes contain `needle`.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> found;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    if (ReadFile(entry.path()).find(needle) != std::string::npos) {
      found.push_back(fs::relative(entry.path(), dir).string());
    }
  }
  return found;
}

bool AnyEndsWith(const std::vector<std::string>& names, absl::string_view suffix) {
  for (const std::string& name : names) {
    if (absl::EndsWith(name, suffix)) return true;
  }
  return false;
}

class RocksDbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()) << "mkdtemp failed"; }

  absl::StatusOr<std::unique_ptr<RocksDbStore>> Open() {
    return RocksDbStore::Open(OptionsFor(dir_.data_path()));
  }
  std::unique_ptr<RocksDbStore> MustOpen() {
    absl::StatusOr<std::unique_ptr<RocksDbStore>> store = Open();
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  TempDir dir_;
};

TEST_F(RocksDbStoreTest, DataSurvivesCloseAndReopen) {
  {
    std::unique_ptr<RocksDbStore> store = MustOpen();
    ASSERT_NE(store, nullptr);
    CLAVIS_ASSERT_OK(store->Put("k1", "v1"));
    CLAVIS_ASSERT_OK(store->Put("gone", "x"));
    WriteBatch batch;
    batch.Expect("k2", std::nullopt).Put("k2", "v2").Delete("gone");
    CLAVIS_ASSERT_OK(store->Commit(batch));
  }
  std::unique_ptr<RocksDbStore> store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->Get("k1"), "v1");
  EXPECT_EQ(*store->Get("k2"), "v2");
  EXPECT_EQ(*store->Get("gone"), std::nullopt);
}

TEST_F(RocksDbStoreTest, CloseLeavesNoWalToReplay) {
  {
    std::unique_ptr<RocksDbStore> store = MustOpen();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 100; ++i) CLAVIS_ASSERT_OK(store->Put(absl::StrCat("k", i), "value"));
  }
  // The memtable went into a table file at close, so every WAL file left is
  // empty: the next open replays nothing.
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_.data_path())) {
    if (entry.path().extension() == ".log") {
      EXPECT_EQ(entry.file_size(), 0u) << entry.path();
    }
  }
  std::unique_ptr<RocksDbStore> store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->Get("k99"), "value");
}

TEST_F(RocksDbStoreTest, WriteStatsCountWritesAndTheWalSyncsTheyShared) {
  std::unique_ptr<RocksDbStore> store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->write_stats().writes, 0u);
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        WriteBatch batch;
        batch.Put(absl::StrCat("t", t, "-", i), "v");
        EXPECT_TRUE(store->Commit(batch).ok());
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  const RocksDbWriteStats stats = store->write_stats();
  EXPECT_EQ(stats.writes, 400u);
  // Every write was synced, alone or in a group with others.
  EXPECT_GE(stats.wal_syncs, 1u);
  EXPECT_LE(stats.wal_syncs, 400u);
}

TEST_F(RocksDbStoreTest, OpenCreatesMissingDirectoriesWithMode0700) {
  const std::string path = dir_.path() + "/nested/deeper/data";
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(OptionsFor(path));
  ASSERT_TRUE(store.ok()) << store.status();
  for (const std::string& created : {dir_.path() + "/nested", path}) {
    struct stat st;
    ASSERT_EQ(::stat(created.c_str(), &st), 0) << created;
    EXPECT_EQ(st.st_mode & 0777, 0700u) << created;
  }
}

TEST_F(RocksDbStoreTest, OpenWithoutCreateIfMissingFindsNoDatabaseAsNotFound) {
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store =
      RocksDbStore::Open(OptionsFor(dir_.data_path(), /*create_if_missing=*/false));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound) << store.status();
  EXPECT_EQ(RocksDbStore::Open(OptionsFor("")).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RocksDbStoreTest, SecondOpenOfAnOpenDirectoryFailsWithFailedPrecondition) {
  std::unique_ptr<RocksDbStore> first = MustOpen();
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<RocksDbStore>> second = Open();
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_TRUE(absl::StrContains(second.status().message(),
                                absl::StrCat("data directory ", dir_.data_path(), " is in use")))
      << second.status();
  // The failed open did not disturb the first store, and closing it frees
  // the directory.
  CLAVIS_ASSERT_OK(first->Put("k", "v"));
  first.reset();
  std::unique_ptr<RocksDbStore> third = MustOpen();
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(*third->Get("k"), "v");
}

TEST_F(RocksDbStoreTest, OpenOfADirectoryLockedByAnotherProcessFailsWithFailedPrecondition) {
  MustOpen().reset();  // Creates the database and its LOCK file.
  const std::string lock_file = dir_.data_path() + "/LOCK";
  // A child process takes the same fcntl lock RocksDB takes, reports, and
  // holds it until the parent closes the pipe. After fork() the child only
  // makes async-signal-safe calls.
  int to_parent[2];
  int to_child[2];
  ASSERT_EQ(::pipe(to_parent), 0);
  ASSERT_EQ(::pipe(to_child), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(to_child[1]);
    const int fd = ::open(lock_file.c_str(), O_RDWR);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    const char locked = fd >= 0 && ::fcntl(fd, F_SETLK, &lock) == 0 ? '1' : '0';
    (void)!::write(to_parent[1], &locked, 1);
    char done;
    (void)!::read(to_child[0], &done, 1);  // Returns when the parent closes.
    ::_exit(0);
  }
  ::close(to_parent[1]);
  ::close(to_child[0]);
  char locked = '0';
  const bool reported = ::read(to_parent[0], &locked, 1) == 1;
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = Open();
  ::close(to_child[1]);  // Lets the child exit and drop its lock.
  ::close(to_parent[0]);
  ::waitpid(child, nullptr, 0);

  ASSERT_TRUE(reported && locked == '1') << "the child could not lock " << lock_file;
  ASSERT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(),
                                absl::StrCat("data directory ", dir_.data_path(), " is in use")))
      << store.status();
  EXPECT_NE(MustOpen(), nullptr) << "the directory stays locked after the other process exited";
}

// Moves everything in the database to the bottommost level by opening it
// with RocksDB directly, to give a purge old values at more than one level.
void CompactEverything(const std::string& path) {
  rocksdb::Options options;
  options.compression = rocksdb::kNoCompression;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  s = db->CompactRange(compact, nullptr, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(db->Close().ok());
}

TEST_F(RocksDbStoreTest, CommitAndPurgeLeavesNoCopyOfOldValuesInAnyFile) {
  // Distinctive random values, each stored where a purge has to reach it:
  // compacted to the bottommost level, in a level-0 SST, or only in the WAL
  // and memtable; overwritten or deleted; by key or under a prefix.
  const std::string bottom_deleted = RandomBytes(64);      // keys/1, deleted.
  const std::string bottom_overwritten = RandomBytes(64);  // keys/2, then...
  const std::string l0_overwritten = RandomBytes(64);      // ...this, then...
  const std::string wal_overwritten = RandomBytes(64);     // ...this, then replaced.
  const std::string bottom_in_prefix = RandomBytes(64);    // keys/3/a
  const std::string l0_in_prefix = RandomBytes(64);        // keys/3/b
  const std::string wal_in_prefix = RandomBytes(64);       // keys/3/c
  const std::string neighbour = RandomBytes(64);           // keys/30, kept.
  const std::vector<std::string> purged = {bottom_deleted,  bottom_overwritten, l0_overwritten,
                                           wal_overwritten, bottom_in_prefix,   l0_in_prefix,
                                           wal_in_prefix};
  {
    std::unique_ptr<RocksDbStore> store = MustOpen();
    ASSERT_NE(store, nullptr);
    CLAVIS_ASSERT_OK(store->Put("keys/1", bottom_deleted));
    CLAVIS_ASSERT_OK(store->Put("keys/2", bottom_overwritten));
    CLAVIS_ASSERT_OK(store->Put("keys/3/a", bottom_in_prefix));
    CLAVIS_ASSERT_OK(store->Put("keys/30", neighbour));
  }
  // Reopening replays the WAL into an SST; compacting moves it down.
  ASSERT_NO_FATAL_FAILURE(CompactEverything(dir_.data_path()));
  {
    std::unique_ptr<RocksDbStore> store = MustOpen();
    ASSERT_NE(store, nullptr);
    CLAVIS_ASSERT_OK(store->Put("keys/2", l0_overwritten));
    CLAVIS_ASSERT_OK(store->Put("keys/3/b", l0_in_prefix));
  }
  std::unique_ptr<RocksDbStore> store = MustOpen();  // The level-0 SST.
  ASSERT_NE(store, nullptr);
  CLAVIS_ASSERT_OK(store->Put("keys/2", wal_overwritten));
  CLAVIS_ASSERT_OK(store->Put("keys/3/c", wal_in_prefix));

  // Before the purge every value is on disk where intended (else this test
  // would prove nothing).
  const std::string dir = dir_.data_path();
  for (const std::string& value : {bottom_deleted, bottom_in_prefix, l0_overwritten}) {
    EXPECT_TRUE(AnyEndsWith(FilesContaining(dir, value), ".sst"));
  }
  for (const std::string& value : {wal_overwritten, wal_in_prefix}) {
    EXPECT_TRUE(AnyEndsWith(FilesContaining(dir, value), ".log"));
  }
  for (const std::string& value : purged) {
    EXPECT_FALSE(FilesContaining(dir, value).empty()) << "a value to purge is not on disk";
  }

  WriteBatch batch;
  batch.Expect("keys/2", wal_overwritten).Delete("keys/1").Put("keys/2", "destroyed");
  CLAVIS_ASSERT_OK(store->CommitAndPurge(batch, {"keys/3/"}));

  for (size_t i = 0; i < purged.size(); ++i) {
    const std::vector<std::string> files = FilesContaining(dir, purged[i]);
    EXPECT_TRUE(files.empty()) << "purged value " << i << " is still in "
                               << (files.empty() ? "" : files.front());
  }
  EXPECT_FALSE(FilesContaining(dir, neighbour).empty()) << "the file search finds nothing at all";
  EXPECT_EQ(*store->Get("keys/1"), std::nullopt);
  EXPECT_EQ(*store->Get("keys/2"), "destroyed");
  EXPECT_EQ(*store->Get("keys/30"), neighbour);
  EXPECT_TRUE(store->Scan("keys/3/", "", 0)->empty());

  // Still gone, and the rest still there, after a restart.
  store.reset();
  store = MustOpen();
  ASSERT_NE(store, nullptr);
  for (const std::string& value : purged) EXPECT_TRUE(FilesContaining(dir, value).empty());
  EXPECT_EQ(*store->Get("keys/2"), "destroyed");
  EXPECT_EQ(*store->Get("keys/30"), neighbour);
}

TEST_F(RocksDbStoreTest, PurgeDuringAnExportWaitsForItWithoutStallingReaders) {
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  std::unique_ptr<RocksDbStore> store = MustOpen();
  ASSERT_NE(store, nullptr);
  CLAVIS_ASSERT_OK(store->Put("a", "1"));
  CLAVIS_ASSERT_OK(store->Put("b", "2"));
  CLAVIS_ASSERT_OK(store->Put("victim", "secret"));

  // An export held inside its visitor until `release`.
  std::promise<void> in_visitor;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool first = true;
  std::future<absl::Status> exported = std::async(std::launch::async, [&] {
    return store->ExportSnapshot([&](absl::string_view, absl::string_view) {
      if (first) {
        first = false;
        in_visitor.set_value();
        released.wait();
      }
      return absl::OkStatus();
    });
  });
  // Whatever happens below, let the export (and so the purge) finish.
  struct Release {
    std::promise<void>* release;
    bool done = false;
    void operator()() {
      if (!done) release->set_value();
      done = true;
    }
    ~Release() { (*this)(); }
  } release_export{&release};
  in_visitor.get_future().wait();

  std::future<absl::Status> purged = std::async(std::launch::async, [&] {
    WriteBatch batch;
    batch.Delete("victim");
    return store->CommitAndPurge(batch, {});
  });
  // Time for the purge to commit, flush, compact and reach the point where
  // it must wait for the export.
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(purged.wait_for(milliseconds(0)), std::future_status::timeout)
      << "the purge did not wait for the export";

  // Readers and writers go on while the purge waits.
  std::future<absl::StatusOr<std::optional<std::string>>> got =
      std::async(std::launch::async, [&] { return store->Get("a"); });
  EXPECT_EQ(got.wait_for(seconds(5)), std::future_status::ready)
      << "a Get stalled behind the purge waiting for the export";
  std::future<absl::Status> committed = std::async(std::launch::async, [&] {
    WriteBatch batch;
    batch.Expect("b", "2").Put("b", "3");
    return store->Commit(batch);
  });
  EXPECT_EQ(committed.wait_for(seconds(5)), std::future_status::ready)
      << "a Commit with preconditions stalled behind the purge";
  EXPECT_EQ(purged.wait_for(milliseconds(0)), std::future_status::timeout);

  release_export();
  CLAVIS_ASSERT_OK(exported.get());
  ASSERT_EQ(purged.wait_for(seconds(60)), std::future_status::ready);
  CLAVIS_ASSERT_OK(purged.get());
  absl::StatusOr<std::optional<std::string>> a = got.get();
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, "1");
  CLAVIS_ASSERT_OK(committed.get());
  EXPECT_EQ(*store->Get("victim"), std::nullopt);
  EXPECT_EQ(*store->Get("b"), "3");
}

TEST_F(RocksDbStoreTest, CorruptedSstFileIsReportedAsDataLossNotAsWrongData) {
  constexpr int kKeys = 2000;
  auto value_of = [](int i) { return absl::StrFormat("value-%06d-%s", i, std::string(90, 'v')); };
  {
    std::unique_ptr<RocksDbStore> store = MustOpen();
    ASSERT_NE(store, nullptr);
    WriteBatch batch;
    for (int i = 0; i < kKeys; ++i) batch.Put(absl::StrFormat("key/%06d", i), value_of(i));
    CLAVIS_ASSERT_OK(store->Commit(batch));
  }
  MustOpen().reset();  // Replays the WAL into an SST file.

  // Flip bytes in the middle of the largest SST file, inside its data blocks.
  fs::path sst;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_.data_path())) {
    if (entry.path().extension() == ".sst" &&
        (sst.empty() || entry.file_size() > fs::file_size(sst))) {
      sst = entry.path();
    }
  }
  ASSERT_FALSE(sst.empty()) << "no SST file was written";
  std::string contents = ReadFile(sst);
  ASSERT_GT(contents.size(), 100000u);
  for (size_t i = contents.size() / 2; i < contents.size() / 2 + 16; ++i) contents[i] ^= 0x5a;
  std::ofstream(sst, std::ios::binary | std::ios::trunc) << contents;

  absl::StatusOr<std::unique_ptr<RocksDbStore>> opened = Open();
  if (!opened.ok()) {
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
    return;
  }
  RocksDbStore& store = **opened;
  int data_loss = 0;
  for (int i = 0; i < kKeys; ++i) {
    absl::StatusOr<std::optional<std::string>> value = store.Get(absl::StrFormat("key/%06d", i));
    if (value.ok()) {
      ASSERT_EQ(*value, value_of(i)) << "wrong data served for key " << i;
    } else {
      ASSERT_EQ(value.status().code(), absl::StatusCode::kDataLoss) << value.status();
      EXPECT_TRUE(absl::StrContains(value.status().message(), "storage corruption detected in"))
          << value.status();
      ++data_loss;
    }
  }
  EXPECT_GT(data_loss, 0) << "the corruption went unnoticed";
  EXPECT_EQ(store.Scan("key/", "", 0).status().code(), absl::StatusCode::kDataLoss);
}

// ---------------------------------------------------------------------------
// Storage faults: corruption of data files and WAL, disk full, read-only.

constexpr int kFaultKeys = 2000;
std::string FaultKey(int i) { return absl::StrFormat("key/%06d", i); }
std::string FaultValue(int i) { return absl::StrFormat("value-%06d-%s", i, std::string(90, 'v')); }

// The largest file in `dir` with extension `ext` (".sst", ".log"), or empty.
fs::path LargestFile(const std::string& dir, const std::string& ext) {
  fs::path found;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ext &&
        (found.empty() || entry.file_size() > fs::file_size(found))) {
      found = entry.path();
    }
  }
  return found;
}

void XorBytes(const fs::path& file, size_t offset, size_t count) {
  std::string contents = ReadFile(file);
  ASSERT_LE(offset + count, contents.size());
  for (size_t i = offset; i < offset + count; ++i) contents[i] ^= 0x5a;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << contents;
}

// Writes kFaultKeys keys into one SST file of the store in `dir`.
void WriteOneSstFile(RocksDbStoreTest* test, const std::string& dir) {
  {
    absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(OptionsFor(dir));
    ASSERT_TRUE(store.ok()) << store.status();
    WriteBatch batch;
    for (int i = 0; i < kFaultKeys; ++i) batch.Put(FaultKey(i), FaultValue(i));
    CLAVIS_ASSERT_OK((*store)->Commit(batch));
  }  // The close flushes the memtable into an SST file.
  (void)test;
}

TEST_F(RocksDbStoreTest, CorruptionMessageNamesTheDamagedFileAndTheRecovery) {
  ASSERT_NO_FATAL_FAILURE(WriteOneSstFile(this, dir_.data_path()));
  const fs::path sst = LargestFile(dir_.data_path(), ".sst");
  ASSERT_FALSE(sst.empty());
  ASSERT_NO_FATAL_FAILURE(XorBytes(sst, fs::file_size(sst) / 2, 1));  // one data block byte

  absl::StatusOr<std::unique_ptr<RocksDbStore>> opened = Open();
  ASSERT_TRUE(opened.ok()) << "a damaged data block is only read on demand: " << opened.status();
  absl::Status first_error;
  for (int i = 0; i < kFaultKeys && first_error.ok(); ++i) {
    absl::StatusOr<std::optional<std::string>> value = (*opened)->Get(FaultKey(i));
    if (value.ok()) {
      ASSERT_EQ(*value, FaultValue(i)) << "wrong data served for key " << i;
    } else {
      first_error = value.status();
    }
  }
  ASSERT_EQ(first_error.code(), absl::StatusCode::kDataLoss) << first_error;
  const std::string name = sst.filename().string();
  EXPECT_TRUE(absl::StrContains(first_error.message(), "(damaged file: " + name + ")"))
      << first_error;
  EXPECT_TRUE(absl::StrContains(first_error.message(), "Recovering from storage corruption"))
      << first_error;
  EXPECT_FALSE(absl::StrContains(first_error.message(), "value-")) << "a value in a message";
}

TEST_F(RocksDbStoreTest, VerifyChecksumsAtOpenRefusesADamagedDataFile) {
  ASSERT_NO_FATAL_FAILURE(WriteOneSstFile(this, dir_.data_path()));
  RocksDbStoreOptions options = OptionsFor(dir_.data_path());
  options.verify_checksums_at_open = true;
  {
    // Undamaged: opens.
    absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  const fs::path sst = LargestFile(dir_.data_path(), ".sst");
  ASSERT_NO_FATAL_FAILURE(XorBytes(sst, fs::file_size(sst) / 2, 1));
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(options);
  ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(),
                                "(damaged file: " + sst.filename().string() + ")"))
      << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(), "verifying the checksums"))
      << store.status();
}

// Writes `count` synced records, one per key, with RocksDB directly and
// closes without a flush, as a crash would leave them: all in the WAL.
void WriteWalOnly(const std::string& dir, int count) {
  fs::create_directories(dir);
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  for (int i = 0; i < count; ++i) {
    ASSERT_TRUE(db->Put(sync, FaultKey(i), FaultValue(i)).ok());
  }
  ASSERT_TRUE(db->Close().ok());
}

TEST_F(RocksDbStoreTest, TornLastWalRecordIsDroppedAndEveryEarlierWriteKept) {
  constexpr int kRecords = 200;
  ASSERT_NO_FATAL_FAILURE(WriteWalOnly(dir_.data_path(), kRecords));
  const fs::path wal = LargestFile(dir_.data_path(), ".log");
  ASSERT_FALSE(wal.empty());
  // A crash while appending the last record: it is cut in the middle.
  fs::resize_file(wal, fs::file_size(wal) - FaultValue(0).size() / 2);

  std::unique_ptr<RocksDbStore> store = MustOpen();
  ASSERT_NE(store, nullptr) << "a torn WAL tail must not prevent start-up";
  for (int i = 0; i + 1 < kRecords; ++i) {
    absl::StatusOr<std::optional<std::string>> value = store->Get(FaultKey(i));
    ASSERT_TRUE(value.ok()) << value.status();
    ASSERT_EQ(*value, FaultValue(i)) << "acknowledged write " << i << " lost";
  }
  EXPECT_EQ(*store->Get(FaultKey(kRecords - 1)), std::nullopt) << "the torn record was applied";
}

TEST_F(RocksDbStoreTest, DamagedWalRecordBeforeTheTailFailsOpenWithDataLoss) {
  constexpr int kRecords = 200;
  ASSERT_NO_FATAL_FAILURE(WriteWalOnly(dir_.data_path(), kRecords));
  const fs::path wal = LargestFile(dir_.data_path(), ".log");
  ASSERT_FALSE(wal.empty());
  // One byte in a record in the middle: the records after it were
  // acknowledged, so dropping them silently (point-in-time recovery) would
  // lose acknowledged keys. Open must refuse instead.
  ASSERT_NO_FATAL_FAILURE(XorBytes(wal, fs::file_size(wal) / 2, 1));
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = Open();
  ASSERT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(),
                                "(damaged file: " + wal.filename().string() + ")"))
      << store.status();
}

TEST_F(RocksDbStoreTest, WalCutShortInTheMiddleFailsOpenOrKeepsAPrefix) {
  // A WAL that lost its second half (a truncated copy, a file system that
  // lost blocks) looks exactly like a torn tail: RocksDB cannot tell them
  // apart and keeps the records before the cut. Documented in
  // docs/clavisd.md; nothing after the cut is served, nothing wrong either.
  constexpr int kRecords = 200;
  ASSERT_NO_FATAL_FAILURE(WriteWalOnly(dir_.data_path(), kRecords));
  const fs::path wal = LargestFile(dir_.data_path(), ".log");
  fs::resize_file(wal, fs::file_size(wal) / 2 + 3);
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = Open();
  if (!store.ok()) {
    EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
    return;
  }
  int kept = 0;
  for (int i = 0; i < kRecords; ++i) {
    absl::StatusOr<std::optional<std::string>> value = (*store)->Get(FaultKey(i));
    ASSERT_TRUE(value.ok()) << value.status();
    if (!value->has_value()) break;
    ASSERT_EQ(**value, FaultValue(i));
    ++kept;
  }
  for (int i = kept; i < kRecords; ++i) {
    ASSERT_EQ(*(*store)->Get(FaultKey(i)), std::nullopt) << "a hole: record " << i;
  }
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, kRecords);
}

// A file system that fails writes on demand, as a full disk (ENOSPC) or a
// read-only file system (EROFS) does, with the statuses RocksDB's POSIX
// file system returns for them.
class FaultyFileSystem : public rocksdb::FileSystemWrapper {
 public:
  enum class Fault { kNone, kNoSpace, kReadOnly };

  FaultyFileSystem() : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "FaultyFileSystem"; }

  // Which files a fault hits: all, all but the store's write probe (a disk
  // with a little room), or only new table (.sst) files (a flush).
  enum class Scope { kAll, kAllButProbe, kTableFiles };

  void set_fault(Fault fault, Scope scope = Scope::kAll) {
    scope_.store(scope);
    fault_.store(fault);
  }
  // Makes every Sync of the store's write probe file take `delay`.
  void set_probe_sync_delay(std::chrono::milliseconds delay) { probe_sync_delay_.store(delay); }

  rocksdb::IOStatus Check(const std::string& what, const std::string& file) const {
    switch (scope_.load()) {
      case Scope::kAll:
        break;
      case Scope::kAllButProbe:
        if (absl::StrContains(file, "clavis-write-probe")) return rocksdb::IOStatus::OK();
        break;
      case Scope::kTableFiles:
        if (!absl::EndsWith(file, ".sst")) return rocksdb::IOStatus::OK();
        break;
    }
    switch (fault_.load()) {
      case Fault::kNone:
        return rocksdb::IOStatus::OK();
      case Fault::kNoSpace: {
        rocksdb::IOStatus s = rocksdb::IOStatus::NoSpace(what, std::strerror(ENOSPC));
        s.SetRetryable(true);
        return s;
      }
      case Fault::kReadOnly:
        return rocksdb::IOStatus::IOError(what, std::strerror(EROFS));
    }
    return rocksdb::IOStatus::OK();
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (fault_.load() == Fault::kReadOnly) return Check("While open a file for appending: " + f, f);
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(f, options, &file, dbg);
    if (s.ok()) *r = std::make_unique<File>(std::move(file), this, f);
    return s;
  }
  // RocksDB's info LOG, made as the POSIX file system makes it (an EnvLogger
  // over one of its writable files), so that it sits on the faulty disk too,
  // as the LOG in the data directory does on a real one. (FileSystemWrapper
  // would hand this to the default file system, out of reach of the faults.)
  // env_of_this: the Env whose file system this is.
  void set_env(rocksdb::Env* env_of_this) { env_ = env_of_this; }
  rocksdb::IOStatus NewLogger(const std::string& f, const rocksdb::IOOptions& /*options*/,
                              std::shared_ptr<rocksdb::Logger>* r,
                              rocksdb::IODebugContext* /*dbg*/) override {
    return rocksdb::status_to_io_status(rocksdb::NewEnvLogger(f, env_, r));
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    if (fault_.load() == Fault::kReadOnly) return Check("While open a file for appending: " + f, f);
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->ReopenWritableFile(f, options, &file, dbg);
    if (s.ok()) *r = std::make_unique<File>(std::move(file), this, f);
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, const FaultyFileSystem* fs,
         std::string name)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(file)), fs_(fs), name_(std::move(name)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->Check("While appending to file: " + name_, name_); !s.ok())
        return s;
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->Check("While appending to file: " + name_, name_); !s.ok())
        return s;
      return target()->Append(data, options, info, dbg);
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->Check("While flushing file: " + name_, name_); !s.ok())
        return s;
      return target()->Flush(options, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->Check("While fdatasync: " + name_, name_); !s.ok()) return s;
      if (absl::StrContains(name_, "clavis-write-probe")) {
        std::this_thread::sleep_for(fs_->probe_sync_delay_.load());
      }
      return target()->Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (rocksdb::IOStatus s = fs_->Check("While fsync: " + name_, name_); !s.ok()) return s;
      return target()->Fsync(options, dbg);
    }

   private:
    const FaultyFileSystem* fs_;
    const std::string name_;
  };

  std::atomic<Fault> fault_{Fault::kNone};
  std::atomic<Scope> scope_{Scope::kAll};
  std::atomic<std::chrono::milliseconds> probe_sync_delay_{std::chrono::milliseconds(0)};
  rocksdb::Env* env_ = nullptr;
};

class RocksDbStoreWriteFaultTest : public RocksDbStoreTest {
 protected:
  void SetUp() override {
    RocksDbStoreTest::SetUp();
    faulty_ = std::make_shared<FaultyFileSystem>();
    env_ = rocksdb::NewCompositeEnv(faulty_);
    faulty_->set_env(env_.get());
  }
  std::unique_ptr<RocksDbStore> MustOpenFaulty() {
    RocksDbStoreOptions options = OptionsFor(dir_.data_path());
    options.env = env_.get();
    absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }
  // Put of `key` until it succeeds or `deadline` passes; the last status.
  static absl::Status PutUntilOk(RocksDbStore& store, const std::string& key,
                                 const std::string& value) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    absl::Status s;
    do {
      s = store.Put(key, value);
      if (s.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return s;
  }

  std::shared_ptr<FaultyFileSystem> faulty_;
  std::unique_ptr<rocksdb::Env> env_;
};

TEST_F(RocksDbStoreWriteFaultTest, DiskFullFailsWritesCleanlyKeepsReadsAndResumesWithoutReopen) {
  std::unique_ptr<RocksDbStore> store = MustOpenFaulty();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) CLAVIS_ASSERT_OK(store->Put(FaultKey(i), FaultValue(i)));

  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace);
  absl::Status put = store->Put(FaultKey(1000), FaultValue(1000));
  ASSERT_EQ(put.code(), absl::StatusCode::kResourceExhausted) << put;
  EXPECT_TRUE(absl::StartsWith(put.message(), "storage full: ")) << put;
  EXPECT_FALSE(absl::StrContains(put.message(), "value-")) << "a value in a message";
  // Every later write fails the same way, each kind of write, quickly.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(store->Put(FaultKey(1001), "x").code(), absl::StatusCode::kResourceExhausted);
  }
  WriteBatch batch;
  batch.Expect(FaultKey(1002), std::nullopt).Put(FaultKey(1002), "x");
  EXPECT_EQ(store->Commit(batch).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store->Delete(FaultKey(0)).code(), absl::StatusCode::kResourceExhausted);
  // Still full after a resume interval: the resume attempt fails too.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(store->Put(FaultKey(1003), "x").code(), absl::StatusCode::kResourceExhausted);
  // Reads go on, and see exactly what was acknowledged.
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::optional<std::string>> value = store->Get(FaultKey(i));
    ASSERT_TRUE(value.ok()) << value.status();
    ASSERT_EQ(*value, FaultValue(i));
  }
  absl::StatusOr<std::vector<KeyValue>> scanned = store->Scan("key/", "", 0);
  ASSERT_TRUE(scanned.ok()) << scanned.status();
  EXPECT_EQ(scanned->size(), 100u);

  // Space is back: writes resume without a reopen.
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  CLAVIS_ASSERT_OK(PutUntilOk(*store, FaultKey(2000), FaultValue(2000)));
  CLAVIS_ASSERT_OK(store->Put(FaultKey(2001), FaultValue(2001)));
  store.reset();

  // Nothing acknowledged was lost, nothing refused appeared.
  store = MustOpen();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*store->Get(FaultKey(i)), FaultValue(i));
  EXPECT_EQ(*store->Get(FaultKey(2000)), FaultValue(2000));
  EXPECT_EQ(*store->Get(FaultKey(2001)), FaultValue(2001));
  for (int i = 1000; i <= 1003; ++i) EXPECT_EQ(*store->Get(FaultKey(i)), std::nullopt) << i;
}

TEST_F(RocksDbStoreWriteFaultTest, DiskFullDuringAPurgeIsReportedAndThePurgeCanBeFinished) {
  std::unique_ptr<RocksDbStore> store = MustOpenFaulty();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 10; ++i) CLAVIS_ASSERT_OK(store->Put(FaultKey(i), FaultValue(i)));
  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace);
  WriteBatch batch;
  batch.Delete(FaultKey(3));
  absl::Status purged = store->CommitAndPurge(batch, {});
  EXPECT_EQ(purged.code(), absl::StatusCode::kResourceExhausted) << purged;
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  CLAVIS_ASSERT_OK(PutUntilOk(*store, FaultKey(100), "after"));
  CLAVIS_ASSERT_OK(store->CommitAndPurge(batch, {}));
  EXPECT_EQ(*store->Get(FaultKey(3)), std::nullopt);
  EXPECT_EQ(*store->Get(FaultKey(4)), FaultValue(4));
}

// A full disk fails RocksDB's info LOG (in the data directory) as well as
// the WAL: clavisd aborted on that (RocksDB 7.8 asserts
// `sync_without_flush_called_` on the next LOG line once a LOG write has
// failed), with writers on several threads, a purge and RocksDB's own
// logging (the write error, the close) all writing LOG lines meanwhile.
// Nothing may abort; writes fail cleanly and resume once there is room.
TEST_F(RocksDbStoreWriteFaultTest, DiskFullAlsoFailingTheInfoLogNeverAbortsAndResumes) {
  std::unique_ptr<RocksDbStore> store = MustOpenFaulty();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) CLAVIS_ASSERT_OK(store->Put(FaultKey(i), FaultValue(i)));

  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace);
  constexpr int kThreads = 4;
  std::vector<std::thread> writers;
  std::atomic<int> unexpected{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        absl::Status s = store->Put(FaultKey(1000 + t * 100 + i), FaultValue(i));
        if (s.code() != absl::StatusCode::kResourceExhausted) ++unexpected;
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(unexpected.load(), 0);
  WriteBatch purge;
  purge.Delete(FaultKey(3));
  EXPECT_EQ(store->CommitAndPurge(purge, {}).code(), absl::StatusCode::kResourceExhausted);
  // A resume attempt while still full (the probe fails), then a close and a
  // reopen while still full: RocksDB logs through all of them.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(store->Put(FaultKey(2000), "x").code(), absl::StatusCode::kResourceExhausted);
  store.reset();
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  store = MustOpenFaulty();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(*store->Get(FaultKey(i)), FaultValue(i));

  // Full again, then room again: the store closes the failed database and
  // reopens it by itself (RocksDB logs the close on the failed LOG).
  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace);
  EXPECT_EQ(store->Put(FaultKey(2001), "x").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store->Put(FaultKey(2002), "x").code(), absl::StatusCode::kResourceExhausted);
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  CLAVIS_ASSERT_OK(PutUntilOk(*store, FaultKey(2003), FaultValue(2003)));
  CLAVIS_ASSERT_OK(store->CommitAndPurge(purge, {}));
  EXPECT_EQ(*store->Get(FaultKey(3)), std::nullopt);
  EXPECT_EQ(*store->Get(FaultKey(2003)), FaultValue(2003));
  for (int i = 2000; i <= 2002; ++i) EXPECT_EQ(*store->Get(FaultKey(i)), std::nullopt) << i;
}

TEST_F(RocksDbStoreWriteFaultTest, ReadOnlyFileSystemFailsWritesKeepsReadsAndResumes) {
  std::unique_ptr<RocksDbStore> store = MustOpenFaulty();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) CLAVIS_ASSERT_OK(store->Put(FaultKey(i), FaultValue(i)));

  faulty_->set_fault(FaultyFileSystem::Fault::kReadOnly);
  absl::Status put = store->Put(FaultKey(1000), FaultValue(1000));
  ASSERT_EQ(put.code(), absl::StatusCode::kUnavailable) << put;
  EXPECT_TRUE(absl::StartsWith(put.message(), "storage read-only: ")) << put;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::optional<std::string>> value = store->Get(FaultKey(i));
    ASSERT_TRUE(value.ok()) << value.status();
    ASSERT_EQ(*value, FaultValue(i));
  }

  // Writable again: writes resume without a reopen by the caller (the
  // store reopens RocksDB itself: a failed WAL write is fatal to it).
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  CLAVIS_ASSERT_OK(PutUntilOk(*store, FaultKey(1001), "x"));
  store.reset();
  store = MustOpen();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*store->Get(FaultKey(i)), FaultValue(i));
  EXPECT_EQ(*store->Get(FaultKey(1000)), std::nullopt);
  CLAVIS_ASSERT_OK(store->Put(FaultKey(1002), "after reopen"));
}

// Fails the test process (instead of hanging ctest) unless disarmed within
// `timeout`: for tests whose failure mode is a deadlock.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds timeout, std::string what)
      : thread_([this, timeout, what = std::move(what)] {
          std::unique_lock<std::mutex> lock(mu_);
          if (!cv_.wait_for(lock, timeout, [this] { return done_; })) {
            std::cerr << "watchdog: " << what << " did not finish in " << timeout.count()
                      << " s (deadlock)\n";
            std::_Exit(1);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The interleaving of review finding A: an export has passed the export
// gate; a purge (holding db_mu_ shared) waits at the gate for it; a
// recovery after a write failure waits for db_mu_ exclusive. With the
// export taking db_mu_ after the gate, it then blocked behind the waiting
// recovery: a three-way deadlock. Everything must finish.
TEST_F(RocksDbStoreWriteFaultTest, ExportPurgeAndRecoveryTogetherDoNotDeadlock) {
  using std::chrono::milliseconds;
  std::promise<void> gate_passed;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> first{true};
  RocksDbStoreOptions options = OptionsFor(dir_.data_path());
  options.env = env_.get();
  options.export_gate_passed_hook = [&] {
    if (first.exchange(false)) {
      gate_passed.set_value();
      released.wait();
    }
  };
  absl::StatusOr<std::unique_ptr<RocksDbStore>> opened = RocksDbStore::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  RocksDbStore& store = **opened;
  for (int i = 0; i < 100; ++i) CLAVIS_ASSERT_OK(store.Put(FaultKey(i), FaultValue(i)));
  Watchdog watchdog(std::chrono::seconds(120), "export + purge + recovery");

  int exported_keys = 0;
  std::future<absl::Status> exported = std::async(std::launch::async, [&] {
    return store.ExportSnapshot([&](absl::string_view, absl::string_view) {
      ++exported_keys;
      return absl::OkStatus();
    });
  });
  gate_passed.get_future().wait();  // The export is past the gate.
  std::future<absl::Status> purged = std::async(std::launch::async, [&] {
    WriteBatch batch;
    batch.Delete(FaultKey(3));
    return store.CommitAndPurge(batch, {});
  });
  // Time for the purge to commit, flush, compact and wait at the gate.
  std::this_thread::sleep_for(milliseconds(500));
  ASSERT_EQ(purged.wait_for(milliseconds(0)), std::future_status::timeout)
      << "the purge did not wait for the export";
  // A write failure, then room again: the next write recovers, which waits
  // for db_mu_ exclusive behind the export and the purge.
  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace);
  EXPECT_EQ(store.Put(FaultKey(1000), "x").code(), absl::StatusCode::kResourceExhausted);
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  std::future<absl::Status> recovered =
      std::async(std::launch::async, [&] { return store.Put(FaultKey(1001), "after"); });
  std::this_thread::sleep_for(milliseconds(300));  // The recovery queues for db_mu_.
  release.set_value();

  CLAVIS_ASSERT_OK(exported.get());
  EXPECT_EQ(exported_keys, 99);  // Its view was made after the purge's commit.
  CLAVIS_ASSERT_OK(purged.get());
  CLAVIS_ASSERT_OK(recovered.get());
  EXPECT_EQ(*store.Get(FaultKey(3)), std::nullopt);
  EXPECT_EQ(*store.Get(FaultKey(1001)), "after");
}

// The recovery's probe (a synced 256 KiB write, slow on a struggling disk)
// holds no lock readers need: reads go on while it runs.
TEST_F(RocksDbStoreWriteFaultTest, RecoveryProbeDoesNotStallReads) {
  using std::chrono::milliseconds;
  std::unique_ptr<RocksDbStore> store = MustOpenFaulty();
  ASSERT_NE(store, nullptr);
  CLAVIS_ASSERT_OK(store->Put(FaultKey(0), FaultValue(0)));
  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace);
  EXPECT_EQ(store->Put(FaultKey(1), "x").code(), absl::StatusCode::kResourceExhausted);
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  faulty_->set_probe_sync_delay(milliseconds(3000));
  std::future<absl::Status> recovered =
      std::async(std::launch::async, [&] { return store->Put(FaultKey(2), "after"); });
  std::this_thread::sleep_for(milliseconds(300));  // The probe is syncing.
  std::future<absl::StatusOr<std::optional<std::string>>> got =
      std::async(std::launch::async, [&] { return store->Get(FaultKey(0)); });
  EXPECT_EQ(got.wait_for(milliseconds(1500)), std::future_status::ready)
      << "a Get stalled behind the recovery probe";
  EXPECT_EQ(recovered.wait_for(milliseconds(0)), std::future_status::timeout);
  CLAVIS_ASSERT_OK(recovered.get());
  absl::StatusOr<std::optional<std::string>> value = got.get();
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, FaultValue(0));
}

// Room for the probe but not for a memtable flush: the reopen after a write
// failure must not flush the replayed WAL (it used to, failed with NoSpace,
// and left the store closed to reads too). Writes resume at once.
TEST_F(RocksDbStoreWriteFaultTest, ReopenAfterAWriteFailureNeedsNoFlush) {
  std::unique_ptr<RocksDbStore> store = MustOpenFaulty();
  ASSERT_NE(store, nullptr);
  // In the memtable and WAL only: the reopen replays them.
  for (int i = 0; i < 100; ++i) CLAVIS_ASSERT_OK(store->Put(FaultKey(i), FaultValue(i)));
  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace);
  EXPECT_EQ(store->Put(FaultKey(1000), "x").code(), absl::StatusCode::kResourceExhausted);
  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace, FaultyFileSystem::Scope::kTableFiles);
  CLAVIS_ASSERT_OK(store->Put(FaultKey(1001), FaultValue(1001)));
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::optional<std::string>> value = store->Get(FaultKey(i));
    ASSERT_TRUE(value.ok()) << value.status();
    ASSERT_EQ(*value, FaultValue(i));
  }
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  store.reset();
  store = MustOpen();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(*store->Get(FaultKey(i)), FaultValue(i));
  EXPECT_EQ(*store->Get(FaultKey(1000)), std::nullopt);
  EXPECT_EQ(*store->Get(FaultKey(1001)), FaultValue(1001));
}

// Room for the probe but not for the reopen itself (its new WAL and
// MANIFEST): the store falls back to a read-only open, so reads go on
// throughout while writes fail "storage full", and resumes writes once
// there is room.
TEST_F(RocksDbStoreWriteFaultTest, FailedReopenFallsBackToReadOnlyAndReadsGoOn) {
  std::unique_ptr<RocksDbStore> store = MustOpenFaulty();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 100; ++i) CLAVIS_ASSERT_OK(store->Put(FaultKey(i), FaultValue(i)));
  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace);
  EXPECT_EQ(store->Put(FaultKey(1000), "x").code(), absl::StatusCode::kResourceExhausted);
  faulty_->set_fault(FaultyFileSystem::Fault::kNoSpace, FaultyFileSystem::Scope::kAllButProbe);
  auto expect_reads = [&](size_t keys) {
    for (int i = 0; i < 100; ++i) {
      absl::StatusOr<std::optional<std::string>> value = store->Get(FaultKey(i));
      ASSERT_TRUE(value.ok()) << value.status();
      ASSERT_EQ(*value, FaultValue(i));
    }
    absl::StatusOr<std::vector<KeyValue>> scanned = store->Scan("key/", "", 0);
    ASSERT_TRUE(scanned.ok()) << scanned.status();
    EXPECT_EQ(scanned->size(), keys);
    int exported = 0;
    CLAVIS_ASSERT_OK(store->ExportSnapshot([&](absl::string_view, absl::string_view) {
      ++exported;
      return absl::OkStatus();
    }));
    EXPECT_EQ(exported, static_cast<int>(keys));
  };
  // Two recovery attempts (probe passes, reopen fails), reads after each.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // kResumeInterval
    absl::Status put = store->Put(FaultKey(1001), "x");
    ASSERT_EQ(put.code(), absl::StatusCode::kResourceExhausted) << put;
    EXPECT_TRUE(absl::StartsWith(put.message(), "storage full: ")) << put;
    expect_reads(100);
    WriteBatch batch;
    batch.Put(FaultKey(1002), "x");
    EXPECT_EQ(store->Commit(batch).code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(store->CommitAndPurge(batch, {}).code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(store->Delete(FaultKey(0)).code(), absl::StatusCode::kResourceExhausted);
  }
  faulty_->set_fault(FaultyFileSystem::Fault::kNone);
  CLAVIS_ASSERT_OK(PutUntilOk(*store, FaultKey(2000), FaultValue(2000)));
  expect_reads(101);
  WriteBatch purge;
  purge.Delete(FaultKey(3));
  CLAVIS_ASSERT_OK(store->CommitAndPurge(purge, {}));
  store.reset();
  store = MustOpen();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->Get(FaultKey(2000)), FaultValue(2000));
  EXPECT_EQ(*store->Get(FaultKey(3)), std::nullopt);
  EXPECT_EQ(*store->Get(FaultKey(4)), FaultValue(4));
  for (int i = 1000; i <= 1002; ++i) EXPECT_EQ(*store->Get(FaultKey(i)), std::nullopt) << i;
}

TEST_F(RocksDbStoreWriteFaultTest, ReadOnlyDirectoryFailsOpenAsUnavailable) {
  { ASSERT_NE(MustOpenFaulty(), nullptr); }
  faulty_->set_fault(FaultyFileSystem::Fault::kReadOnly);
  RocksDbStoreOptions options = OptionsFor(dir_.data_path());
  options.env = env_.get();
  absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(options);
  ASSERT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_TRUE(absl::StartsWith(store.status().message(), "storage read-only: ")) << store.status();
}

// Not a test: how long verify_checksums_at_open takes on a store of 100,000
// entries of the size clavisd stores (about 200 bytes). Run with
// --gtest_also_run_disabled_tests --gtest_filter='*VerifyChecksumsAtOpenCost*'.
TEST_F(RocksDbStoreTest, DISABLED_VerifyChecksumsAtOpenCost) {
  constexpr int kEntries = 100000;
  {
    std::unique_ptr<RocksDbStore> store = MustOpen();
    ASSERT_NE(store, nullptr);
    for (int chunk = 0; chunk < kEntries / 1000; ++chunk) {
      WriteBatch batch;
      for (int i = chunk * 1000; i < (chunk + 1) * 1000; ++i) {
        batch.Put(absl::StrFormat("tenants/t/keys/k%07d", i), RandomBytes(200));
      }
      CLAVIS_ASSERT_OK(store->Commit(batch));
    }
  }
  uint64_t bytes = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_.data_path())) {
    if (entry.path().extension() == ".sst") bytes += entry.file_size();
  }
  for (bool verify : {false, true, false, true}) {
    RocksDbStoreOptions options = OptionsFor(dir_.data_path());
    options.verify_checksums_at_open = verify;
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(options);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(store.ok()) << store.status();
    std::cout << "open of " << kEntries << " entries (" << bytes / 1024
              << " KiB of SST), verify=" << verify << ": "
              << std::chrono::duration_cast<std::chrono::microseconds>(took).count() / 1000.0
              << " ms\n";
  }
}

}  // namespace
}  // namespace clavis::kms
