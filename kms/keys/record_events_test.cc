// DeriveKeyEvents / DeriveSegmentEvents against the real thing: every
// operation of KeyLifecycle is run on a store, the change it made is read
// back as a change feed would report it, and the events derived from that
// change must be exactly the events KeyLifecycle published itself. A
// replica that learns of a change from the feed thus tells its subscribers
// what the replica that made it told its own.
#include "kms/keys/record_events.h"

#include <algorithm>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kms/keys/key_domain_testing.h"
#include "kms/keys/store_changes_testing.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyEvent;
using clavis::v1::KeyState;

// (type, key, segment, version): what subscribers act on.
using EventId = std::tuple<std::string, std::string, std::string, uint32_t>;

EventId Id(const KeyEvent& e) {
  return {KeyEvent::Type_Name(e.type()), e.key(), e.segment(), e.version()};
}

class RecordEventsTest : public testing::KeyDomainTest {
 protected:
  void SetUp() override {
    KeyDomainTest::SetUp();
    subscription_ = events_.Subscribe("acme");
  }

  std::vector<EventId> Published() {
    std::vector<EventId> out;
    KeyEvent e;
    while (subscription_->Next(absl::ZeroDuration(), &e) ==
           KeyEventSubscription::WaitResult::kEvent) {
      out.push_back(Id(e));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  static std::vector<EventId> Derived(const std::vector<StoreChange>& changes) {
    std::vector<EventId> out;
    for (const StoreChange& c : changes) {
      auto parse = [](const std::optional<std::string>& v, auto* record) {
        using Record = std::remove_pointer_t<decltype(record)>;
        std::optional<Record> r;
        if (v.has_value()) {
          r.emplace();
          EXPECT_TRUE(r->ParseFromString(*v));
        }
        return r;
      };
      std::vector<KeyEvent> events;
      if (auto key = KeyRepository::ParseKeyStoreKey(c.key)) {
        events = DeriveKeyEvents(*key, parse(c.old_value, (internal::KeyRecord*)nullptr),
                                 parse(c.new_value, (internal::KeyRecord*)nullptr));
      } else if (auto segment = KeyRepository::ParseSegmentStoreKey(c.key)) {
        events =
            DeriveSegmentEvents(*segment, parse(c.old_value, (internal::SegmentRecord*)nullptr),
                                parse(c.new_value, (internal::SegmentRecord*)nullptr));
      }
      for (const auto& e : events) out.push_back(Id(e));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Runs `op`, then checks that the store change it made derives exactly
  // the events it published.
  void ExpectSameEvents(const std::string& what, const std::function<absl::Status()>& op) {
    SCOPED_TRACE(what);
    (void)Published();
    const auto before = testing::Snapshot(store_);
    absl::Status s = op();
    ASSERT_TRUE(s.ok()) << s;
    const auto changes = testing::Diff(before, testing::Snapshot(store_));
    EXPECT_FALSE(changes.empty());
    EXPECT_EQ(Derived(changes), Published());
  }

  std::shared_ptr<KeyEventSubscription> subscription_;
};

template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

TEST_F(RecordEventsTest, EveryKeyOperationDerivesWhatItPublished) {
  KeyName key{"acme", "crm"};
  ExpectSameEvents("create", [&] {
    CreateKeyParams p;
    p.tenant = "acme";
    p.key_id = "crm";
    return StatusOf(lifecycle_->CreateKey(p));
  });
  ExpectSameEvents("rotate", [&] { return StatusOf(lifecycle_->RotateKey(key)); });
  ExpectSameEvents("rotate again", [&] { return StatusOf(lifecycle_->RotateKey(key)); });
  const KeyVersionName v1{key, 1};
  ExpectSameEvents("disable version", [&] { return StatusOf(lifecycle_->DisableKeyVersion(v1)); });
  ExpectSameEvents("enable version", [&] { return StatusOf(lifecycle_->EnableKeyVersion(v1)); });
  ExpectSameEvents("compromise version",
                   [&] { return StatusOf(lifecycle_->MarkKeyVersionCompromised(v1)); });
  ExpectSameEvents("schedule version destruction", [&] {
    return StatusOf(lifecycle_->ScheduleKeyVersionDestruction(v1, std::nullopt));
  });
  ExpectSameEvents("cancel version destruction",
                   [&] { return StatusOf(lifecycle_->CancelKeyVersionDestruction(v1)); });
  ExpectSameEvents("schedule version destruction again", [&] {
    return StatusOf(lifecycle_->ScheduleKeyVersionDestruction(v1, absl::Hours(24 * 7)));
  });
  clock_.Advance(absl::Hours(24 * 7));
  ExpectSameEvents("destroy version", [&] { return StatusOf(lifecycle_->DestroyKeyVersion(v1)); });
  ExpectSameEvents("settings", [&] {
    KeySettingsUpdate u;
    u.description = "customer records";
    u.labels = std::map<std::string, std::string>{{"team", "crm"}};
    return StatusOf(lifecycle_->UpdateKeySettings(key, u));
  });
  ExpectSameEvents("access", [&] {
    KeyAccessUpdate u;
    u.approvals_required = 2;
    return StatusOf(lifecycle_->UpdateKeyAccess(key, u));
  });
  ExpectSameEvents("disable", [&] { return StatusOf(lifecycle_->DisableKey(key)); });
  ExpectSameEvents("enable", [&] { return StatusOf(lifecycle_->EnableKey(key)); });
  ExpectSameEvents("schedule destruction",
                   [&] { return StatusOf(lifecycle_->ScheduleKeyDestruction(key, std::nullopt)); });
  ExpectSameEvents("cancel destruction",
                   [&] { return StatusOf(lifecycle_->CancelKeyDestruction(key)); });
  ExpectSameEvents("schedule destruction again", [&] {
    return StatusOf(lifecycle_->ScheduleKeyDestruction(key, absl::Hours(24 * 7)));
  });
  clock_.Advance(absl::Hours(24 * 7));
  ExpectSameEvents("destroy", [&] { return StatusOf(lifecycle_->DestroyKey(key)); });
}

TEST_F(RecordEventsTest, EverySegmentOperationDerivesWhatItPublished) {
  const KeyName key = MakeKey();
  const SegmentName segment{key, "acme/orders/2026-11"};
  ASSERT_TRUE(envelope_->GenerateDataKey(segment, {}).ok());
  ExpectSameEvents("rotate segment", [&] { return StatusOf(lifecycle_->RotateSegment(segment)); });
  ExpectSameEvents("revoke", [&] { return StatusOf(lifecycle_->RevokeSegment(segment)); });
  ExpectSameEvents("enable", [&] { return StatusOf(lifecycle_->EnableSegment(segment)); });
  ExpectSameEvents("schedule destruction", [&] {
    return StatusOf(lifecycle_->ScheduleSegmentDestruction(segment, std::nullopt));
  });
  ExpectSameEvents("cancel destruction",
                   [&] { return StatusOf(lifecycle_->CancelSegmentDestruction(segment)); });
  ExpectSameEvents("schedule destruction again", [&] {
    return StatusOf(lifecycle_->ScheduleSegmentDestruction(segment, absl::Hours(24 * 7)));
  });
  clock_.Advance(absl::Hours(24 * 7));
  ExpectSameEvents("destroy", [&] { return StatusOf(lifecycle_->DestroySegment(segment)); });
}

TEST_F(RecordEventsTest, ReWrapsAreNoEvent) {
  const KeyName key = MakeKey();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(envelope_->GenerateDataKey(SegmentName{key, absl::StrCat("s", i)}, {}).ok());
  }
  ASSERT_TRUE(lifecycle_->RotateKey(key).ok());
  (void)Published();
  const auto before = testing::Snapshot(store_);
  auto progress = lifecycle_->RewrapSegments(key, "", 100);
  ASSERT_TRUE(progress.ok()) << progress.status();
  ASSERT_EQ(progress->rewrapped, 5u);
  const auto changes = testing::Diff(before, testing::Snapshot(store_));
  EXPECT_EQ(changes.size(), 5u);
  EXPECT_TRUE(Derived(changes).empty());
  EXPECT_TRUE(Published().empty());
}

// Imported material (BYOK) gets and loses its material in records that
// KeyImporter writes; checked on hand-made records.
TEST(RecordEventsDerivationTest, ImportedMaterialArrivingAndExpiring) {
  const KeyName key{"acme", "byok"};
  internal::KeyRecord pending;
  pending.set_state(KeyState::PENDING_IMPORT);
  pending.set_origin(clavis::v1::EXTERNAL);
  internal::KeyRecord imported = pending;
  imported.set_state(KeyState::ENABLED);
  imported.set_primary_version(1);
  auto* v = imported.add_versions();
  v->set_version(1);
  v->set_state(KeyState::ENABLED);
  v->set_root_wrapped_material("wrapped");
  auto events = DeriveKeyEvents(key, pending, imported);
  std::vector<EventId> ids;
  for (const auto& e : events) ids.push_back(Id(e));
  EXPECT_THAT(ids, ::testing::UnorderedElementsAre(
                       EventId{"ROTATED", "tenants/acme/keys/byok", "", 1},
                       EventId{"MATERIAL_IMPORTED", "tenants/acme/keys/byok", "", 1}));

  internal::KeyRecord expired = imported;
  expired.set_state(KeyState::PENDING_IMPORT);
  expired.mutable_versions(0)->set_state(KeyState::PENDING_IMPORT);
  expired.mutable_versions(0)->clear_root_wrapped_material();
  events = DeriveKeyEvents(key, imported, expired);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type(), KeyEvent::MATERIAL_EXPIRED);
  EXPECT_EQ(events[0].version(), 1u);
}

TEST(RecordEventsDerivationTest, EqualRecordsWithManyLabelsAreNoEvent) {
  // Map fields have no fixed serialized order: equal records must still
  // compare equal.
  const KeyName key{"acme", "crm"};
  internal::KeyRecord a;
  internal::KeyRecord b;
  for (int i = 0; i < 50; ++i) (*a.mutable_labels())[absl::StrCat("l", i)] = "v";
  for (int i = 49; i >= 0; --i) (*b.mutable_labels())[absl::StrCat("l", i)] = "v";
  EXPECT_TRUE(DeriveKeyEvents(key, a, b).empty());
}

TEST(RecordEventsDerivationTest, CreatedAndDeletedRecords) {
  const KeyName key{"acme", "crm"};
  internal::KeyRecord record;
  record.set_state(KeyState::ENABLED);
  auto created = DeriveKeyEvents(key, std::nullopt, record);
  ASSERT_EQ(created.size(), 1u);
  EXPECT_EQ(created[0].type(), KeyEvent::CREATED);
  // Never done by Clavis, but a deleted key record must not go unnoticed.
  auto deleted = DeriveKeyEvents(key, record, std::nullopt);
  ASSERT_EQ(deleted.size(), 1u);
  EXPECT_EQ(deleted[0].type(), KeyEvent::DESTROYED);
  // Segments: created silently, deleted only with their key.
  internal::SegmentRecord segment;
  EXPECT_TRUE(DeriveSegmentEvents(SegmentName{key, "s"}, std::nullopt, segment).empty());
  EXPECT_TRUE(DeriveSegmentEvents(SegmentName{key, "s"}, segment, std::nullopt).empty());
}

}  // namespace
}  // namespace clavis::kms
