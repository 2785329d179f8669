#include "kms/storage/store_conformance.h"

#include <atomic>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace clavis::kms {
namespace {

using std::string_literals::operator""s;  // "a\0b"s keeps the NUL.

#define CLAVIS_ASSERT_OK(expr)            \
  do {                                    \
    const absl::Status status_ = (expr);  \
    ASSERT_TRUE(status_.ok()) << status_; \
  } while (false)
#define CLAVIS_EXPECT_OK(expr)            \
  do {                                    \
    const absl::Status status_ = (expr);  \
    EXPECT_TRUE(status_.ok()) << status_; \
  } while (false)

// Get that turns backend errors into test failures.
std::optional<std::string> Read(Store& store, absl::string_view key) {
  absl::StatusOr<std::optional<std::string>> value = store.Get(key);
  EXPECT_TRUE(value.ok()) << "Get(\"" << absl::CHexEscape(key) << "\"): " << value.status();
  return value.ok() ? *value : std::nullopt;
}

// Scan that turns backend errors into test failures and returns the keys.
std::vector<std::string> ScanKeys(Store& store, absl::string_view prefix,
                                  absl::string_view start_after = "", size_t limit = 0) {
  absl::StatusOr<std::vector<KeyValue>> entries = store.Scan(prefix, start_after, limit);
  EXPECT_TRUE(entries.ok()) << "Scan(\"" << absl::CHexEscape(prefix) << "\"): " << entries.status();
  std::vector<std::string> keys;
  if (entries.ok()) {
    for (const KeyValue& entry : *entries) keys.push_back(entry.key);
  }
  return keys;
}

void PutAll(Store& store, const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    CLAVIS_ASSERT_OK(store.Put(key, "value of " + absl::CHexEscape(key)));
  }
}

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  return bytes;
}

}  // namespace

void StoreConformanceTest::SetUp() {
  store_ = GetParam()();
  ASSERT_NE(store_, nullptr) << "the StoreFactory failed to make a store";
}

void StoreConformanceTest::TearDown() { store_.reset(); }

// --- Get, Put, Delete -------------------------------------------------------

TEST_P(StoreConformanceTest, GetOfAbsentKeyReturnsNullopt) {
  EXPECT_EQ(Read(store(), "missing"), std::nullopt);
}

TEST_P(StoreConformanceTest, GetReturnsWhatPutStored) {
  CLAVIS_ASSERT_OK(store().Put("k", "v"));
  EXPECT_EQ(Read(store(), "k"), "v");
}

TEST_P(StoreConformanceTest, PutOverwritesThePreviousValue) {
  CLAVIS_ASSERT_OK(store().Put("k", "first"));
  CLAVIS_ASSERT_OK(store().Put("k", "second"));
  EXPECT_EQ(Read(store(), "k"), "second");
}

TEST_P(StoreConformanceTest, DeleteRemovesTheKeyAndOnlyIt) {
  CLAVIS_ASSERT_OK(store().Put("k", "v"));
  CLAVIS_ASSERT_OK(store().Put("k2", "v2"));
  CLAVIS_ASSERT_OK(store().Delete("k"));
  EXPECT_EQ(Read(store(), "k"), std::nullopt);
  EXPECT_EQ(Read(store(), "k2"), "v2");
}

TEST_P(StoreConformanceTest, DeleteOfAbsentKeySucceeds) {
  CLAVIS_EXPECT_OK(store().Delete("never-written"));
  EXPECT_EQ(Read(store(), "never-written"), std::nullopt);
}

