#include "kms/keys/key_events.h"

#include <thread>

#include "gtest/gtest.h"

namespace clavis::kms {
namespace {

using clavis::v1::KeyEvent;
using Result = KeyEventSubscription::WaitResult;

KeyEvent Event(KeyEvent::Type type) {
  KeyEvent e;
  e.set_type(type);
  return e;
}

TEST(KeyEventBusTest, DeliversInOrderWithIncreasingSequence) {
  KeyEventBus bus;
  auto sub = bus.Subscribe("acme");
  bus.Publish("acme", Event(KeyEvent::ROTATED));
  bus.Publish("acme", Event(KeyEvent::DISABLED));
  KeyEvent a, b;
  ASSERT_EQ(sub->Next(absl::ZeroDuration(), &a), Result::kEvent);
  ASSERT_EQ(sub->Next(absl::ZeroDuration(), &b), Result::kEvent);
  EXPECT_EQ(a.type(), KeyEvent::ROTATED);
  EXPECT_EQ(b.type(), KeyEvent::DISABLED);
  EXPECT_LT(a.sequence(), b.sequence());
  EXPECT_EQ(sub->Next(absl::Milliseconds(1), &a), Result::kTimeout);
}

TEST(KeyEventBusTest, OtherTenantsSeeNothing) {
  KeyEventBus bus;
  auto sub = bus.Subscribe("globex");
  bus.Publish("acme", Event(KeyEvent::DISABLED));
  KeyEvent e;
  EXPECT_EQ(sub->Next(absl::ZeroDuration(), &e), Result::kTimeout);
}

TEST(KeyEventBusTest, SequenceHasNoGapsFromOtherTenantsEvents) {
  KeyEventBus bus;
  auto acme = bus.Subscribe("acme");
  bus.Publish("acme", Event(KeyEvent::ROTATED));
  bus.Publish("globex", Event(KeyEvent::ROTATED));
  bus.Publish("acme", Event(KeyEvent::DISABLED));
  KeyEvent a, b;
  ASSERT_EQ(acme->Next(absl::ZeroDuration(), &a), Result::kEvent);
  ASSERT_EQ(acme->Next(absl::ZeroDuration(), &b), Result::kEvent);
  EXPECT_EQ(b.sequence(), a.sequence() + 1);
}

TEST(KeyEventBusTest, ASlowSubscriberIsMarkedLostInsteadOfBlocking) {
  KeyEventBus bus(/*queue_capacity=*/3);
  auto sub = bus.Subscribe("acme");
  for (int i = 0; i < 10; ++i) bus.Publish("acme", Event(KeyEvent::ROTATED));
  KeyEvent e;
  EXPECT_EQ(sub->Next(absl::ZeroDuration(), &e), Result::kLost);
}

TEST(KeyEventBusTest, WaitingSubscriberWakesOnPublishAndOnClose) {
  KeyEventBus bus;
  auto sub = bus.Subscribe("acme");
  std::thread publisher([&] {
    absl::SleepFor(absl::Milliseconds(20));
    bus.Publish("acme", Event(KeyEvent::DISABLED));
    absl::SleepFor(absl::Milliseconds(20));
    bus.CloseAll();
  });
  KeyEvent e;
  EXPECT_EQ(sub->Next(absl::Seconds(10), &e), Result::kEvent);
  EXPECT_EQ(sub->Next(absl::Seconds(10), &e), Result::kClosed);
  publisher.join();
}

TEST(KeyEventBusTest, DroppedSubscriptionsAreForgotten) {
  KeyEventBus bus;
  { auto sub = bus.Subscribe("acme"); }
  bus.Publish("acme", Event(KeyEvent::ROTATED));  // must not touch freed memory
  SUCCEED();
}

}  // namespace
}  // namespace clavis::kms
