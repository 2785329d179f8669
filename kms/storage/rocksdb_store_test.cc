#include "kms/storage/rocksdb_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
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

}  // namespace
}  // namespace clavis::kms