TEST_P(StoreConformanceTest, KeysAndValuesAreArbitraryBytes) {
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"\0"s, "nul key"},    {"a"s, "\0"s},
      {"a\0"s, "\0\xff\0"s}, {"a\0b"s, "\xff\xfe\x80\x7f"s},
      {"\xff"s, "\xff"s},    {"\xff\xff\0\xff"s, "x\0y\0z"s},
  };
  for (const auto& [key, value] : entries) CLAVIS_ASSERT_OK(store().Put(key, value));
  for (const auto& [key, value] : entries) {
    EXPECT_EQ(Read(store(), key), value) << "key " << absl::CHexEscape(key);
  }
  // "a", "a\0" and "a\0b" are three different keys: NUL does not end a key.
  CLAVIS_ASSERT_OK(store().Delete("a\0"s));
  EXPECT_EQ(Read(store(), "a"), "\0"s);
  EXPECT_EQ(Read(store(), "a\0"s), std::nullopt);
  EXPECT_EQ(Read(store(), "a\0b"s), "\xff\xfe\x80\x7f"s);
}

TEST_P(StoreConformanceTest, EmptyValueIsStoredAndDiffersFromAbsent) {
  CLAVIS_ASSERT_OK(store().Put("empty", ""));
  EXPECT_EQ(Read(store(), "empty"), std::string());
  EXPECT_EQ(ScanKeys(store(), "empty"), std::vector<std::string>{"empty"});
}

TEST_P(StoreConformanceTest, OneMebibyteValueRoundTrips) {
  const std::string large = RandomBytes(1 << 20, /*seed=*/42);
  CLAVIS_ASSERT_OK(store().Put("large", large));
  const std::optional<std::string> read = Read(store(), "large");
  ASSERT_TRUE(read.has_value());
  EXPECT_TRUE(*read == large) << "the 1 MiB value came back changed";
}

// --- Scan -------------------------------------------------------------------

TEST_P(StoreConformanceTest, ScanReturnsKeysUnderThePrefixInBytewiseOrder) {
  PutAll(store(), {"p/\xff", "p/a", "o/z", "p/\x01", "p", "p0", "p/B", "q/", "p/a/b", "p/"});
  // Bytewise means unsigned: 0xff sorts after 'a', 'B' before 'a'.
  EXPECT_EQ(ScanKeys(store(), "p/"),
            (std::vector<std::string>{"p/", "p/\x01", "p/B", "p/a", "p/a/b", "p/\xff"}));
}

TEST_P(StoreConformanceTest, ScanReturnsTheValues) {
  CLAVIS_ASSERT_OK(store().Put("s/1", "one"));
  CLAVIS_ASSERT_OK(store().Put("s/2", "two\0two"s));
  absl::StatusOr<std::vector<KeyValue>> entries = store().Scan("s/", "", 0);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].key, "s/1");
  EXPECT_EQ((*entries)[0].value, "one");
  EXPECT_EQ((*entries)[1].key, "s/2");
  EXPECT_EQ((*entries)[1].value, "two\0two"s);
}

TEST_P(StoreConformanceTest, ScanStartsStrictlyAfterStartAfter) {
  PutAll(store(), {"p/a", "p/b", "p/c", "p/d"});
  EXPECT_EQ(ScanKeys(store(), "p/", "p/b"), (std::vector<std::string>{"p/c", "p/d"}));
  // A start_after that is not a key starts at the next key.
  EXPECT_EQ(ScanKeys(store(), "p/", "p/bb"), (std::vector<std::string>{"p/c", "p/d"}));
  // One before the prefix's range starts at the prefix.
  EXPECT_EQ(ScanKeys(store(), "p/", "a"), (std::vector<std::string>{"p/a", "p/b", "p/c", "p/d"}));
  EXPECT_EQ(ScanKeys(store(), "p/", "p/d"), std::vector<std::string>{});
  EXPECT_EQ(ScanKeys(store(), "p/", "z"), std::vector<std::string>{});
}

TEST_P(StoreConformanceTest, ScanReturnsAtMostLimitEntriesAndZeroMeansNoLimit) {
  PutAll(store(), {"p/1", "p/2", "p/3", "p/4", "p/5"});
  EXPECT_EQ(ScanKeys(store(), "p/", "", 2), (std::vector<std::string>{"p/1", "p/2"}));
  EXPECT_EQ(ScanKeys(store(), "p/", "p/4", 2), (std::vector<std::string>{"p/5"}));
  EXPECT_EQ(ScanKeys(store(), "p/", "", 0).size(), 5u);
}

