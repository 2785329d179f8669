// StoreFollower: two replicas (each its own repository, lifecycle and
// envelope, as two clavisd processes have) over one shared store. Replica B
// follows the changes replica A makes, fed to it as a store change feed
// would report them; without that, B's caches would keep serving a key A
// disabled (shown first, so the test proves what the follower adds).
#include "kms/keys/store_follower.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/envelope.h"
#include "kms/keys/key_domain_testing.h"
#include "kms/keys/store_changes_testing.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyEvent;

class StoreFollowerTest : public testing::KeyDomainTest {
 protected:
  // Replica B: same store and root key, its own caches and event bus; its
  // lifecycle publishes nothing itself (the follower does).
  void SetUp() override {
    KeyDomainTest::SetUp();
    b_repository_ = std::make_unique<KeyRepository>(&store_, root_.get());
    b_lifecycle_ = std::make_unique<KeyLifecycle>(b_repository_.get(), &clock_, nullptr, limits_);
    b_envelope_ = std::make_unique<Envelope>(b_repository_.get(), b_lifecycle_.get());
    b_follower_ = std::make_unique<StoreFollower>(b_repository_.get(), &b_events_, &clock_);
    b_follower_->Resync(true);
  }

  // Runs `op` on replica A and feeds B what it changed in the store.
  template <typename Op>
  void OnAThenFollow(const Op& op) {
    const auto before = testing::Snapshot(store_);
    op();
    b_follower_->Apply(testing::Diff(before, testing::Snapshot(store_)));
  }

  std::unique_ptr<KeyRepository> b_repository_;
  std::unique_ptr<KeyLifecycle> b_lifecycle_;
  std::unique_ptr<Envelope> b_envelope_;
  KeyEventBus b_events_;
  std::unique_ptr<StoreFollower> b_follower_;
};

TEST_F(StoreFollowerTest, WithoutTheFeedReplicaBKeepsServingItsCache) {
  const KeyName key = MakeKey();
  const SegmentName segment{key, "s"};
  ASSERT_TRUE(b_envelope_->GenerateDataKey(segment, {}).ok());  // B caches
  ASSERT_TRUE(lifecycle_->DisableKey(key).ok());                // A disables
  // What the follower exists for: B's cache does not know yet.
  EXPECT_TRUE(b_envelope_->GenerateDataKey(segment, {}).ok());
}

TEST_F(StoreFollowerTest, AKeyDisabledOnAIsRefusedOnBAndAnnouncedToItsSubscribers) {
  const KeyName key = MakeKey();
  const SegmentName segment{key, "s"};
  auto dk = b_envelope_->GenerateDataKey(segment, {});
  ASSERT_TRUE(dk.ok()) << dk.status();
  auto subscription = b_events_.Subscribe("acme");
  OnAThenFollow([&] { ASSERT_TRUE(lifecycle_->DisableKey(key).ok()); });
  auto refused = b_envelope_->GenerateDataKey(segment, {});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_EQ(b_envelope_->Decrypt(dk->ciphertext_blob, {}, std::nullopt).status().code(),
            absl::StatusCode::kFailedPrecondition);
  KeyEvent event;
  ASSERT_EQ(subscription->Next(absl::ZeroDuration(), &event),
            KeyEventSubscription::WaitResult::kEvent);
  EXPECT_EQ(event.type(), KeyEvent::DISABLED);
  EXPECT_EQ(event.key(), "tenants/acme/keys/crm");
  EXPECT_EQ(event.sequence(), 1u);
  EXPECT_GT(event.time().seconds(), 0);

  // And back.
  OnAThenFollow([&] { ASSERT_TRUE(lifecycle_->EnableKey(key).ok()); });
  EXPECT_TRUE(b_envelope_->GenerateDataKey(segment, {}).ok());
  ASSERT_EQ(subscription->Next(absl::ZeroDuration(), &event),
            KeyEventSubscription::WaitResult::kEvent);
  EXPECT_EQ(event.type(), KeyEvent::ENABLED);
}

TEST_F(StoreFollowerTest, ASegmentRevokedOnAIsRefusedOnB) {
  const KeyName key = MakeKey();
  const SegmentName segment{key, "acme/orders"};
  auto dk = b_envelope_->GenerateDataKey(segment, {});
  ASSERT_TRUE(dk.ok());
  auto subscription = b_events_.Subscribe("acme");
  OnAThenFollow([&] { ASSERT_TRUE(lifecycle_->RevokeSegment(segment).ok()); });
  EXPECT_FALSE(b_envelope_->Decrypt(dk->ciphertext_blob, {}, std::nullopt).ok());
  KeyEvent event;
  ASSERT_EQ(subscription->Next(absl::ZeroDuration(), &event),
            KeyEventSubscription::WaitResult::kEvent);
  EXPECT_EQ(event.type(), KeyEvent::SEGMENT_REVOKED);
  EXPECT_EQ(event.segment(), "acme/orders");
}

