#include "kms/storage/etcd_store.h"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "kms/storage/etcd_change_feed.h"
#include "kms/storage/store_util.h"

namespace clavis::kms {

struct EtcdStore::Stubs {
  explicit Stubs(const std::shared_ptr<grpc::Channel>& channel)
      : kv(etcdserverpb::KV::NewStub(channel)),
        cluster(etcdserverpb::Cluster::NewStub(channel)),
        maintenance(etcdserverpb::Maintenance::NewStub(channel)) {}
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Cluster::Stub> cluster;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
};

struct EtcdStore::TxnResult {
  int64_t revision = 0;
};

namespace {

// Whole-scan restarts when a compaction overtook the scan's revision.
constexpr int kScanRestarts = 5;

// etcd's error strings (etcdserver/api/v3rpc/rpctypes/error.go, mvcc/kvstore.go).
constexpr absl::string_view kCompactedError = "required revision has been compacted";
constexpr absl::string_view kTooManyOpsError = "too many operations in txn request";
constexpr absl::string_view kTooLargeError = "request is too large";
constexpr absl::string_view kNoSpaceError = "database space exceeded";

struct Endpoint {
  std::string address;  // host:port
  bool tls = false;
};

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view url) {
  Endpoint endpoint;
  absl::string_view rest = url;
  if (absl::ConsumePrefix(&rest, "https://")) {
    endpoint.tls = true;
  } else {
    absl::ConsumePrefix(&rest, "http://");
  }
  while (absl::ConsumeSuffix(&rest, "/")) {
  }
  if (rest.empty() || absl::StrContains(rest, "/") || rest.rfind(':') == absl::string_view::npos ||
      rest.back() == ':') {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd endpoint \"", absl::CHexEscape(url),
                     "\" is not host:port, http://host:port or https://host:port"));
  }
  endpoint.address = std::string(rest);
  return endpoint;
}

bool IsIpv4(absl::string_view host) {
  in_addr addr;
  return ::inet_pton(AF_INET, std::string(host).c_str(), &addr) == 1;
}

bool IsBracketedIpv6(absl::string_view host) {
  if (host.size() < 2 || host.front() != '[' || host.back() != ']') return false;
  in6_addr addr;
  return ::inet_pton(AF_INET6, std::string(host.substr(1, host.size() - 2)).c_str(), &addr) == 1;
}

absl::string_view HostOf(absl::string_view address) {
  return address.substr(0, address.rfind(':'));
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read the etcd TLS ", what, " file ", path));
  }
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

grpc::ChannelArguments ChannelArgs(const EtcdStoreOptions& options) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  // Scan pages of large values; etcd's own limit (--max-request-bytes) bounds
  // requests, and responses are bounded by page_size.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Reconnect to a restarted member within about a second, not gRPC's
  // default of up to two minutes.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Notice a member that vanished without closing the connection (power
  // loss, a cut network) within ~15 s even on an idle channel, so a watch
  // on it fails instead of hanging. etcd accepts pings every 5 s or more
  // (--grpc-keepalive-min-time).
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  return args;
}

bool IsTransient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("code ", static_cast<int>(code));
  }
}

bool IsCompacted(const grpc::Status& status) {
  return absl::StrContains(status.error_message(), kCompactedError);
}

// Converts a failed etcd call into an absl::Status. etcd's messages name no
// values (and gRPC's none at all), so they are passed on.
absl::Status FromGrpc(const grpc::Status& status, absl::string_view target, absl::string_view call,
                      bool write) {
  const std::string& message = status.error_message();
  const std::string where = absl::StrCat("etcd ", target, ": ", call, ": ");
  if (absl::StrContains(message, kTooManyOpsError)) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, "etcd rejected the transaction: ", message,
        " (etcd --max-txn-ops, default 128, is smaller than this batch; start etcd with "
        "--max-txn-ops=10240, see docs/ETCD.md); nothing was written"));
  }
  if (absl::StrContains(message, kTooLargeError) ||
      (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
       absl::StrContains(message, "larger than max"))) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, "etcd rejected the request as too large: ", message,
                     " (etcd --max-request-bytes, default 1.5 MiB; start etcd with "
                     "--max-request-bytes=10485760, see docs/ETCD.md); nothing was written"));
  }
  if (absl::StrContains(message, kNoSpaceError)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(where, message, " (etcd's NOSPACE alarm: --quota-backend-bytes)"));
  }
  if (IsTransient(status.error_code())) {
    return absl::UnavailableError(absl::StrCat(
        where, CodeName(status.error_code()), ": ", message,
        write ? " (the write's outcome is unknown: it may or may not have applied)" : ""));
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
      status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    return absl::PermissionDeniedError(
        absl::StrCat(where, CodeName(status.error_code()), ": ", message));
  }
  return absl::InternalError(absl::StrCat(where, CodeName(status.error_code()), ": ", message));
}