TEST_P(StoreConformanceTest, PagingWithStartAfterAndLimitVisitsEveryKeyOnce) {
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) expected.push_back(absl::StrFormat("page/%03d", i));
  PutAll(store(), expected);
  std::vector<std::string> seen;
  std::string start_after;
  for (int pages = 0; pages < 10; ++pages) {
    std::vector<std::string> page = ScanKeys(store(), "page/", start_after, 7);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 7u);
    seen.insert(seen.end(), page.begin(), page.end());
    start_after = page.back();
  }
  EXPECT_EQ(seen, expected);
}

TEST_P(StoreConformanceTest, ScanOfPrefixEndingInFfStopsAtTheEndOfThePrefix) {
  PutAll(store(), {"a\xfe", "a\xfe\xff", "a\xff", "a\xff\x00"s, "a\xff\xff", "a\xff\xff\xff\x01",
                   "b", "b\x00"s});
  EXPECT_EQ(ScanKeys(store(), "a\xff"),
            (std::vector<std::string>{"a\xff", "a\xff\x00"s, "a\xff\xff", "a\xff\xff\xff\x01"}));
}

TEST_P(StoreConformanceTest, ScanOfAllFfPrefixReturnsTheKeysUnderIt) {
  PutAll(store(), {"\xfe", "\xfe\xff", "\xff", "\xff\x01", "\xff\xff"});
  EXPECT_EQ(ScanKeys(store(), "\xff"), (std::vector<std::string>{"\xff", "\xff\x01", "\xff\xff"}));
  EXPECT_EQ(ScanKeys(store(), "\xff", "\xff\x01"), (std::vector<std::string>{"\xff\xff"}));
}

TEST_P(StoreConformanceTest, ScanWithEmptyPrefixReturnsEveryKey) {
  PutAll(store(), {"b", "\0"s, "a", "\xff"});
  EXPECT_EQ(ScanKeys(store(), ""), (std::vector<std::string>{"\0"s, "a", "b", "\xff"}));
}

TEST_P(StoreConformanceTest, ScanWithNoMatchingKeyReturnsNothing) {
  EXPECT_EQ(ScanKeys(store(), "p/"), std::vector<std::string>{});
  PutAll(store(), {"o", "p", "p0", "q/"});
  EXPECT_EQ(ScanKeys(store(), "p/"), std::vector<std::string>{});
}

TEST_P(StoreConformanceTest, ScanSeesAConsistentSnapshot) {
  // A writer moves one token along t/000, t/001, ... with atomic commits;
  // every scan must see exactly one token, never zero or two.
  constexpr int kMoves = 100;
  CLAVIS_ASSERT_OK(store().Put("t/000", "token"));
  std::atomic<bool> done{false};
  std::atomic<int> writer_errors{0};
  std::thread writer([&] {
    for (int i = 0; i < kMoves; ++i) {
      WriteBatch batch;
      batch.Expect(absl::StrFormat("t/%03d", i), "token")
          .Delete(absl::StrFormat("t/%03d", i))
          .Put(absl::StrFormat("t/%03d", i + 1), "token");
      if (!store().Commit(batch).ok()) ++writer_errors;
    }
    done = true;
  });
  int scans = 0;
  bool consistent = true;
  while (consistent && (!done || scans == 0)) {
    std::vector<std::string> keys = ScanKeys(store(), "t/");
    consistent = keys.size() == 1;
    EXPECT_TRUE(consistent) << "scan " << scans << " saw " << keys.size()
                            << " tokens, a state no commit produced";
    ++scans;
  }
  writer.join();
  EXPECT_EQ(writer_errors, 0);
  EXPECT_EQ(ScanKeys(store(), "t/"), std::vector<std::string>{absl::StrFormat("t/%03d", kMoves)});
}

