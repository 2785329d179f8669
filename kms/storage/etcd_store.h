// EtcdStore: the highly available Store backend, every entry a key of an etcd
// v3 cluster (etcd 3.4, gRPC API), so several clavisd replicas can share it.
// docs/ETCD.md says how to run it.
//
// Layout: store key K is etcd key key_prefix + K, so several deployments can
// share one cluster under different prefixes. Nothing else is written.
//
// Consistency: every read is linearizable (served through the Raft leader),
// every write is acknowledged only after the Raft commit. Scan and
// ExportSnapshot read page by page, all pages at the revision of the first,
// so they see one point-in-time view. If a compaction removes that revision
// between two pages (a CommitAndPurge of another replica), a Scan starts
// over; an export that already visited entries fails with Aborted instead
// (exports of this store object are not affected: its own CommitAndPurge
// waits for them before it compacts).
//
// Commit is one etcd Txn: the preconditions are its compares (value ==
// expected, or version == 0 for "absent"), the operations its success
// branch; its failure branch reads the precondition keys so an Aborted error
// can name the key that failed. Repeated operations on one key are folded
// (the last one wins), since etcd rejects a Txn that writes a key twice.
// The whole batch is one Txn, never split: etcd must be started with
// --max-txn-ops and --max-request-bytes large enough for the biggest batch
// (docs/ETCD.md); otherwise Commit fails with FailedPrecondition naming the
// etcd flag, and writes nothing.
//
// CommitAndPurge: the batch and a DeleteRange per prefix in one Txn, then,
// member by member (found through the endpoints, Status and MemberList): a
// compaction that member serves with physical = true, so it returns once
// that member's backend deleted the old revisions (at the Txn's revision for
// the first member; at a fresh revision made by a put and delete of a marker
// key outside the store's keys for the others, since each member waits only
// for compactions it serves), then a defragmentation of that member
// (Maintenance.Defragment), which rewrites its bbolt file without the freed
// pages. Compaction is cluster-wide: it also drops the history of
// keys outside key_prefix, and a defragmentation blocks that member's reads
// and writes while it runs. What it does not reach: the members' Raft WAL
// files and snapshots still hold the original write requests until etcd
// rotates them out (--snapshot-count, --max-wals), and backups or snapshots
// that operators took keep them forever (docs/ETCD.md).
//
// Failures: every call has a deadline (request_timeout). gRPC UNAVAILABLE and
// DEADLINE_EXCEEDED become Unavailable naming the etcd target. Every call
// asks etcd to refuse it at once when the member has no leader (the
// "hasleader" metadata, as clientv3.WithRequireLeader) instead of hanging.
// Reads are re-sent within the deadline after any transient failure, each
// attempt limited to half the timeout (a read stuck on a member whose
// leader just died leaves time for another once a new one is elected).
// Writes are re-sent only when etcd refused them before acting ("no leader",
// "too many requests"). Otherwise never: the calls wait for a ready
// connection (wait_for_ready), so a failure before sending is a timeout, and
// a failure after sending leaves the outcome unknown; re-sending a
// compare-guarded Txn that did apply would then fail its compares and report
// Aborted for a write that happened. The caller sees Unavailable ("outcome
// unknown") and decides: the domain layer re-reads and retries its
// read-modify-write. A write that reaches a follower in the moment its
// leader dies (before the follower notices, about one election timeout) is
// such a case: etcd drops the forwarded proposal and the write times out.
// etcd's "database space exceeded" alarm becomes ResourceExhausted.
//
// Never in logs or errors: values (wrapped key material). Keys are escaped.
//
// Later (issue 10): a Watch(prefix, callback) for the replicas' cache
// invalidation fits beside these methods: it would open a Watch stream on the
// same channel (proto/etcd has the Watch service) from the revision a read
// returned; nothing here holds state that a watcher would have to share.
//
// Thread safety: all methods may be called concurrently (the gRPC stubs are
// thread-safe; the only mutable state is guarded by mutexes).
#ifndef CLAVIS_KMS_STORAGE_ETCD_STORE_H_
#define CLAVIS_KMS_STORAGE_ETCD_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kms/storage/store.h"

namespace grpc {
class Channel;
class ChannelCredentials;
}  // namespace grpc

