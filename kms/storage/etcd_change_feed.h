// EtcdChangeFeed: Store::WatchChanges for the etcd backend (etcd_store.h),
// over etcd's Watch API: one watch on the store's key prefix (plus the
// caller's prefix), with the previous value of every changed key
// (prev_kv), delivered in revision order by a thread of its own.
//
// Resynchronisation (StoreChangeHandler::on_resync): when the watch stream
// breaks (member down, network, the server cancels it) the handler hears
// connected == false at once; the feed then opens a new watch, from the
// current revision, on any member the channel reaches, with backoff, and
// reports connected == true when etcd confirms it. Changes made in between
// are not replayed: the handler drops what it derived from the store, and
// from that revision on every change is reported again. (Resuming from the
// last revision seen would also work until a compaction, which every
// destruction triggers; starting over is simpler and always right.)
//
// A watch that goes silent (its member unreachable without the connection
// failing: power loss, a cut network) must not look alive: the feed asks
// etcd for a progress report every second and gives the stream up as
// broken (connected == false) when nothing at all arrived for 3 seconds.
//
// Thread safety: handler calls come from the feed's thread, one at a time.
// Destroying the feed cancels the stream and joins the thread.
#ifndef CLAVIS_KMS_STORAGE_ETCD_CHANGE_FEED_H_
#define CLAVIS_KMS_STORAGE_ETCD_CHANGE_FEED_H_

#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "kms/storage/store.h"

namespace clavis::kms {

class EtcdChangeFeed : public StoreChangeFeed {
 public:
  // `etcd_prefix`: the store's key prefix; `prefix`: the caller's, under it.
  // Reported keys are the store's (without `etcd_prefix`).
  EtcdChangeFeed(std::shared_ptr<grpc::Channel> channel, std::string etcd_prefix,
                 std::string prefix, StoreChangeHandler handler);
  ~EtcdChangeFeed() override;

 private:
  void Run();
  // One watch stream, until it breaks or the feed stops.
  void WatchOnce();
  bool stopping();

  const std::shared_ptr<grpc::Channel> channel_;
  const std::string etcd_prefix_;
  const std::string prefix_;
  const StoreChangeHandler handler_;
  std::mutex mu_;
  bool stop_ = false;                      // guarded by mu_
  grpc::ClientContext* active_ = nullptr;  // guarded by mu_: the stream to cancel
  bool connected_ = false;                 // the feed thread's own
  std::thread thread_;
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_STORAGE_ETCD_CHANGE_FEED_H_