// --- Commit -----------------------------------------------------------------

TEST_P(StoreConformanceTest, CommitAppliesEveryOperation) {
  CLAVIS_ASSERT_OK(store().Put("old", "x"));
  WriteBatch batch;
  batch.Put("a", "1").Put("b", "2").Delete("old").Delete("never-written");
  CLAVIS_ASSERT_OK(store().Commit(batch));
  EXPECT_EQ(Read(store(), "a"), "1");
  EXPECT_EQ(Read(store(), "b"), "2");
  EXPECT_EQ(Read(store(), "old"), std::nullopt);
}

TEST_P(StoreConformanceTest, CommitWithAFailedPreconditionWritesNothing) {
  CLAVIS_ASSERT_OK(store().Put("guard", "actual"));
  CLAVIS_ASSERT_OK(store().Put("victim", "keep me"));
  WriteBatch batch;
  batch.Expect("holds", std::nullopt)
      .Expect("guard", "expected")
      .Put("new", "1")
      .Delete("victim")
      .Put("guard", "overwritten");
  const absl::Status status = store().Commit(batch);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_EQ(Read(store(), "new"), std::nullopt);
  EXPECT_EQ(Read(store(), "victim"), "keep me");
  EXPECT_EQ(Read(store(), "guard"), "actual");
}

TEST_P(StoreConformanceTest, AbortedCommitNamesTheFailedKeyPrintably) {
  const std::string key = "keys/\x01\xff\0id"s;
  CLAVIS_ASSERT_OK(store().Put(key, "secret value"));
  WriteBatch batch;
  batch.Expect(key, std::nullopt).Put("x", "y");
  const absl::Status status = store().Commit(batch);
  ASSERT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), absl::CHexEscape(key))) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "changed concurrently")) << status;
  // Values may be key material: they never appear in error messages.
  EXPECT_FALSE(absl::StrContains(status.message(), "secret value")) << status;
}

TEST_P(StoreConformanceTest, ExpectAbsentHoldsOnlyWhileTheKeyIsAbsent) {
  WriteBatch create;
  create.Expect("k", std::nullopt).Put("k", "v1");
  CLAVIS_ASSERT_OK(store().Commit(create));
  EXPECT_EQ(store().Commit(create).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Read(store(), "k"), "v1");

  // An empty value is present, not absent.
  CLAVIS_ASSERT_OK(store().Put("empty", ""));
  WriteBatch on_empty;
  on_empty.Expect("empty", std::nullopt).Put("empty", "v");
  EXPECT_EQ(store().Commit(on_empty).code(), absl::StatusCode::kAborted);

  // After a delete the key is absent again.
  CLAVIS_ASSERT_OK(store().Delete("k"));
  WriteBatch recreate;
  recreate.Expect("k", std::nullopt).Put("k", "v2");
  CLAVIS_ASSERT_OK(store().Commit(recreate));
  EXPECT_EQ(Read(store(), "k"), "v2");
}

TEST_P(StoreConformanceTest, ExpectValueHoldsOnlyForExactlyThatValue) {
  CLAVIS_ASSERT_OK(store().Put("k", "value"));
  for (const std::optional<std::string>& wrong :
       std::vector<std::optional<std::string>>{"other", "valu", "value\0"s, "", std::nullopt}) {
    WriteBatch batch;
    batch.Expect("k", wrong).Put("k", "changed");
    EXPECT_EQ(store().Commit(batch).code(), absl::StatusCode::kAborted)
        << "expected " << (wrong ? absl::CHexEscape(*wrong) : "absent");
  }
  EXPECT_EQ(Read(store(), "k"), "value");

  WriteBatch batch;
  batch.Expect("k", "value").Put("k", "changed");
  CLAVIS_ASSERT_OK(store().Commit(batch));
  EXPECT_EQ(Read(store(), "k"), "changed");

  WriteBatch on_absent;
  on_absent.Expect("absent", "").Put("absent", "x");
  EXPECT_EQ(store().Commit(on_absent).code(), absl::StatusCode::kAborted);
}

