#include "kms/keys/key_events.h"

#include <atomic>
#include <thread>
#include <vector>

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

// Several publishers at once: every subscriber of the tenant gets every
// event, in sequence order without gaps (a client takes a gap or a step
// back for lost events and drops its whole cache), while other
// subscriptions come and go.
TEST(KeyEventBusTest, ConcurrentPublishersDeliverEveryEventInSequenceOrder) {
  constexpr int kPublishers = 4;
  constexpr int kPerPublisher = 150;
  constexpr uint64_t kTotal = kPublishers * kPerPublisher;
  KeyEventBus bus(/*queue_capacity=*/kTotal);
  std::vector<std::shared_ptr<KeyEventSubscription>> subs;
  for (int i = 0; i < 3; ++i) subs.push_back(bus.Subscribe("acme"));
  auto globex = bus.Subscribe("globex");

  std::vector<std::thread> threads;
  std::vector<uint64_t> received(subs.size(), 0);
  for (size_t i = 0; i < subs.size(); ++i) {
    threads.emplace_back([&, i] {
      uint64_t last = 0;
      KeyEvent e;
      while (last < kTotal) {
        const Result r = subs[i]->Next(absl::Milliseconds(20), &e);
        ASSERT_TRUE(r == Result::kEvent || r == Result::kTimeout) << static_cast<int>(r);
        if (r != Result::kEvent) continue;
        ASSERT_EQ(e.sequence(), last + 1) << "subscriber " << i;
        last = e.sequence();
      }
      received[i] = last;
    });
  }
  std::atomic<int> publishing{kPublishers};
  for (int p = 0; p < kPublishers; ++p) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerPublisher; ++i) bus.Publish("acme", Event(KeyEvent::ROTATED));
      --publishing;
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 50; ++i) bus.Publish("globex", Event(KeyEvent::DISABLED));
  });
  // Subscriptions opened, closed and dropped meanwhile.
  threads.emplace_back([&] {
    while (publishing > 0) {
      auto sub = bus.Subscribe("acme");
      KeyEvent e;
      sub->Next(absl::ZeroDuration(), &e);
      sub->Close();
      EXPECT_EQ(sub->Next(absl::ZeroDuration(), &e), Result::kClosed);
    }
  });
  for (std::thread& t : threads) t.join();
  for (uint64_t r : received) EXPECT_EQ(r, kTotal);
  KeyEvent e;
  for (uint64_t expected = 1; expected <= 50; ++expected) {
    ASSERT_EQ(globex->Next(absl::ZeroDuration(), &e), Result::kEvent);
    EXPECT_EQ(e.sequence(), expected) << "globex numbers its own events";
  }
  EXPECT_EQ(globex->Next(absl::ZeroDuration(), &e), Result::kTimeout);
}

// Waiters time out again and again while nothing happens, a full queue
// marks its subscriber lost, and CloseAll wakes every waiter, also those
// waiting without a time limit.
TEST(KeyEventBusTest, WaitersTimeOutGetLostAndAllWakeOnCloseAll) {
  KeyEventBus bus(/*queue_capacity=*/4);
  std::atomic<int> waiting{0};
  std::vector<Result> endings(6, Result::kEvent);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < endings.size(); ++i) {
    threads.emplace_back([&, i] {
      auto sub = bus.Subscribe(i % 2 == 0 ? "acme" : "idle");
      const absl::Duration timeout =
          i < 2 ? absl::InfiniteDuration() : absl::Milliseconds(1 + static_cast<int>(i));
      ++waiting;
      KeyEvent e;
      Result r;
      do {
        r = sub->Next(timeout, &e);
      } while (r == Result::kEvent || r == Result::kTimeout);
      // Lost stays lost until closed.
      while (r == Result::kLost) {
        absl::SleepFor(absl::Milliseconds(1));
        r = sub->Next(absl::ZeroDuration(), &e);
      }
      endings[i] = r;
    });
  }
  while (waiting < static_cast<int>(endings.size())) absl::SleepFor(absl::Milliseconds(1));
  // Faster than the waiters read: some "acme" subscribers may fall behind.
  std::thread publisher([&] {
    for (int i = 0; i < 200; ++i) bus.Publish("acme", Event(KeyEvent::ROTATED));
  });
  publisher.join();
  absl::SleepFor(absl::Milliseconds(20));
  bus.CloseAll();
  for (std::thread& t : threads) t.join();
  for (Result r : endings) EXPECT_EQ(r, Result::kClosed);
}

}  // namespace
}  // namespace clavis::kms