namespace clavis::kms {

struct EtcdStoreOptions {
  // REQUIRED: the cluster's client endpoints, "host:port", "http://host:port"
  // or "https://host:port" (https: TLS). Several endpoints must be IP
  // addresses (gRPC balances over them and skips unreachable ones); a single
  // one may be a DNS name (all its addresses are used).
  std::vector<std::string> endpoints;
  // Prepended to every key. Must not be empty; "/clavis/" by convention.
  std::string key_prefix = "/clavis/";
  // Deadline of every etcd call (a CommitAndPurge makes several).
  absl::Duration request_timeout = absl::Seconds(5);
  // TLS (on if any of these is set or an endpoint is https://): PEM files of
  // the CA that signed the etcd server certificates (empty: the system's
  // roots), and the client certificate and key for etcd's
  // --client-cert-auth (both or neither).
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // The name to check the server certificates against, if not the
  // endpoint's host (for instance when endpoints are IP addresses and the
  // certificates name the host).
  std::string tls_server_name;
  // Entries per Range request of Scan and ExportSnapshot.
  size_t page_size = 500;
};

class EtcdStore : public Store {
 public:
  // Checks the options and sets up the connection (lazily: nothing is sent,
  // see CheckReachable). InvalidArgument for bad options, NotFound or
  // PermissionDenied if a TLS file cannot be read.
  static absl::StatusOr<std::unique_ptr<EtcdStore>> New(const EtcdStoreOptions& options);

  ~EtcdStore() override;
  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  // Asks the cluster for its status (Maintenance.Status) within the request
  // timeout: the etcd version ("3.4.23") on success; Unavailable naming the
  // endpoints if no member answers.
  absl::StatusOr<std::string> CheckReachable();

  absl::StatusOr<std::optional<std::string>> Get(absl::string_view key) override;
  absl::Status Put(absl::string_view key, absl::string_view value) override;
  absl::Status Delete(absl::string_view key) override;
  absl::StatusOr<std::vector<KeyValue>> Scan(absl::string_view prefix,
                                             absl::string_view start_after, size_t limit) override;
  absl::Status Commit(const WriteBatch& batch) override;
  absl::Status CommitAndPurge(const WriteBatch& batch,
                              const std::vector<std::string>& delete_prefixes) override;
  absl::Status ExportSnapshot(const ExportVisitor& visit) override;
  // etcd's Watch (kms/storage/etcd_change_feed.h): every replica sharing the
  // prefix hears of every change, its own included.
  absl::StatusOr<std::unique_ptr<StoreChangeFeed>> WatchChanges(
      absl::string_view prefix, StoreChangeHandler handler) override;

  // The gRPC target the KV calls use ("ipv4:127.0.0.1:2379,..."), for
  // messages and tests.
  const std::string& target() const { return target_; }

 private:
  struct Stubs;
  struct TxnResult;

  EtcdStore(EtcdStoreOptions options, std::string target,
            std::shared_ptr<grpc::ChannelCredentials> credentials,
            std::shared_ptr<grpc::Channel> channel);

  // One Txn of `batch` plus a DeleteRange per prefix.
  absl::StatusOr<TxnResult> RunTxn(const WriteBatch& batch,
                                   const std::vector<std::string>& delete_prefixes);
  // Pages through [begin, end) at one revision, calling `page` per page.
  // limit 0: no limit. Aborted if a compaction removed that revision
  // between two pages.
  absl::Status RangeAtOneRevision(
      const std::string& begin, const std::string& end, size_t limit,
      const std::function<absl::Status(std::vector<KeyValue>& page)>& visit_page);
  // Compacts at `revision` (or later) and defragments every member, each
  // after its own backend finished deleting the old revisions.
  absl::Status Purge(int64_t revision);
  // Makes a new revision (a put and a delete of a marker key outside the
  // store's keys) and returns it.
  absl::StatusOr<int64_t> NewRevision();
  // A channel to one member ("host:port"), with the store's credentials
  // (TLS is all or nothing across the cluster).
  std::shared_ptr<grpc::Channel> MemberChannel(const std::string& address);

  // Constant after construction.
  const EtcdStoreOptions options_;
  const std::string target_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<Stubs> stubs_;

  // Exports hold it shared for their whole run; CommitAndPurge holds it
  // exclusively while it compacts, so it waits for them (their revision
  // must stay readable) without blocking anything else.
  absl::Mutex export_gate_;

  absl::Mutex channels_mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> member_channels_
      ABSL_GUARDED_BY(channels_mu_);  // by "host:port"
};

}  // namespace clavis::kms

#endif  // CLAVIS_KMS_STORAGE_ETCD_STORE_H_