TEST_P(StoreConformanceTest, CommitWithOnlyPreconditionsChecksThemAndWritesNothing) {
  CLAVIS_ASSERT_OK(store().Put("k", "v"));
  WriteBatch holds;
  holds.Expect("k", "v").Expect("absent", std::nullopt);
  CLAVIS_EXPECT_OK(store().Commit(holds));
  WriteBatch fails;
  fails.Expect("k", "other");
  EXPECT_EQ(store().Commit(fails).code(), absl::StatusCode::kAborted);
  CLAVIS_EXPECT_OK(store().Commit(WriteBatch()));
  EXPECT_EQ(ScanKeys(store(), ""), std::vector<std::string>{"k"});
}

// A batch with many preconditions (a re-wrap of neighbouring segments, which
// backends may check differently from a few): every kind of precondition,
// in any order, on keys with gaps, deletions and other keys between them.
TEST_P(StoreConformanceTest, ManyPreconditionsAreEachChecked) {
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back(absl::StrFormat("seg/%04d", i));
  for (int i = 0; i < 200; i += 2) CLAVIS_ASSERT_OK(store().Put(keys[i], "v" + keys[i]));
  for (int i = 0; i < 200; i += 10) CLAVIS_ASSERT_OK(store().Delete(keys[i]));
  CLAVIS_ASSERT_OK(store().Put("other/x", "o"));
  CLAVIS_ASSERT_OK(store().Put("seg/0007x", "between"));  // between seg/0007 and seg/0008
  auto expected = [&](int i) -> std::optional<std::string> {
    if (i % 2 != 0 || i % 10 == 0) return std::nullopt;
    return "v" + keys[i];
  };
  // Keys in a scrambled order, some twice, plus one far away.
  auto holding_batch = [&] {
    WriteBatch batch;
    for (int step = 0; step < 200; ++step) {
      const int i = (step * 37) % 200;
      batch.Expect(keys[i], expected(i));
      if (step % 50 == 0) batch.Expect(keys[i], expected(i));
    }
    batch.Expect("other/x", "o");
    return batch;
  };
  WriteBatch all_hold = holding_batch();
  all_hold.Put("done", "1");
  CLAVIS_ASSERT_OK(store().Commit(all_hold));
  EXPECT_EQ(Read(store(), "done"), "1");

  // Any single wrong precondition, wherever it sorts, aborts the whole batch.
  const std::vector<std::pair<int, std::optional<std::string>>> wrong = {
      {0, ""},                   // deleted, expected present
      {1, "v"},                  // never written, expected present
      {2, std::nullopt},         // present, expected absent
      {4, "vseg/0004 "},         // a different value
      {8, "vseg/0008"s + '\0'},  // a longer value
      {199, "x"},                // the last key
  };
  for (const auto& [index, value] : wrong) {
    WriteBatch batch = holding_batch();
    batch.Expect(keys[index], value).Put("done", "2").Delete("other/x");
    EXPECT_EQ(store().Commit(batch).code(), absl::StatusCode::kAborted) << keys[index];
  }
  WriteBatch between = holding_batch();
  between.Expect("seg/0007x", std::nullopt).Put("done", "2");
  EXPECT_EQ(store().Commit(between).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Read(store(), "done"), "1");
  EXPECT_EQ(Read(store(), "other/x"), "o");
}