TEST_F(StoreFollowerTest, ARotationOnAIsUsedByB) {
  const KeyName key = MakeKey();
  ASSERT_TRUE(b_lifecycle_->GetKey(key).ok());
  OnAThenFollow([&] { ASSERT_TRUE(lifecycle_->RotateKey(key).ok()); });
  auto seen = b_lifecycle_->GetKey(key);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->primary_version(), 2u);
}

TEST_F(StoreFollowerTest, WhileTheFeedIsDownBReadsTheStoreAndSubscribersAreToldTheyLostEvents) {
  const KeyName key = MakeKey();
  const SegmentName segment{key, "s"};
  ASSERT_TRUE(b_envelope_->GenerateDataKey(segment, {}).ok());
  auto subscription = b_events_.Subscribe("acme");
  b_follower_->Resync(false);
  EXPECT_FALSE(b_follower_->connected());
  KeyEvent event;
  EXPECT_EQ(subscription->Next(absl::ZeroDuration(), &event),
            KeyEventSubscription::WaitResult::kLost);
  // A change the feed never reports is seen at once: no cache is trusted.
  ASSERT_TRUE(lifecycle_->DisableKey(key).ok());
  EXPECT_EQ(b_envelope_->GenerateDataKey(segment, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(lifecycle_->EnableKey(key).ok());
  EXPECT_TRUE(b_envelope_->GenerateDataKey(segment, {}).ok());
  // Back: caches start empty (a change made before is read fresh).
  ASSERT_TRUE(lifecycle_->DisableKey(key).ok());
  b_follower_->Resync(true);
  EXPECT_TRUE(b_follower_->connected());
  EXPECT_EQ(b_envelope_->GenerateDataKey(segment, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A store only this process writes has no feed: Start says so and leaves
// the caches in use (a regression once made every read go to the store).
TEST_F(StoreFollowerTest, WithoutAFeedStartFailsAndTheCachesStayInUse) {
  const KeyName key = MakeKey();
  auto started = StoreFollower::Start(&store_, b_repository_.get(), &b_events_, &clock_);
  EXPECT_EQ(started.status().code(), absl::StatusCode::kUnimplemented);
  auto first = b_repository_->GetKey(key);
  auto second = b_repository_->GetKey(key);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->get(), second->get()) << "the second read came from the cache";
}

// Destroying a version on A purges its material; B must not keep segment
// keys it unwrapped under that version in memory.
TEST_F(StoreFollowerTest, AVersionDestroyedOnADropsBsCachedSegmentKeys) {
  const KeyName key = MakeKey();
  const SegmentName segment{key, "s"};
  auto dk = b_envelope_->GenerateDataKey(segment, {});
  ASSERT_TRUE(dk.ok());
  auto cached = b_repository_->GetSegment(segment);
  ASSERT_TRUE(cached.ok());
  ASSERT_EQ(b_repository_->GetSegment(segment)->get(), cached->get());
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  ASSERT_TRUE(lifecycle_->RewrapSegments(key, "", 100).ok());
  const KeyVersionName v1{key, 1};
  ASSERT_TRUE(lifecycle_->ScheduleKeyVersionDestruction(v1, absl::Hours(24 * 7)).ok());
  clock_.Advance(absl::Hours(24 * 7));
  // Only the purge is fed to B here: the earlier changes reached B while it
  // held the segment, as if its feed had been slow.
  OnAThenFollow([&] { ASSERT_TRUE(lifecycle_->DestroyKeyVersion(v1).ok()); });
  auto after = b_repository_->GetSegment(segment);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->get(), cached->get()) << "B still holds the segment entry of before the purge";
}

TEST_F(StoreFollowerTest, OtherRecordsAndForeignKeysAreIgnored) {
  b_follower_->Apply({StoreChange{std::string("a\0acme\0x", 8), std::nullopt, "approval"},
                      StoreChange{std::string("m\0audit-keys", 12), std::nullopt, "keys"},
                      StoreChange{std::string("k\0ACME\0bad id", 13), std::nullopt, "junk"},
                      StoreChange{std::string("k\0acme\0crm", 10), std::nullopt, "not a record"}});
  EXPECT_EQ(b_follower_->changes_applied(), 4u);
  // A value that is no record tells nothing (its cache entry is dropped
  // all the same); never a crash.
  EXPECT_EQ(b_follower_->events_published(), 0u);
}

}  // namespace
}  // namespace clavis::kms
