#include "kms/keys/key_lifecycle.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <thread>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/key_domain_testing.h"
#include "kms/storage/memory_store.h"

namespace clavis::kms {
namespace {

using ::clavis::v1::KeyEvent;
using ::clavis::v1::KeyState;
using ::testing::HasSubstr;
using testing::KeyDomainTest;

class KeyLifecycleTest : public KeyDomainTest {};

TEST_F(KeyLifecycleTest, CreateGivesAnEnabledKeyWithOneVersionAndCheckValue) {
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "crm";
  p.description = "customer records";
  p.labels = {{"team", "billing"}};
  auto key = lifecycle_->CreateKey(p);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->name(), "tenants/acme/keys/crm");
  EXPECT_EQ(key->state(), clavis::v1::ENABLED);
  EXPECT_EQ(key->origin(), clavis::v1::GENERATED);
  EXPECT_EQ(key->primary_version(), 1u);
  ASSERT_EQ(key->versions_size(), 1);
  EXPECT_EQ(key->versions(0).key_check_value().size(), 16u);
  EXPECT_EQ(key->labels().at("team"), "billing");
  auto got = lifecycle_->GetKey(KeyName{"acme", "crm"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->versions(0).key_check_value(), key->versions(0).key_check_value());
}

TEST_F(KeyLifecycleTest, CreateRefusesDuplicatesAndBadIds) {
  MakeKey();
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "crm";
  EXPECT_EQ(lifecycle_->CreateKey(p).status().code(), absl::StatusCode::kAlreadyExists);
  p.key_id = "Bad Id";
  auto bad = lifecycle_->CreateKey(p);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("may contain only"));
  p.key_id = std::string(64, 'a');
  EXPECT_EQ(lifecycle_->CreateKey(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.key_id = "ok";
  p.rotation_period = absl::Seconds(5);  // below the one-day minimum
  EXPECT_EQ(lifecycle_->CreateKey(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(KeyLifecycleTest, LabelsAndTimesAreChecked) {
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "crm";
  p.labels = {{"team", std::string(64, 'x')}};
  EXPECT_EQ(lifecycle_->CreateKey(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.labels = {{"", "x"}};
  EXPECT_EQ(lifecycle_->CreateKey(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.labels = {{"Team", "x"}};
  EXPECT_EQ(lifecycle_->CreateKey(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.labels = {{"team", "Billing-EU_1"}};
  p.next_rotation_time = absl::FromUnixSeconds(253402300800);  // year 10000
  EXPECT_EQ(lifecycle_->CreateKey(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.next_rotation_time.reset();
  EXPECT_TRUE(lifecycle_->CreateKey(p).ok());
}

TEST_F(KeyLifecycleTest, ListKeysPaginatesInIdOrder) {
  for (const char* id : {"c", "a", "b", "d", "e"}) MakeKey("acme", id);
  MakeKey("globex", "zz");
  std::string next;
  auto page1 = lifecycle_->ListKeys("acme", "", 2, &next);
  ASSERT_TRUE(page1.ok());
  ASSERT_EQ(page1->size(), 2u);
  EXPECT_EQ((*page1)[0].name(), "tenants/acme/keys/a");
  EXPECT_EQ(next, "b");
  auto page2 = lifecycle_->ListKeys("acme", next, 2, &next);
  ASSERT_TRUE(page2.ok());
  EXPECT_EQ((*page2)[0].name(), "tenants/acme/keys/c");
  auto page3 = lifecycle_->ListKeys("acme", next, 2, &next);
  ASSERT_TRUE(page3.ok());
  ASSERT_EQ(page3->size(), 1u);
  EXPECT_TRUE(next.empty());
}

TEST_F(KeyLifecycleTest, RotateAddsAPrimaryVersionAndSchedulesTheNextRotation) {
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "crm";
  p.rotation_period = absl::Hours(24 * 90);
  auto created = lifecycle_->CreateKey(p);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->next_rotation_time().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Hours(24 * 90)));
  clock_.Advance(absl::Hours(1));
  auto rotated = lifecycle_->RotateKey(KeyName{"acme", "crm"});
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->primary_version(), 2u);
  EXPECT_EQ(rotated->versions_size(), 2);
  EXPECT_NE(rotated->versions(0).key_check_value(), rotated->versions(1).key_check_value());
  EXPECT_EQ(rotated->next_rotation_time().seconds(),
            absl::ToUnixSeconds(clock_.Now() + absl::Hours(24 * 90)));
}

TEST_F(KeyLifecycleTest, ConcurrentRotationsEachGetTheirOwnVersion) {
  const KeyName key = MakeKey();
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] { EXPECT_TRUE(lifecycle_->RotateKey(key).ok()); });
  }
  for (auto& t : threads) t.join();
  auto got = lifecycle_->GetKey(key);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->versions_size(), 9);
  EXPECT_EQ(got->primary_version(), 9u);
}

// Schedulers racing on one due rotation: compare-and-set on the due time
// lets exactly one of them rotate.
TEST_F(KeyLifecycleTest, ADueRotationHappensOnceHoweverManyRace) {
  CreateKeyParams p;
  p.tenant = "acme";
  p.key_id = "crm";
  p.rotation_period = absl::Hours(24);
  ASSERT_TRUE(lifecycle_->CreateKey(p).ok());
  const KeyName key{"acme", "crm"};
  const absl::Time due = clock_.Now() + absl::Hours(24);
  clock_.Advance(absl::Hours(25));
  std::atomic<int> rotated{0}, aborted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = lifecycle_->RotateKey(key, due);
      if (r.ok()) ++rotated;
      if (absl::IsAborted(r.status())) ++aborted;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(rotated.load(), 1);
  EXPECT_EQ(aborted.load(), 7);
  EXPECT_EQ(lifecycle_->GetKey(key)->primary_version(), 2u);
}

TEST_F(KeyLifecycleTest, VersionUsageFollowsRotationAndRewrap) {
  const KeyName key = MakeKey();
  for (const char* s : {"a", "b", "c"}) {
    ASSERT_TRUE(lifecycle_->CreateSegment(SegmentName{key, s}).ok());
  }
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  ASSERT_TRUE(lifecycle_->RotateSegment(SegmentName{key, "a"}).ok());  // a: v1 on 1, v2 on 2
  uint64_t scanned = 0;
  auto usage = lifecycle_->KeyVersionUsage(key, &scanned);
  ASSERT_TRUE(usage.ok()) << usage.status();
  EXPECT_EQ(scanned, 3u);
  EXPECT_EQ((*usage)[1].segments, 3u);
  EXPECT_EQ((*usage)[2].segments, 1u);
  EXPECT_EQ((*usage)[2].segment_key_versions, 1u);
  ASSERT_TRUE(lifecycle_->RewrapSegments(key, "", 10).ok());
  usage = lifecycle_->KeyVersionUsage(key, &scanned);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ((*usage)[1].segments, 0u);
  EXPECT_EQ((*usage)[2].segments, 3u);
  EXPECT_EQ((*usage)[2].segment_key_versions, 4u);
}

TEST_F(KeyLifecycleTest, RefusedTransitionsSayWhatToDo) {
  const KeyName key = MakeKey();
  // Nothing to cancel.
  auto cancel = lifecycle_->CancelKeyDestruction(key);
  EXPECT_EQ(cancel.status().code(), absl::StatusCode::kFailedPrecondition);
  // Destroy needs a schedule first.
  auto destroy = lifecycle_->DestroyKey(key);
  EXPECT_EQ(destroy.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(destroy.status().message(), HasSubstr("schedule-destroy"));
  // The primary version cannot be disabled.
  auto primary = lifecycle_->DisableKeyVersion(KeyVersionName{key, 1});
  EXPECT_EQ(primary.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(primary.status().message(), HasSubstr("rotate the key first"));
  // A window below the minimum is refused.
  auto short_window = lifecycle_->ScheduleKeyDestruction(key, absl::Hours(1));
  EXPECT_EQ(short_window.status().code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(lifecycle_->ScheduleKeyDestruction(key, std::nullopt).ok());
  // A key pending destruction cannot be rotated, enabled or disabled.
  auto rotate = lifecycle_->RotateKey(key);
  EXPECT_EQ(rotate.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(rotate.status().message(), HasSubstr("PENDING_DESTRUCTION until"));
  EXPECT_THAT(rotate.status().message(), HasSubstr("clavisctl key cancel-destroy"));
  EXPECT_FALSE(lifecycle_->EnableKey(key).ok());
  EXPECT_FALSE(lifecycle_->DisableKey(key).ok());
  EXPECT_FALSE(lifecycle_->ScheduleKeyDestruction(key, std::nullopt).ok());
  auto early = lifecycle_->DestroyKey(key);
  EXPECT_EQ(early.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(early.status().message(), HasSubstr("cannot be destroyed before then"));
}

TEST_F(KeyLifecycleTest, CancelledDestructionLeavesTheKeyDisabled) {
  const KeyName key = MakeKey();
  ASSERT_TRUE(lifecycle_->ScheduleKeyDestruction(key, std::nullopt).ok());
  auto cancelled = lifecycle_->CancelKeyDestruction(key);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state(), clavis::v1::DISABLED);
  EXPECT_FALSE(cancelled->has_destroy_time());
  EXPECT_TRUE(lifecycle_->EnableKey(key).ok());
}

TEST_F(KeyLifecycleTest, DestroyedKeyIsFinalAndItsSegmentsAreGone) {
  const KeyName key = MakeKey();
  ASSERT_TRUE(envelope_->GenerateDataKey(SegmentName{key, "a"}, {}).ok());
  ASSERT_TRUE(lifecycle_->ScheduleKeyDestruction(key, absl::Hours(24 * 7)).ok());
  clock_.Advance(absl::Hours(24 * 7));
  auto destroyed = lifecycle_->DestroyKey(key);
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_EQ(destroyed->state(), clavis::v1::DESTROYED);
  for (const auto& v : destroyed->versions()) EXPECT_EQ(v.state(), clavis::v1::DESTROYED);
  std::string next;
  auto segments = lifecycle_->ListSegments(key, "", "", 10, &next);
  ASSERT_TRUE(segments.ok());
  EXPECT_TRUE(segments->empty());
  EXPECT_FALSE(lifecycle_->EnableKey(key).ok());
  EXPECT_FALSE(lifecycle_->CancelKeyDestruction(key).ok());
  // Destroying again only re-runs the purge.
  auto again_destroyed = lifecycle_->DestroyKey(key);
  ASSERT_TRUE(again_destroyed.ok()) << again_destroyed.status();
  EXPECT_EQ(again_destroyed->state(), clavis::v1::DESTROYED);
  CreateKeyParams again;
  again.tenant = "acme";
  again.key_id = "crm";
  EXPECT_EQ(lifecycle_->CreateKey(again).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(KeyLifecycleTest, VersionLifecycle) {
  const KeyName key = MakeKey();
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  const KeyVersionName v1{key, 1};
  ASSERT_TRUE(lifecycle_->DisableKeyVersion(v1).ok());
  ASSERT_TRUE(lifecycle_->EnableKeyVersion(v1).ok());
  ASSERT_TRUE(lifecycle_->ScheduleKeyVersionDestruction(v1, absl::Hours(24 * 7)).ok());
  EXPECT_FALSE(lifecycle_->EnableKeyVersion(v1).ok());
  EXPECT_FALSE(lifecycle_->DestroyKeyVersion(v1).ok());
  clock_.Advance(absl::Hours(24 * 8));
  auto key_after = lifecycle_->DestroyKeyVersion(v1);
  ASSERT_TRUE(key_after.ok()) << key_after.status();
  EXPECT_EQ(key_after->versions(0).state(), clavis::v1::DESTROYED);
  EXPECT_EQ(key_after->versions(1).state(), clavis::v1::ENABLED);
  EXPECT_EQ(lifecycle_->DisableKeyVersion(KeyVersionName{key, 7}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(KeyLifecycleTest, SettingsUpdateChangesOnlyWhatIsAsked) {
  const KeyName key = MakeKey();
  KeySettingsUpdate u;
  u.rotation_period = absl::Hours(24 * 30);
  auto updated = lifecycle_->UpdateKeySettings(key, u);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->rotation_period().seconds(), 30 * 24 * 3600);
  EXPECT_GT(updated->next_rotation_time().seconds(), 0);
  KeySettingsUpdate d;
  d.description = "new";
  updated = lifecycle_->UpdateKeySettings(key, d);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->description(), "new");
  EXPECT_EQ(updated->rotation_period().seconds(), 30 * 24 * 3600);
}

TEST_F(KeyLifecycleTest, EveryChangeIsPublishedToTheTenantOnly) {
  auto acme = events_.Subscribe("acme");
  auto globex = events_.Subscribe("globex");
  const KeyName key = MakeKey();
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  ASSERT_TRUE(lifecycle_->DisableKey(key).ok());
  std::vector<KeyEvent::Type> seen;
  KeyEvent e;
  while (acme->Next(absl::ZeroDuration(), &e) == KeyEventSubscription::WaitResult::kEvent) {
    seen.push_back(e.type());
    EXPECT_EQ(e.key(), "tenants/acme/keys/crm");
  }
  EXPECT_THAT(seen,
              ::testing::ElementsAre(KeyEvent::CREATED, KeyEvent::ROTATED, KeyEvent::DISABLED));
  EXPECT_EQ(globex->Next(absl::ZeroDuration(), &e), KeyEventSubscription::WaitResult::kTimeout);
}

TEST_F(KeyLifecycleTest, RewrapIsResumableInBatches) {
  const KeyName key = MakeKey();
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(envelope_->GenerateDataKey(SegmentName{key, absl::StrCat("s", i)}, {}).ok());
  }
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  uint64_t total = 0;
  std::string token;
  int calls = 0;
  do {
    auto p = lifecycle_->RewrapSegments(key, token, 10);
    ASSERT_TRUE(p.ok()) << p.status();
    total += p->rewrapped;
    token = p->next_segment;
    ++calls;
  } while (!token.empty());
  EXPECT_EQ(total, 25u);
  EXPECT_EQ(calls, 3);
  std::string next;
  auto segments = lifecycle_->ListSegments(key, "", "", 0, &next);
  ASSERT_TRUE(segments.ok());
  for (const auto& s : *segments) EXPECT_EQ(s.versions(0).wrapped_under_key_version(), 2u);
  // A second pass finds nothing to do.
  auto again = lifecycle_->RewrapSegments(key, "", 100);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rewrapped, 0u);
  EXPECT_EQ(again->already_current, 25u);
}

TEST_F(KeyLifecycleTest, ListSegmentsFiltersByLabelPrefix) {
  const KeyName key = MakeKey();
  for (const char* s : {"acme/billing/1", "acme/billing/2", "acme/orders/1", "acme/billingx"}) {
    ASSERT_TRUE(envelope_->GenerateDataKey(SegmentName{key, s}, {}).ok());
  }
  std::string next;
  auto billing = lifecycle_->ListSegments(key, "acme/billing/", "", 0, &next);
  ASSERT_TRUE(billing.ok());
  ASSERT_EQ(billing->size(), 2u);
  EXPECT_EQ((*billing)[0].name(), "tenants/acme/keys/crm/segments/acme/billing/1");
}

// A MemoryStore that counts Commits and, once, runs a hook just before the
// first Commit with more than one precondition: a concurrent writer's change
// landing between a batched re-wrap's read and its write.
class ObservedStore : public Store {
 public:
  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override {
    return inner_.Get(key);
  }
  absl::Status Put(absl::string_view key, absl::string_view value) override {
    return inner_.Put(key, value);
  }
  absl::Status Delete(absl::string_view key) override { return inner_.Delete(key); }
  absl::StatusOr<std::vector<KeyValue>> Scan(absl::string_view prefix,
                                             absl::string_view start_after, size_t limit) override {
    return inner_.Scan(prefix, start_after, limit);
  }
  absl::Status Commit(const WriteBatch& batch) override {
    ++commits;
    if (before_batch && batch.preconditions().size() > 1) {
      std::function<void()> hook = std::move(before_batch);
      before_batch = nullptr;
      hook();
    }
    return inner_.Commit(batch);
  }
  absl::Status CommitAndPurge(const WriteBatch& batch,
                              const std::vector<std::string>& delete_prefixes) override {
    return inner_.CommitAndPurge(batch, delete_prefixes);
  }
  absl::Status ExportSnapshot(const ExportVisitor& visit) override {
    return inner_.ExportSnapshot(visit);
  }

  std::atomic<int> commits{0};
  std::function<void()> before_batch;

 private:
  MemoryStore inner_;
};

class RewrapBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = absl::StrCat(::testing::TempDir(), "/clavis_rewrap_", ::getpid(), "_", counter++);
    std::filesystem::create_directories(dir_);
    auto root = KeyFileRootKeyProvider::Open(dir_ + "/root.key", /*create_if_missing=*/true);
    ASSERT_TRUE(root.ok()) << root.status();
    root_ = *std::move(root);
    Rebuild();
    CreateKeyParams p;
    p.tenant = "acme";
    p.key_id = "crm";
    ASSERT_TRUE(lifecycle_->CreateKey(p).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Cold caches, as after a restart.
  void Rebuild() {
    envelope_.reset();
    lifecycle_.reset();
    repository_ = std::make_unique<KeyRepository>(&store_, root_.get());
    lifecycle_ = std::make_unique<KeyLifecycle>(repository_.get(), &clock_, nullptr);
    envelope_ = std::make_unique<Envelope>(repository_.get(), lifecycle_.get());
  }

  static std::string Label(int i) { return absl::StrFormat("s%05d", i); }

  void AddSegments(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(lifecycle_->CreateSegment(SegmentName{key_, Label(i)}).ok());
    }
  }

  // The stored record of a segment (not the cache).
  internal::SegmentRecord Stored(int i) {
    auto raw = store_.Get(KeyRepository::SegmentStoreKey(SegmentName{key_, Label(i)}));
    internal::SegmentRecord record;
    EXPECT_TRUE(raw.ok() && raw->has_value() && record.ParseFromString(**raw));
    return record;
  }

  void Store(int i, const internal::SegmentRecord& record) {
    ASSERT_TRUE(store_
                    .Put(KeyRepository::SegmentStoreKey(SegmentName{key_, Label(i)}),
                         record.SerializeAsString())
                    .ok());
  }

  const KeyName key_{"acme", "crm"};
  std::string dir_;
  ObservedStore store_;
  std::unique_ptr<RootKeyProvider> root_;
  FakeClock clock_;
  std::unique_ptr<KeyRepository> repository_;
  std::unique_ptr<KeyLifecycle> lifecycle_;
  std::unique_ptr<Envelope> envelope_;
};

TEST_F(RewrapBatchTest, RewrapWritesAThousandSegmentsPerCommit) {
  AddSegments(2500);
  auto before = envelope_->GenerateDataKey(SegmentName{key_, Label(1234)}, {});
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(lifecycle_->RotateKey(key_).ok());
  store_.commits = 0;
  auto progress = lifecycle_->RewrapSegments(key_, "", 0);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rewrapped, 2500u);
  EXPECT_EQ(progress->already_current, 0u);
  EXPECT_TRUE(progress->next_segment.empty());
  EXPECT_EQ(store_.commits, 3);
  for (int i = 0; i < 2500; i += 99) EXPECT_EQ(Stored(i).versions(0).key_version(), 2u) << i;
  // The old data key still decrypts with version 1 gone.
  ASSERT_TRUE(lifecycle_->DisableKeyVersion(KeyVersionName{key_, 1}).ok());
  Rebuild();
  auto back = envelope_->Decrypt(before->ciphertext_blob, {}, std::nullopt);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->plaintext == before->plaintext);
  // Nothing left to do: nothing written.
  store_.commits = 0;
  auto again = lifecycle_->RewrapSegments(key_, "", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->already_current, 2500u);
  EXPECT_EQ(store_.commits, 0);
}

TEST_F(RewrapBatchTest, ASegmentChangedMeanwhileSendsTheChunkOneByOne) {
  AddSegments(30);
  ASSERT_TRUE(lifecycle_->RotateKey(key_).ok());
  store_.before_batch = [&] {
    internal::SegmentRecord revoked = Stored(5);
    revoked.set_state(KeyState::DISABLED);
    Store(5, revoked);
  };
  store_.commits = 0;
  auto progress = lifecycle_->RewrapSegments(key_, "", 100);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rewrapped, 30u);
  EXPECT_EQ(store_.commits, 31);  // the aborted batch, then one per segment
  // The concurrent change is kept, and the segment re-wrapped all the same.
  EXPECT_EQ(Stored(5).state(), KeyState::DISABLED);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(Stored(i).versions(0).key_version(), 2u) << i;
}

TEST_F(RewrapBatchTest, ARotationMeanwhileMovesTheChunkOntoTheNewestVersion) {
  AddSegments(20);
  ASSERT_TRUE(lifecycle_->RotateKey(key_).ok());
  store_.before_batch = [&] { ASSERT_TRUE(lifecycle_->RotateKey(key_).ok()); };
  auto progress = lifecycle_->RewrapSegments(key_, "", 100);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->rewrapped, 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Stored(i).versions(0).key_version(), 3u) << i;
}

// A version destroyed while a chunk is prepared: the store already holds the
// key without the version's material while the cached entry (dropped by the
// destroying writer only after its purge) still has it. The aborted chunk
// must not be re-wrapped one by one from that stale entry: that would move
// segment keys the destruction made unrecoverable onto the live version.
TEST_F(RewrapBatchTest, AVersionDestroyedMeanwhileIsNeverUsedByTheOneByOnePass) {
  AddSegments(10);
  ASSERT_TRUE(lifecycle_->RotateKey(key_).ok());
  store_.before_batch = [&] {
    const std::string store_key = KeyRepository::KeyStoreKey(key_);
    auto raw = store_.Get(store_key);
    ASSERT_TRUE(raw.ok() && raw->has_value());
    internal::KeyRecord record;
    ASSERT_TRUE(record.ParseFromString(**raw));
    for (internal::KeyVersionRecord& v : *record.mutable_versions()) {
      if (v.version() != 1) continue;
      v.set_state(KeyState::DESTROYED);
      v.clear_root_wrapped_material();
    }
    // Straight to the store, as the destroying commit does before its
    // purge and before it drops the cached entry.
    ASSERT_TRUE(store_.Put(store_key, record.SerializeAsString()).ok());
  };
  // Segment keys under a destroyed version are unrecoverable: left alone.
  RewrapProgress progress;
  (void)lifecycle_->RewrapSegments(key_, "", 100, &progress);
  EXPECT_EQ(progress.rewrapped, 0u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Stored(i).versions(0).key_version(), 1u) << i;
}

TEST_F(RewrapBatchTest, ADamagedSegmentStopsTheRewrapAfterTheSegmentsBeforeIt) {
  AddSegments(10);
  ASSERT_TRUE(lifecycle_->RotateKey(key_).ok());
  internal::SegmentRecord damaged = Stored(4);
  std::string wrapped = damaged.versions(0).wrapped_key();
  wrapped.back() ^= 1;
  damaged.mutable_versions(0)->set_wrapped_key(wrapped);
  Store(4, damaged);
  RewrapProgress progress;
  const absl::Status status = lifecycle_->RewrapSegments(key_, "", 100, &progress);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_EQ(progress.rewrapped, 4u);
  EXPECT_EQ(progress.next_segment, Label(3));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(Stored(i).versions(0).key_version(), i < 4 ? 2u : 1u) << i;
  }
}

}  // namespace
}  // namespace clavis::kms