TEST_P(StoreConformanceTest, ConcurrentCompareAndSetLosesNoUpdate) {
  // Eight threads each add 1 to one counter 200 times with read, then
  // Commit(Expect(old) + Put(old + 1)), retrying on Aborted. Any lost update
  // (two commits both succeeding from the same old value) shows in the total.
  constexpr int kThreads = 8;
  constexpr int kIncrements = 200;
  CLAVIS_ASSERT_OK(store().Put("counter", "0"));
  std::atomic<int> errors{0};
  std::atomic<int> aborts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements && errors == 0;) {
        absl::StatusOr<std::optional<std::string>> current = store().Get("counter");
        if (!current.ok() || !current->has_value()) {
          ++errors;
          return;
        }
        const int value = std::stoi(**current);
        WriteBatch batch;
        batch.Expect("counter", **current).Put("counter", std::to_string(value + 1));
        const absl::Status status = store().Commit(batch);
        if (status.ok()) {
          ++i;
        } else if (status.code() == absl::StatusCode::kAborted) {
          ++aborts;
        } else {
          ++errors;
          return;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(Read(store(), "counter"), std::to_string(kThreads * kIncrements))
      << aborts << " commits were aborted and retried";
}

TEST_P(StoreConformanceTest, ConcurrentCommitsOnUnrelatedKeysDoNotAbortEachOther) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string key = absl::StrCat("counter/", t);
      std::optional<std::string> expected;
      for (int i = 1; i <= kIncrements; ++i) {
        WriteBatch batch;
        batch.Expect(key, expected).Put(key, std::to_string(i));
        if (!store().Commit(batch).ok()) ++failures;
        expected = std::to_string(i);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(Read(store(), absl::StrCat("counter/", t)), std::to_string(kIncrements));
  }
}

// --- ExportSnapshot ---------------------------------------------------------

// ExportSnapshot that turns backend errors into test failures.
std::vector<KeyValue> ExportAll(Store& store) {
  std::vector<KeyValue> entries;
  absl::Status exported = store.ExportSnapshot([&](absl::string_view key, absl::string_view value) {
    entries.push_back(KeyValue{std::string(key), std::string(value)});
    return absl::OkStatus();
  });
  EXPECT_TRUE(exported.ok()) << exported;
  return entries;
}

TEST_P(StoreConformanceTest, ExportSnapshotOfAnEmptyStoreVisitsNothing) {
  EXPECT_TRUE(ExportAll(store()).empty());
}

TEST_P(StoreConformanceTest, ExportSnapshotVisitsEveryEntryInBytewiseOrder) {
  const std::string big = RandomBytes(1 << 20, 7);
  PutAll(store(), {"b", "\0"s, "a", "\xff", "k\0acme\0crm"s});
  CLAVIS_ASSERT_OK(store().Put("big", big));
  CLAVIS_ASSERT_OK(store().Put("empty", ""));
  CLAVIS_ASSERT_OK(store().Delete("b"));
  std::vector<KeyValue> entries = ExportAll(store());
  std::vector<std::string> keys;
  for (const KeyValue& entry : entries) keys.push_back(entry.key);
  EXPECT_EQ(keys, (std::vector<std::string>{"\0"s, "a", "big", "empty", "k\0acme\0crm"s, "\xff"}));
  for (const KeyValue& entry : entries) {
    EXPECT_EQ(std::optional<std::string>(entry.value), Read(store(), entry.key))
        << absl::CHexEscape(entry.key);
  }
}

TEST_P(StoreConformanceTest, ExportSnapshotStopsAtTheVisitorsError) {
  PutAll(store(), {"a", "b", "c"});
  int visits = 0;
  absl::Status exported = store().ExportSnapshot([&](absl::string_view, absl::string_view) {
    return ++visits == 2 ? absl::CancelledError("enough") : absl::OkStatus();
  });
  EXPECT_EQ(exported, absl::CancelledError("enough"));
  EXPECT_EQ(visits, 2);
}