// [begin, end) of every etcd key starting with `prefix`; "\0" as end means
// "to the end of the key space" in etcd.
std::string RangeEnd(absl::string_view prefix) {
  std::optional<std::string> end = storage_internal::PrefixSuccessor(prefix);
  return end.has_value() ? *end : std::string(1, '\0');
}

void SetDeadline(grpc::ClientContext& context, absl::Time deadline) {
  context.set_deadline(absl::ToChronoTime(deadline));
  // Wait for a ready connection instead of failing at once while the channel
  // reconnects: a write then fails only by timing out before it was sent,
  // or with an unknown outcome after.
  context.set_wait_for_ready(true);
}

// etcd refused the call before acting on it, so it may be re-sent even if
// it is a write: "no leader" (the member knows it has none; only returned
// because every call asks for it with the "hasleader" metadata) and "too
// many requests" (the apply queue is full). etcd checks both before
// proposing anything (etcdserver/api/v3rpc/interceptor.go, v3_server.go).
bool RefusedBeforeActing(const grpc::Status& status) {
  return absl::StrContains(status.error_message(), "etcdserver: no leader") ||
         absl::StrContains(status.error_message(), "etcdserver: too many requests");
}

// Runs `call` with a fresh context until it succeeds, fails for good, or
// `timeout` has passed. Writes are re-sent only when etcd refused them
// before acting (above). Reads are also re-sent after UNAVAILABLE or an
// attempt's own deadline, and each read attempt gets at most half the
// timeout, so a read stuck on a member that lost its leader leaves time for
// a second one once a new leader is elected.
template <typename Call>
grpc::Status CallEtcd(absl::Duration timeout, bool is_write, const Call& call) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const absl::Time attempt_deadline =
        is_write ? deadline : std::min(deadline, absl::Now() + timeout / 2);
    grpc::ClientContext context;
    SetDeadline(context, attempt_deadline);
    // Fail fast ("etcdserver: no leader") instead of waiting for the
    // deadline when the member has no leader.
    context.AddMetadata("hasleader", "true");
    const grpc::Status status = call(context);
    if (status.ok()) return status;
    const bool again =
        RefusedBeforeActing(status) || (!is_write && IsTransient(status.error_code()));
    if (!again || absl::Now() + absl::Milliseconds(50) >= deadline) return status;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

