#include "kms/keys/key_events.h"

#include <algorithm>

namespace clavis::kms {

KeyEventSubscription::WaitResult KeyEventSubscription::Next(absl::Duration timeout,
                                                            clavis::v1::KeyEvent* event) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || lost_ || !queue_.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (closed_) return WaitResult::kClosed;
  if (lost_) return WaitResult::kLost;
  if (queue_.empty()) return WaitResult::kTimeout;
  *event = std::move(queue_.front());
  queue_.pop_front();
  return WaitResult::kEvent;
}

void KeyEventSubscription::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

void KeyEventSubscription::Push(const clavis::v1::KeyEvent& event) {
  absl::MutexLock lock(&mu_);
  if (closed_ || lost_) return;
  if (queue_.size() >= capacity_) {
    lost_ = true;  // the subscriber must resynchronise; never block the publisher
    queue_.clear();
    return;
  }
  queue_.push_back(event);
}

void KeyEventSubscription::MarkLost() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  lost_ = true;
  queue_.clear();
}

std::shared_ptr<KeyEventSubscription> KeyEventBus::Subscribe(const std::string& tenant) {
  std::shared_ptr<KeyEventSubscription> sub(new KeyEventSubscription(tenant, queue_capacity_));
  absl::MutexLock lock(&mu_);
  subscribers_.push_back(sub);
  return sub;
}

void KeyEventBus::Publish(const std::string& tenant, clavis::v1::KeyEvent event) {
  std::vector<std::shared_ptr<KeyEventSubscription>> targets;
  {
    absl::MutexLock lock(&mu_);
    event.set_sequence(++next_sequence_[tenant]);
    subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                      [](const auto& w) { return w.expired(); }),
                       subscribers_.end());
    for (const auto& w : subscribers_) {
      if (auto s = w.lock(); s && s->tenant_ == tenant) targets.push_back(std::move(s));
    }
  }
  for (const auto& s : targets) s->Push(event);
}

void KeyEventBus::CloseAll() {
  std::vector<std::shared_ptr<KeyEventSubscription>> all;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& w : subscribers_) {
      if (auto s = w.lock()) all.push_back(std::move(s));
    }
  }
  for (const auto& s : all) s->Close();
}

void KeyEventBus::LoseAll() {
  std::vector<std::shared_ptr<KeyEventSubscription>> all;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& w : subscribers_) {
      if (auto s = w.lock()) all.push_back(std::move(s));
    }
  }
  for (const auto& s : all) s->MarkLost();
}

}  // namespace clavis::kms