TEST_P(StoreConformanceTest, ExportSnapshotIgnoresWritesCommittedDuringTheExport) {
  PutAll(store(), {"a", "m", "z"});
  std::vector<std::string> keys;
  absl::Status exported = store().ExportSnapshot([&](absl::string_view key, absl::string_view) {
    if (keys.empty()) {
      // Another thread commits while the export is under way: it is neither
      // blocked nor seen.
      std::thread writer([&] {
        WriteBatch batch;
        batch.Delete("m").Put("n", "new").Put("zz", "new");
        CLAVIS_EXPECT_OK(store().Commit(batch));
      });
      writer.join();
    }
    keys.emplace_back(key);
    return absl::OkStatus();
  });
  CLAVIS_EXPECT_OK(exported);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "m", "z"}));
  EXPECT_EQ(ScanKeys(store(), ""), (std::vector<std::string>{"a", "n", "z", "zz"}));
}

TEST_P(StoreConformanceTest, ExportSnapshotSeesEachCommitWholeOrNotAtAll) {
  // As ScanSeesAConsistentSnapshot: a writer moves one token; every export
  // sees exactly one.
  constexpr int kMoves = 100;
  CLAVIS_ASSERT_OK(store().Put("t/000", "token"));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kMoves; ++i) {
      WriteBatch batch;
      batch.Expect(absl::StrFormat("t/%03d", i), "token")
          .Delete(absl::StrFormat("t/%03d", i))
          .Put(absl::StrFormat("t/%03d", i + 1), "token");
      CLAVIS_EXPECT_OK(store().Commit(batch));
    }
    done = true;
  });
  int exports = 0;
  bool consistent = true;
  while (consistent && (!done || exports == 0)) {
    const size_t tokens = ExportAll(store()).size();
    consistent = tokens == 1;
    EXPECT_TRUE(consistent) << "export " << exports << " saw " << tokens << " tokens";
    ++exports;
  }
  writer.join();
}

// --- CommitAndPurge ---------------------------------------------------------

TEST_P(StoreConformanceTest, CommitAndPurgeAppliesTheBatchAndDeletesThePrefixesOnly) {
  PutAll(store(), {"a", "a/", "a/1", "a/2/x", "a0", "a.", "b/", "b/1", "c/1", "gone"});
  WriteBatch batch;
  batch.Expect("c/1", "value of c/1").Delete("gone").Put("added", "v");
  CLAVIS_ASSERT_OK(store().CommitAndPurge(batch, {"a/", "b/1"}));
  EXPECT_EQ(ScanKeys(store(), ""),
            (std::vector<std::string>{"a", "a.", "a0", "added", "b/", "c/1"}));
  EXPECT_EQ(Read(store(), "added"), "v");
  EXPECT_EQ(Read(store(), "a0"), "value of a0");
}

TEST_P(StoreConformanceTest, CommitAndPurgeWithAFailedPreconditionWritesNothing) {
  PutAll(store(), {"p/1", "p/2", "k"});
  WriteBatch batch;
  batch.Expect("k", "not the value").Delete("k");
  EXPECT_EQ(store().CommitAndPurge(batch, {"p/"}).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ScanKeys(store(), ""), (std::vector<std::string>{"k", "p/1", "p/2"}));
}

TEST_P(StoreConformanceTest, CommitAndPurgeOfPrefixEndingInFfKeepsTheNextKeys) {
  PutAll(store(), {"a\xfe", "a\xff", "a\xff\x00"s, "a\xff\xff\x01", "b", "b\x00"s});
  CLAVIS_ASSERT_OK(store().CommitAndPurge(WriteBatch(), {"a\xff"}));
  EXPECT_EQ(ScanKeys(store(), ""), (std::vector<std::string>{"a\xfe", "b", "b\x00"s}));
}

TEST_P(StoreConformanceTest, CommitAndPurgeOfAllFfPrefixDeletesToTheEndOfTheKeySpace) {
  PutAll(store(), {"\xfe", "\xff", "\xff\xfe", "\xff\xff", "\xff\xff\x00"s, "\xff\xff\xff\xff"});
  CLAVIS_ASSERT_OK(store().CommitAndPurge(WriteBatch(), {"\xff\xff"}));
  EXPECT_EQ(ScanKeys(store(), ""), (std::vector<std::string>{"\xfe", "\xff", "\xff\xfe"}));
}