bool PreconditionHolds(const WriteBatch::Precondition& precondition,
                       const etcdserverpb::RangeResponse& range) {
  if (!precondition.expected_value.has_value()) return range.kvs_size() == 0;
  return range.kvs_size() == 1 && range.kvs(0).value() == *precondition.expected_value;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdStore>> EtcdStore::New(const EtcdStoreOptions& options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("the etcd store needs at least one endpoint");
  }
  if (options.key_prefix.empty()) {
    return absl::InvalidArgumentError("the etcd key prefix must not be empty (e.g. \"/clavis/\")");
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the etcd request timeout must be positive");
  }
  if (options.page_size == 0) {
    return absl::InvalidArgumentError("the etcd page size must be positive");
  }
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "the etcd TLS client certificate and key go together: give both or neither");
  }
  bool tls = !options.tls_ca_file.empty() || !options.tls_cert_file.empty() ||
             !options.tls_server_name.empty();
  std::vector<Endpoint> endpoints;
  for (const std::string& url : options.endpoints) {
    absl::StatusOr<Endpoint> endpoint = ParseEndpoint(url);
    if (!endpoint.ok()) return endpoint.status();
    tls = tls || endpoint->tls;
    endpoints.push_back(*std::move(endpoint));
  }
  // gRPC checks one name against every member's certificate; with several
  // addresses and no override that "name" is the whole address list, which
  // no certificate holds, and every call would time out.
  if (tls && endpoints.size() > 1 && options.tls_server_name.empty()) {
    return absl::InvalidArgumentError(
        "several etcd endpoints over TLS need etcd_server_name (--etcd_server_name): one name "
        "that every member's certificate lists");
  }
  std::vector<std::string> addresses;
  bool all_ipv4 = true;
  bool all_ipv6 = true;
  for (const Endpoint& endpoint : endpoints) {
    addresses.push_back(endpoint.address);
    all_ipv4 = all_ipv4 && IsIpv4(HostOf(endpoint.address));
    all_ipv6 = all_ipv6 && IsBracketedIpv6(HostOf(endpoint.address));
  }
  std::string target;
  if (all_ipv4) {
    target = absl::StrCat("ipv4:", absl::StrJoin(addresses, ","));
  } else if (all_ipv6) {
    target = absl::StrCat("ipv6:", absl::StrJoin(addresses, ","));
  } else if (addresses.size() == 1) {
    target = absl::StrCat("dns:///", addresses[0]);
  } else {
    return absl::InvalidArgumentError(
        "several etcd endpoints must all be IPv4 or all IPv6 addresses (or give one DNS name "
        "that resolves to every member)");
  }

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadPemFile(options.tls_ca_file, "CA");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadPemFile(options.tls_cert_file, "certificate");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadPemFile(options.tls_key_file, "key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, credentials, ChannelArgs(options));
  return std::unique_ptr<EtcdStore>(
      new EtcdStore(options, std::move(target), std::move(credentials), std::move(channel)));
}

