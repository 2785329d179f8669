#include "kms/storage/etcd_change_feed.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "kms/storage/store_util.h"
#include "spdlog/spdlog.h"

namespace clavis::kms {
namespace {

// [begin, end) of every etcd key starting with `prefix` ("\0": to the end).
std::string RangeEnd(const std::string& prefix) {
  std::optional<std::string> end = storage_internal::PrefixSuccessor(prefix);
  return end.has_value() ? *end : std::string(1, '\0');
}

constexpr std::chrono::milliseconds kProgressInterval(1000);
constexpr std::chrono::milliseconds kSilenceLimit(3000);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

EtcdChangeFeed::EtcdChangeFeed(std::shared_ptr<grpc::Channel> channel, std::string etcd_prefix,
                               std::string prefix, StoreChangeHandler handler)
    : channel_(std::move(channel)),
      etcd_prefix_(std::move(etcd_prefix)),
      prefix_(std::move(prefix)),
      handler_(std::move(handler)) {
  thread_ = std::thread([this] { Run(); });
}

EtcdChangeFeed::~EtcdChangeFeed() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  thread_.join();
}

bool EtcdChangeFeed::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

void EtcdChangeFeed::Run() {
  auto backoff = std::chrono::milliseconds(50);
  while (!stopping()) {
    const bool was_connected = connected_;
    WatchOnce();
    if (connected_) {
      connected_ = false;
      if (handler_.on_resync) handler_.on_resync(false);
    }
    if (stopping()) break;
    // Quick retries after a stream that worked (a member went away: another
    // one answers), slower ones while nothing answers.
    backoff = was_connected ? std::chrono::milliseconds(50)
                            : std::min(backoff * 2, std::chrono::milliseconds(1000));
    std::unique_lock<std::mutex> lock(mu_);
    // Sleep in small steps so that the destructor is not kept waiting.
    for (auto slept = std::chrono::milliseconds(0); slept < backoff && !stop_;
         slept += std::chrono::milliseconds(10)) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      lock.lock();
    }
  }
}

void EtcdChangeFeed::WatchOnce() {
  grpc::ClientContext context;
  // Refused at once by a member without a leader, which cannot guarantee
  // to deliver every event; the retry finds one that has.
  context.AddMetadata("hasleader", "true");
  // Wait for the channel to reconnect rather than fail at once while etcd
  // is away; the destructor's TryCancel ends the wait.
  context.set_wait_for_ready(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    active_ = &context;
  }
  auto stub = etcdserverpb::Watch::NewStub(channel_);
  auto stream = stub->Watch(&context);
  etcdserverpb::WatchRequest request;
  auto* create = request.mutable_create_request();
  const std::string begin = etcd_prefix_ + prefix_;
  create->set_key(begin);
  create->set_range_end(RangeEnd(begin));
  create->set_prev_kv(true);
  etcdserverpb::WatchResponse response;
  // The watchdog (see the header): the only writer once the watch is
  // created, so its writes never overlap the create request's.
  std::atomic<int64_t> last_heard_ms{NowMs()};
  std::mutex watchdog_mu;
  std::condition_variable watchdog_cv;
  bool watchdog_done = false;
  std::thread watchdog;
  auto stop_watchdog = [&] {
    {
      std::lock_guard<std::mutex> lock(watchdog_mu);
      watchdog_done = true;
    }
    watchdog_cv.notify_all();
    if (watchdog.joinable()) watchdog.join();
  };
  if (stream->Write(request)) {
    watchdog = std::thread([&] {
      etcdserverpb::WatchRequest progress;
      progress.mutable_progress_request();
      std::unique_lock<std::mutex> lock(watchdog_mu);
      while (!watchdog_cv.wait_for(lock, kProgressInterval, [&] { return watchdog_done; })) {
        if (NowMs() - last_heard_ms.load() > kSilenceLimit.count()) {
          spdlog::warn("store change feed: no word from etcd for {} ms; watching again",
                       NowMs() - last_heard_ms.load());
          context.TryCancel();
          return;
        }
        lock.unlock();
        const bool written = stream->Write(progress);
        lock.lock();
        if (!written) return;
      }
    });
    while (stream->Read(&response)) {
      last_heard_ms = NowMs();
      if (response.created() && !connected_) {
        connected_ = true;
        if (handler_.on_resync) handler_.on_resync(true);
      }
      if (response.canceled()) {
        spdlog::warn(
            "etcd cancelled the change feed's watch ({}); watching again",
            response.cancel_reason().empty() ? "no reason given" : response.cancel_reason());
        break;
      }
      if (response.events_size() == 0) continue;
      std::vector<StoreChange> changes;
      changes.reserve(response.events_size());
      for (const auto& event : response.events()) {
        if (!absl::StartsWith(event.kv().key(), etcd_prefix_)) continue;
        StoreChange change;
        change.key = event.kv().key().substr(etcd_prefix_.size());
        if (event.has_prev_kv()) change.old_value = event.prev_kv().value();
        if (event.type() == mvccpb::Event::PUT) change.new_value = event.kv().value();
        changes.push_back(std::move(change));
      }
      if (!changes.empty() && handler_.on_changes) handler_.on_changes(changes);
    }
  }
  context.TryCancel();
  stop_watchdog();
  const grpc::Status status = stream->Finish();
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_ = nullptr;
  }
  if (!stopping() && connected_) {
    spdlog::warn("store change feed: etcd watch ended ({}); watching again",
                 status.ok() ? std::string("stream closed") : status.error_message());
  }
}

}  // namespace clavis::kms
