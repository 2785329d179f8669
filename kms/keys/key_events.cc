#include "kms/keys/key_events.h"

#include <algorithm>

namespace clavis::kms {
namespace {

// absl::Mutex::AwaitWithTimeout on a std::condition_variable: waits until
// `ready()` or `timeout` has passed (an infinite or huge timeout waits for
// `ready()` alone) and returns `ready()`.
template <typename Predicate>
bool AwaitWithTimeout(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                      absl::Duration timeout, Predicate ready) {
  if (timeout >= absl::Hours(24 * 365 * 100)) {
    cv.wait(lock, ready);
    return true;
  }
  return cv.wait_for(lock, absl::ToChronoNanoseconds(std::max(timeout, absl::ZeroDuration())),
                     ready);
}

}  // namespace

KeyEventSubscription::WaitResult KeyEventSubscription::Next(absl::Duration timeout,
                                                            clavis::v1::KeyEvent* event) {
  std::unique_lock<std::mutex> lock(mu_);
  AwaitWithTimeout(changed_, lock, timeout, [this] { return closed_ || lost_ || !queue_.empty(); });
  if (closed_) return WaitResult::kClosed;
  if (lost_) return WaitResult::kLost;
  if (queue_.empty()) return WaitResult::kTimeout;
  *event = std::move(queue_.front());
  queue_.pop_front();
  return WaitResult::kEvent;
}

void KeyEventSubscription::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  changed_.notify_all();
}

void KeyEventSubscription::Push(const clavis::v1::KeyEvent& event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || lost_) return;
    if (queue_.size() >= capacity_) {
      lost_ = true;  // the subscriber must resynchronise; never block the publisher
      queue_.clear();
    } else {
      queue_.push_back(event);
    }
  }
  changed_.notify_all();
}

void KeyEventSubscription::MarkLost() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    lost_ = true;
    queue_.clear();
  }
  changed_.notify_all();
}

std::shared_ptr<KeyEventSubscription> KeyEventBus::Subscribe(const std::string& tenant) {
  std::shared_ptr<KeyEventSubscription> sub(new KeyEventSubscription(tenant, queue_capacity_));
  std::lock_guard<std::mutex> lock(mu_);
  subscribers_.push_back(sub);
  return sub;
}

void KeyEventBus::Publish(const std::string& tenant, clavis::v1::KeyEvent event) {
  // Delivered under mu_, so two publishers of one tenant cannot hand their
  // events to a subscriber in the other order than their sequence numbers
  // (a client takes a step back for lost events and drops its cache). Push
  // never blocks, so publishers wait on each other only for the queueing.
  std::vector<std::shared_ptr<KeyEventSubscription>> targets;  // released after the lock
  std::lock_guard<std::mutex> lock(mu_);
  event.set_sequence(++next_sequence_[tenant]);
  subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                    [](const auto& w) { return w.expired(); }),
                     subscribers_.end());
  for (const auto& w : subscribers_) {
    if (auto s = w.lock(); s && s->tenant_ == tenant) targets.push_back(std::move(s));
  }
  for (const auto& s : targets) s->Push(event);
}

void KeyEventBus::CloseAll() {
  std::vector<std::shared_ptr<KeyEventSubscription>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& w : subscribers_) {
      if (auto s = w.lock()) all.push_back(std::move(s));
    }
  }
  for (const auto& s : all) s->Close();
}

void KeyEventBus::LoseAll() {
  std::vector<std::shared_ptr<KeyEventSubscription>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& w : subscribers_) {
      if (auto s = w.lock()) all.push_back(std::move(s));
    }
  }
  for (const auto& s : all) s->MarkLost();
}

}  // namespace clavis::kms