EtcdStore::EtcdStore(EtcdStoreOptions options, std::string target,
                     std::shared_ptr<grpc::ChannelCredentials> credentials,
                     std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      target_(std::move(target)),
      credentials_(std::move(credentials)),
      channel_(std::move(channel)),
      stubs_(std::make_unique<Stubs>(channel_)) {}

EtcdStore::~EtcdStore() = default;

absl::StatusOr<std::string> EtcdStore::CheckReachable() {
  etcdserverpb::StatusResponse response;
  const grpc::Status status =
      CallEtcd(options_.request_timeout, /*is_write=*/false, [&](grpc::ClientContext& context) {
        response.Clear();
        return stubs_->maintenance->Status(&context, etcdserverpb::StatusRequest(), &response);
      });
  if (!status.ok()) return FromGrpc(status, target_, "Status", /*write=*/false);
  return response.version();
}

absl::StatusOr<std::optional<std::string>> EtcdStore::Get(absl::string_view key) {
  etcdserverpb::RangeRequest request;
  request.set_key(absl::StrCat(options_.key_prefix, key));
  etcdserverpb::RangeResponse response;
  const grpc::Status status =
      CallEtcd(options_.request_timeout, /*is_write=*/false, [&](grpc::ClientContext& context) {
        response.Clear();
        return stubs_->kv->Range(&context, request, &response);
      });
  if (!status.ok()) return FromGrpc(status, target_, "Range", /*write=*/false);
  if (response.kvs_size() == 0) return std::nullopt;
  return std::move(*response.mutable_kvs(0)->mutable_value());
}

absl::Status EtcdStore::Put(absl::string_view key, absl::string_view value) {
  etcdserverpb::PutRequest request;
  request.set_key(absl::StrCat(options_.key_prefix, key));
  request.set_value(std::string(value));
  etcdserverpb::PutResponse response;
  const grpc::Status status = CallEtcd(
      options_.request_timeout, /*is_write=*/true,
      [&](grpc::ClientContext& context) { return stubs_->kv->Put(&context, request, &response); });
  if (!status.ok()) return FromGrpc(status, target_, "Put", /*write=*/true);
  return absl::OkStatus();
}

absl::Status EtcdStore::Delete(absl::string_view key) {
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(absl::StrCat(options_.key_prefix, key));
  etcdserverpb::DeleteRangeResponse response;
  const grpc::Status status =
      CallEtcd(options_.request_timeout, /*is_write=*/true, [&](grpc::ClientContext& context) {
        return stubs_->kv->DeleteRange(&context, request, &response);
      });
  if (!status.ok()) return FromGrpc(status, target_, "DeleteRange", /*write=*/true);
  return absl::OkStatus();
}

absl::Status EtcdStore::RangeAtOneRevision(
    const std::string& begin, const std::string& end, size_t limit,
    const std::function<absl::Status(std::vector<KeyValue>& page)>& visit_page) {
  int64_t revision = 0;  // 0: the newest; then the first page's revision
  std::string from = begin;
  size_t delivered = 0;
  while (true) {
    etcdserverpb::RangeRequest request;
    request.set_key(from);
    request.set_range_end(end);
    request.set_revision(revision);
    size_t page_limit = options_.page_size;
    if (limit != 0) page_limit = std::min(page_limit, limit - delivered);
    request.set_limit(static_cast<int64_t>(page_limit));
    // Each page gets the whole timeout: a long scan is many calls.
    etcdserverpb::RangeResponse response;
    const grpc::Status status =
        CallEtcd(options_.request_timeout, /*is_write=*/false, [&](grpc::ClientContext& context) {
          response.Clear();
          return stubs_->kv->Range(&context, request, &response);
        });
    if (!status.ok()) {
      if (IsCompacted(status) && revision != 0) {
        return absl::AbortedError(absl::StrCat(
            "etcd ", target_,
            ": a compaction (a CommitAndPurge, possibly of another replica) removed the "
            "revision this read started at; retry"));
      }
      return FromGrpc(status, target_, "Range", /*write=*/false);
    }
    if (revision == 0) revision = response.header().revision();
    std::vector<KeyValue> page;
    page.reserve(response.kvs_size());
    for (mvccpb::KeyValue& kv : *response.mutable_kvs()) {
      if (!absl::StartsWith(kv.key(), options_.key_prefix)) {
        return absl::InternalError(absl::StrCat("etcd ", target_, ": Range returned key \"",
                                                absl::CHexEscape(kv.key()),
                                                "\" outside the requested range"));
      }
      page.push_back(
          KeyValue{kv.key().substr(options_.key_prefix.size()), std::move(*kv.mutable_value())});
    }
    delivered += page.size();
    const bool more =
        response.more() && response.kvs_size() > 0 && (limit == 0 || delivered < limit);
    if (more) {
      from = absl::StrCat(response.kvs(response.kvs_size() - 1).key(), std::string(1, '\0'));
    }
    if (absl::Status visited = visit_page(page); !visited.ok()) return visited;
    if (!more) return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<KeyValue>> EtcdStore::Scan(absl::string_view prefix,
                                                      absl::string_view start_after, size_t limit) {
  std::string begin = absl::StrCat(options_.key_prefix, prefix);
  const std::string end = RangeEnd(begin);
  if (!start_after.empty()) {
    std::string after = absl::StrCat(options_.key_prefix, start_after, std::string(1, '\0'));
    if (after > begin) begin = std::move(after);
  }
  std::vector<KeyValue> entries;
  if (end != std::string(1, '\0') && begin >= end) return entries;
  auto collect = [&entries](std::vector<KeyValue>& page) {
    for (KeyValue& entry : page) entries.push_back(std::move(entry));
    return absl::OkStatus();
  };
  absl::Status status = RangeAtOneRevision(begin, end, limit, collect);
  // A compaction overtook the scan: start over at a newer revision (a scan
  // cannot resume, its pages must share one revision).
  for (int restart = 0; absl::IsAborted(status) && restart < kScanRestarts; ++restart) {
    entries.clear();
    status = RangeAtOneRevision(begin, end, limit, collect);
  }
  if (!status.ok()) return status;
  return entries;
}

absl::StatusOr<EtcdStore::TxnResult> EtcdStore::RunTxn(
    const WriteBatch& batch, const std::vector<std::string>& delete_prefixes) {
  etcdserverpb::TxnRequest request;
  const std::string& p = options_.key_prefix;

  // Compares: one per distinct (key, expectation).
  std::set<std::pair<std::string, std::optional<std::string>>> seen_compares;
  std::vector<const WriteBatch::Precondition*>
      checked_keys;  // first per key, for the failure reads
  std::set<std::string> seen_keys;
  for (const WriteBatch::Precondition& precondition : batch.preconditions()) {
    if (!seen_compares.emplace(precondition.key, precondition.expected_value).second) continue;
    etcdserverpb::Compare* compare = request.add_compare();
    compare->set_key(absl::StrCat(p, precondition.key));
    compare->set_result(etcdserverpb::Compare::EQUAL);
    if (precondition.expected_value.has_value()) {
      compare->set_target(etcdserverpb::Compare::VALUE);
      compare->set_value(*precondition.expected_value);
    } else {
      // An absent key has version 0 (a deleted one too).
      compare->set_target(etcdserverpb::Compare::VERSION);
      compare->set_version(0);
    }
    if (seen_keys.insert(precondition.key).second) {
      request.add_failure()->mutable_request_range()->set_key(compare->key());
    }
  }

  // Writes: the last operation on each key wins, and keys under a deleted
  // prefix are covered by its DeleteRange (etcd rejects a Txn that writes a
  // key twice, and the prefixes are deleted after the batch).
  auto under_deleted_prefix = [&delete_prefixes](const std::string& key) {
    return std::any_of(delete_prefixes.begin(), delete_prefixes.end(),
                       [&key](const std::string& prefix) { return absl::StartsWith(key, prefix); });
  };
  std::map<std::string, const WriteBatch::Operation*> last_write;
  for (const WriteBatch::Operation& operation : batch.operations()) {
    if (!under_deleted_prefix(operation.key)) last_write[operation.key] = &operation;
  }
  for (const auto& [key, operation] : last_write) {
    etcdserverpb::RequestOp* op = request.add_success();
    if (operation->value.has_value()) {
      op->mutable_request_put()->set_key(absl::StrCat(p, key));
      op->mutable_request_put()->set_value(*operation->value);
    } else {
      op->mutable_request_delete_range()->set_key(absl::StrCat(p, key));
    }
  }
  for (const std::string& prefix : delete_prefixes) {
    etcdserverpb::DeleteRangeRequest* del = request.add_success()->mutable_request_delete_range();
    del->set_key(absl::StrCat(p, prefix));
    del->set_range_end(RangeEnd(del->key()));
  }

  // Re-sent only if etcd refused it before acting: see the header (a
  // guarded Txn that applied would fail its compares the second time and be
  // reported as Aborted).
  etcdserverpb::TxnResponse response;
  const grpc::Status status =
      CallEtcd(options_.request_timeout, /*is_write=*/true, [&](grpc::ClientContext& context) {
        response.Clear();
        return stubs_->kv->Txn(&context, request, &response);
      });
  if (!status.ok()) return FromGrpc(status, target_, "Txn", /*write=*/true);
  if (!response.succeeded()) {
    // The failure branch read every precondition key at the Txn's revision:
    // name the first precondition (in batch order) that did not hold.
    std::map<std::string, const etcdserverpb::RangeResponse*> read;
    for (int i = 0; i < response.responses_size() && i < request.failure_size(); ++i) {
      read[request.failure(i).request_range().key().substr(p.size())] =
          &response.responses(i).response_range();
    }
    for (const WriteBatch::Precondition& precondition : batch.preconditions()) {
      auto it = read.find(precondition.key);
      if (it != read.end() && !PreconditionHolds(precondition, *it->second)) {
        return storage_internal::PreconditionFailedError(precondition);
      }
    }
    return absl::AbortedError("precondition failed: a key changed concurrently");
  }
  return TxnResult{response.header().revision()};
}

absl::Status EtcdStore::Commit(const WriteBatch& batch) {
  absl::StatusOr<TxnResult> result = RunTxn(batch, {});
  return result.status();
}

absl::Status EtcdStore::CommitAndPurge(const WriteBatch& batch,
                                       const std::vector<std::string>& delete_prefixes) {
  absl::StatusOr<TxnResult> result = RunTxn(batch, delete_prefixes);
  if (!result.ok()) return result.status();
  if (absl::Status purged = Purge(result->revision); !purged.ok()) {
    return absl::Status(
        purged.code(),
        absl::StrCat("the batch was committed, but purging the old values failed (call "
                     "CommitAndPurge again with an empty batch and the same prefixes to finish): ",
                     purged.message()));
  }
  return absl::OkStatus();
}

absl::Status EtcdStore::Purge(int64_t revision) {
  // Every member, by id, with an address that reaches it: the configured
  // endpoints first, then MemberList's client URLs for any member missed.
  std::map<uint64_t, std::string> members;
  std::vector<std::string> problems;
  auto identify = [&](const std::string& address) -> absl::StatusOr<uint64_t> {
    etcdserverpb::Maintenance::Stub stub(MemberChannel(address));
    etcdserverpb::StatusResponse response;
    const grpc::Status status =
        CallEtcd(options_.request_timeout, /*is_write=*/false, [&](grpc::ClientContext& context) {
          return stub.Status(&context, etcdserverpb::StatusRequest(), &response);
        });
    if (!status.ok()) return FromGrpc(status, address, "Status", /*write=*/false);
    members.emplace(response.header().member_id(), address);
    return response.header().member_id();
  };
  std::set<std::string> tried;
  for (const std::string& url : options_.endpoints) {
    absl::StatusOr<Endpoint> endpoint = ParseEndpoint(url);
    if (!endpoint.ok()) return endpoint.status();
    if (!tried.insert(endpoint->address).second) continue;
    absl::StatusOr<uint64_t> id = identify(endpoint->address);
    if (!id.ok()) problems.push_back(std::string(id.status().message()));
  }
  etcdserverpb::MemberListResponse list;
  const grpc::Status listed =
      CallEtcd(options_.request_timeout, /*is_write=*/false, [&](grpc::ClientContext& context) {
        list.Clear();
        return stubs_->cluster->MemberList(&context, etcdserverpb::MemberListRequest(), &list);
      });
  if (!listed.ok()) return FromGrpc(listed, target_, "MemberList", /*write=*/false);
  std::vector<std::string> unreachable;
  for (const etcdserverpb::Member& member : list.members()) {
    for (const std::string& url : member.clienturls()) {
      if (members.count(member.id()) != 0) break;
      absl::StatusOr<Endpoint> endpoint = ParseEndpoint(url);
      if (!endpoint.ok() || !tried.insert(endpoint->address).second) continue;
      absl::StatusOr<uint64_t> id = identify(endpoint->address);
      if (!id.ok()) problems.push_back(std::string(id.status().message()));
    }
    if (members.count(member.id()) == 0) {
      unreachable.push_back(
          absl::StrCat(member.name(), " (", absl::StrJoin(member.clienturls(), ","), ")"));
    }
  }

  // Per member: a compaction it serves itself with physical = true, which
  // returns only once that member's backend has deleted the old revisions.
  // (A compaction is applied by every member, but each deletes in a
  // background job, and only the member serving the request waits for it;
  // a defragmentation that ran before the job finished would copy old
  // values into the new file, and the job would then leave them in freed
  // pages.) A member's jobs run in order, so waiting for a later compaction
  // waits for every earlier one too. Each compaction after the first needs a
  // newer revision: a put and a delete of a marker key outside every store
  // key (it starts with 0x00 and is gone again after the compaction).
  bool first = true;
  for (const auto& [id, address] : members) {
    int64_t compact_at = first ? revision : 0;  // 0: make a fresh revision
    first = false;
    bool compacted = false;
    for (int attempt = 0; attempt < 3 && !compacted; ++attempt) {
      if (compact_at == 0) {
        absl::StatusOr<int64_t> fresh = NewRevision();
        if (!fresh.ok()) return fresh.status();
        compact_at = *fresh;
      }
      // Waits for running exports of this store: their revision must stay
      // readable until they end.
      absl::WriterMutexLock gate(&export_gate_);
      etcdserverpb::KV::Stub kv(MemberChannel(address));
      etcdserverpb::CompactionRequest request;
      request.set_revision(compact_at);
      request.set_physical(true);
      etcdserverpb::CompactionResponse response;
      const grpc::Status status = CallEtcd(
          options_.request_timeout, /*is_write=*/false,
          [&](grpc::ClientContext& context) { return kv.Compact(&context, request, &response); });
      if (status.ok()) {
        compacted = true;
      } else if (IsCompacted(status)) {
        // Already compacted at or past it (an earlier purge, another
        // replica, or this call's own re-sent attempt): that wait was not
        // this member's, so compact again at a fresh revision.
        compact_at = 0;
      } else {
        return FromGrpc(status, address, "Compact", /*write=*/true);
      }
    }
    if (!compacted) {
      return absl::InternalError(
          absl::StrCat("etcd ", address, ": could not compact at a fresh revision"));
    }
    etcdserverpb::Maintenance::Stub maintenance(MemberChannel(address));
    grpc::ClientContext context;
    // Defragmentation rewrites the whole database file: give it more time.
    SetDeadline(context, absl::Now() + 6 * options_.request_timeout);
    etcdserverpb::DefragmentResponse response;
    const grpc::Status status =
        maintenance.Defragment(&context, etcdserverpb::DefragmentRequest(), &response);
    if (!status.ok()) return FromGrpc(status, address, "Defragment", /*write=*/true);
  }
  if (!unreachable.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "etcd member(s) ", absl::StrJoin(unreachable, ", "),
        " could not be reached to compact and defragment, so old values may remain in their "
        "database files: ",
        absl::StrJoin(problems, "; ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> EtcdStore::NewRevision() {
  // 0x00 sorts before every printable prefix; the key prefix in it keeps
  // deployments sharing a cluster apart.
  const std::string marker = absl::StrCat(std::string(1, '\0'), "clavis-purge-marker",
                                          std::string(1, '\0'), options_.key_prefix);
  etcdserverpb::PutRequest put;
  put.set_key(marker);
  etcdserverpb::PutResponse put_response;
  grpc::Status status = CallEtcd(
      options_.request_timeout, /*is_write=*/true,
      [&](grpc::ClientContext& context) { return stubs_->kv->Put(&context, put, &put_response); });
  if (!status.ok()) return FromGrpc(status, target_, "Put (purge marker)", /*write=*/true);
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(marker);
  etcdserverpb::DeleteRangeResponse del_response;
  status = CallEtcd(options_.request_timeout, /*is_write=*/true, [&](grpc::ClientContext& context) {
    return stubs_->kv->DeleteRange(&context, del, &del_response);
  });
  if (!status.ok()) return FromGrpc(status, target_, "DeleteRange (purge marker)", /*write=*/true);
  return del_response.header().revision();
}

std::shared_ptr<grpc::Channel> EtcdStore::MemberChannel(const std::string& address) {
  absl::MutexLock lock(&channels_mu_);
  std::shared_ptr<grpc::Channel>& channel = member_channels_[address];
  if (channel == nullptr) {
    grpc::ChannelArguments args = ChannelArgs(options_);
    args.SetLoadBalancingPolicyName("pick_first");
    channel = grpc::CreateCustomChannel(address, credentials_, args);
  }
  return channel;
}

absl::Status EtcdStore::ExportSnapshot(const ExportVisitor& visit) {
  absl::ReaderMutexLock gate(&export_gate_);
  const std::string begin = options_.key_prefix;
  const std::string end = RangeEnd(begin);
  return RangeAtOneRevision(begin, end, /*limit=*/0, [&visit](std::vector<KeyValue>& page) {
    for (const KeyValue& entry : page) {
      if (absl::Status visited = visit(entry.key, entry.value); !visited.ok()) return visited;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<StoreChangeFeed>> EtcdStore::WatchChanges(
    absl::string_view prefix, StoreChangeHandler handler) {
  return std::unique_ptr<StoreChangeFeed>(std::make_unique<EtcdChangeFeed>(
      channel_, options_.key_prefix, std::string(prefix), std::move(handler)));
}

}  // namespace clavis::kms