TEST_P(StoreConformanceTest, CommitAndPurgeOfAPrefixWithoutKeysSucceeds) {
  PutAll(store(), {"k"});
  CLAVIS_ASSERT_OK(store().CommitAndPurge(WriteBatch(), {"none/", "\xff"}));
  // Twice, so the second finds nothing at all to write or to purge.
  CLAVIS_ASSERT_OK(store().CommitAndPurge(WriteBatch(), {"\xff"}));
  CLAVIS_ASSERT_OK(store().CommitAndPurge(WriteBatch(), {"\xff"}));
  CLAVIS_ASSERT_OK(store().CommitAndPurge(WriteBatch(), {}));
  EXPECT_EQ(ScanKeys(store(), ""), std::vector<std::string>{"k"});
}

TEST_P(StoreConformanceTest, CommitAndPurgeCanBeRepeatedWithAnEmptyBatch) {
  PutAll(store(), {"p/1", "q"});
  WriteBatch batch;
  batch.Delete("q");
  CLAVIS_ASSERT_OK(store().CommitAndPurge(batch, {"p/"}));
  // What a caller does to finish a purge that failed after its commit.
  CLAVIS_ASSERT_OK(store().CommitAndPurge(WriteBatch(), {"p/"}));
  EXPECT_EQ(ScanKeys(store(), ""), std::vector<std::string>{});
}

TEST_P(StoreConformanceTest, WritesAfterCommitAndPurgeAreKept) {
  PutAll(store(), {"p/1"});
  CLAVIS_ASSERT_OK(store().CommitAndPurge(WriteBatch(), {"p/"}));
  CLAVIS_ASSERT_OK(store().Put("p/1", "reborn"));
  CLAVIS_ASSERT_OK(store().Put("p/2", "new"));
  EXPECT_EQ(Read(store(), "p/1"), "reborn");
  EXPECT_EQ(ScanKeys(store(), "p/"), (std::vector<std::string>{"p/1", "p/2"}));
}

TEST_P(StoreConformanceTest, CommitAndPurgeIsSafeAlongsideConcurrentReadsAndWrites) {
  // Readers and writers of other keys keep running while prefixes are
  // purged; nobody fails, nothing outside the purged prefixes is lost.
  constexpr int kWriters = 2;
  constexpr int kPurges = 4;
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  std::vector<int> written(kWriters, 0);
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; !done; ++i) {
        if (!store().Put(absl::StrFormat("w/%d/%06d", t, i), "v").ok()) ++errors;
        written[t] = i + 1;
      }
    });
  }
  threads.emplace_back([&] {
    while (!done) {
      if (!store().Scan("w/", "", 0).ok() || !store().Get("w/0/000000").ok()) ++errors;
    }
  });
  for (int i = 0; i < kPurges; ++i) {
    const std::string prefix = absl::StrFormat("p/%d/", i);
    CLAVIS_EXPECT_OK(store().Put(prefix + "x", "doomed"));
    WriteBatch batch;
    batch.Expect(prefix + "x", "doomed").Put(absl::StrFormat("kept/%d", i), "v");
    CLAVIS_EXPECT_OK(store().CommitAndPurge(batch, {prefix}));
  }
  done = true;
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(ScanKeys(store(), "p/"), std::vector<std::string>{});
  EXPECT_EQ(ScanKeys(store(), "kept/").size(), static_cast<size_t>(kPurges));
  for (int t = 0; t < kWriters; ++t) {
    EXPECT_EQ(ScanKeys(store(), absl::StrFormat("w/%d/", t)).size(),
              static_cast<size_t>(written[t]));
  }
}

}  // namespace clavis::kms
