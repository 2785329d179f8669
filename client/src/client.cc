#include "clavis/client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "client/src/retry.h"
#include "crypto/secret_bytes.h"
#include "grpc/grpc.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace clavis {
namespace {

using client_internal::RetryPolicy;

constexpr int kMaxAttemptsLimit = 10;

// Splits "host:port" / "[v6]:port"; false if there is no numeric port.
bool SplitHostPort(absl::string_view endpoint, absl::string_view* host) {
  size_t colon = endpoint.rfind(':');
  if (colon == absl::string_view::npos) return false;
  int port = 0;
  if (!absl::SimpleAtoi(endpoint.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return false;
  }
  *host = endpoint.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return !host->empty();
}

bool IsIpv4Literal(absl::string_view host) {
  std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4) return false;
  for (absl::string_view octet : octets) {
    int v = 0;
    if (!absl::SimpleAtoi(octet, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1") return true;
  return IsIpv4Literal(host) && absl::StartsWith(host, "127.");
}

// >>> The one place where the channel's credentials are chosen. <<<
// TLS with the operator's CA (and a client certificate for mTLS) when
// tls_ca_pem is set; otherwise plaintext, and therefore loopback only, since
// data keys cross this connection. Service tokens are added per attempt as
// call metadata (Rep::Call).
// The hosts of ClientOptions.endpoint ("host:port" or a comma-separated list
// of IP address:port), checked.
absl::StatusOr<std::vector<std::string>> EndpointHosts(const ClientOptions& options) {
  std::vector<std::string> hosts;
  const std::vector<absl::string_view> parts = absl::StrSplit(options.endpoint, ',');
  for (absl::string_view part : parts) {
    absl::string_view host;
    if (!SplitHostPort(part, &host)) {
      return absl::InvalidArgumentError(
          absl::StrCat("ClientOptions.endpoint \"", part, "\" is not host:port"));
    }
    if (parts.size() > 1 && !IsIpv4Literal(host) && host.find(':') == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ClientOptions.endpoint lists several servers, so each must be an IP address, not \"",
          host, "\" (or give one DNS name that resolves to all of them)"));
    }
    hosts.emplace_back(host);
  }
  if (parts.size() > 1) {
    const bool v4 = IsIpv4Literal(hosts[0]);
    for (const std::string& h : hosts) {
      if (IsIpv4Literal(h) != v4) {
        return absl::InvalidArgumentError(
            "ClientOptions.endpoint mixes IPv4 and IPv6 addresses; list one family");
      }
    }
    if (!options.tls_ca_pem.empty() && options.tls_server_name.empty()) {
      return absl::InvalidArgumentError(
          "ClientOptions.endpoint lists several addresses: set tls_server_name to the name in "
          "clavisd's certificate");
    }
  }
  return hosts;
}

// The gRPC target: the endpoint itself (DNS or one address), or an ipv4:/
// ipv6: list that gRPC's pick_first tries in order, failing over to the
// next address when one is down.
std::string ChannelTarget(const ClientOptions& options, const std::vector<std::string>& hosts) {
  if (hosts.size() < 2) return options.endpoint;
  return absl::StrCat(IsIpv4Literal(hosts[0]) ? "ipv4:" : "ipv6:", options.endpoint);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientOptions& options) {
  absl::StatusOr<std::vector<std::string>> hosts = EndpointHosts(options);
  if (!hosts.ok()) return hosts.status();
  if (options.tls_client_cert_pem.empty() != options.tls_client_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "ClientOptions.tls_client_cert_pem and tls_client_key_pem go together");
  }
  if (!options.tls_ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls_ca_pem;
    ssl.pem_cert_chain = options.tls_client_cert_pem;
    ssl.pem_private_key = options.tls_client_key_pem;
    auto credentials = grpc::SslCredentials(ssl);
    crypto::SecureWipe(ssl.pem_private_key.data(), ssl.pem_private_key.size());
    return credentials;
  }
  if (!options.tls_client_cert_pem.empty()) {
    return absl::InvalidArgumentError("a client certificate needs TLS: set tls_ca_pem");
  }
  for (const std::string& host : *hosts) {
    if (!IsLoopbackHost(host)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ClientOptions.endpoint \"", options.endpoint,
          "\" is not a loopback address; without TLS (tls_ca_pem) the SDK only connects to "
          "127.0.0.0/8, ::1 or localhost"));
    }
  }
  return grpc::InsecureChannelCredentials();
}

absl::Status ValidateOptions(const ClientOptions& options) {
  if (options.endpoint.empty())
    return absl::InvalidArgumentError("ClientOptions.endpoint is empty");
  if (options.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ClientOptions.call_timeout must be positive");
  }
  if (options.max_attempts < 1 || options.max_attempts > kMaxAttemptsLimit) {
    return absl::InvalidArgumentError(absl::StrCat("ClientOptions.max_attempts must be 1..",
                                                   kMaxAttemptsLimit, ", not ",
                                                   options.max_attempts));
  }
  if (options.initial_backoff < absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "ClientOptions backoff must satisfy 0 <= initial_backoff <= max_backoff");
  }
  if (!(options.backoff_multiplier >= 1.0 && options.backoff_multiplier <= 100.0)) {
    return absl::InvalidArgumentError("ClientOptions.backoff_multiplier must be in [1, 100]");
  }
  if (options.max_batch_items < 1 || options.max_batch_items > 10000) {
    return absl::InvalidArgumentError("ClientOptions.max_batch_items must be 1..10000");
  }
  return absl::OkStatus();
}

// gRPC and absl share the canonical code numbers. The server's message says
// what went wrong; it never holds key bytes (a server rule) and we add none.
absl::Status FromGrpc(absl::string_view method, const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("Clavis ", method, ": ", status.error_message()));
}

absl::Status FromItemStatus(const v1::ItemStatus& status) {
  const int code = status.code();
  const absl::StatusCode absl_code =
      (code > 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated))
          ? static_cast<absl::StatusCode>(code)
          : absl::StatusCode::kUnknown;
  return absl::Status(absl_code, absl::StrCat("Clavis BatchDecrypt item: ", status.message()));
}

// The checks of a data key the server decrypted for (key, segment).
absl::StatusOr<SecretBytes> CheckDataKey(absl::string_view key, absl::string_view segment,
                                         const v1::DecryptResponse& response,
                                         SecretBytes plaintext) {
  if (response.key() != key || response.segment() != segment) {
    return absl::InvalidArgumentError(
        absl::StrCat("data key blob belongs to key \"", response.key(), "\" segment \"",
                     response.segment(), "\", not to the key and segment the record names"));
  }
  if (plaintext.size() != DataKeySource::kDataKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob holds ", plaintext.size(), " bytes, not a 32-byte data key"));
  }
  return plaintext;
}

void SetContext(const EncryptionContext& context,
                google::protobuf::Map<std::string, std::string>* out) {
  for (const auto& [k, v] : context) (*out)[k] = v;
}

// Moves a plaintext key out of a protobuf string into secure memory and
// wipes the string (gRPC's own receive buffers are beyond our reach).
SecretBytes TakeSecret(std::string* bytes) {
  SecretBytes secret = SecretBytes::CopyOf(*bytes);
  crypto::SecureWipe(bytes->data(), bytes->size());
  bytes->clear();
  return secret;
}

}  // namespace

struct Client::Rep {
  ClientOptions options;
  RetryPolicy retry;
  std::string target;  // the gRPC target made of options.endpoint
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments channel_args;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::KeyManagement::Stub> stub;

  // A channel of its own with its own subchannel (a WatchKeyEvents stream's:
  // a fresh one per attempt, since gRPC 1.51 can leave a channel whose
  // server went away failing every call without trying to reconnect).
  std::shared_ptr<grpc::Channel> NewPrivateChannel() const {
    grpc::ChannelArguments args = channel_args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(target, credentials, args);
  }

  void AddCredentials(grpc::ClientContext* context) const {
    if (options.token_source) {
      context->AddMetadata("authorization", "Bearer " + options.token_source());
    }
  }

  // One RPC with deadline and retries: `rpc(context)` makes one attempt.
  mutable std::atomic<uint64_t> calls{0};
  mutable std::atomic<uint64_t> attempts{0};

  template <typename Rpc>
  absl::Status Call(absl::string_view method, Rpc rpc) const {
    calls.fetch_add(1, std::memory_order_relaxed);
    return client_internal::CallWithRetries(retry, [&]() {
      attempts.fetch_add(1, std::memory_order_relaxed);
      grpc::ClientContext context;  // one per attempt: gRPC forbids reuse
      context.set_deadline(absl::ToChronoTime(absl::Now() + options.call_timeout));
      AddCredentials(&context);
      return FromGrpc(method, rpc(&context));
    });
  }
};

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();

  // Paired with grpc_shutdown_blocking in ~Client (see there).
  grpc_init();
  auto rep = std::make_unique<Rep>();
  rep->options = options;
  // The private key went into the credentials; this copy is not needed.
  crypto::SecureWipe(rep->options.tls_client_key_pem.data(),
                     rep->options.tls_client_key_pem.size());
  rep->options.tls_client_key_pem.clear();
  rep->retry = RetryPolicy{options.max_attempts, options.initial_backoff, options.max_backoff,
                           options.backoff_multiplier};
  grpc::ChannelArguments args;
  // Our retry policy is the only one: two layers of retries would multiply.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  // Reconnect to a restarted server on our backoff schedule, not gRPC's
  // (which grows to 2 minutes): a watch stream must come back promptly.
  const int min_reconnect_ms =
      static_cast<int>(std::max<int64_t>(100, absl::ToInt64Milliseconds(options.initial_backoff)));
  const int max_reconnect_ms = static_cast<int>(
      std::max<int64_t>(min_reconnect_ms, absl::ToInt64Milliseconds(options.max_backoff)));
  // (Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC also takes it as the
  // connect timeout, and a TLS handshake on a busy host needs more than
  // 100 ms.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, min_reconnect_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_reconnect_ms);
  if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  rep->target = ChannelTarget(options, *EndpointHosts(options));
  rep->credentials = *credentials;
  rep->channel_args = args;
  rep->channel = grpc::CreateCustomChannel(rep->target, *credentials, args);
  rep->stub = v1::KeyManagement::NewStub(rep->channel);
  return std::unique_ptr<Client>(new Client(std::move(rep)));
}

Client::Client(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}

namespace {

// gRPC finishes some work of a channel (a name lookup, a TLS handshake) on
// its own threads even after the channel is gone; a process that exits
// meanwhile crashes in them (OpenSSL set up during exit). So a connection
// attempt in progress is given up to 2 s to settle before a channel goes.
void LetConnectionAttemptSettle(grpc::Channel& channel) {
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(2);
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/false);
  while (state == GRPC_CHANNEL_CONNECTING && channel.WaitForStateChange(state, deadline)) {
    state = channel.GetState(false);
  }
}

}  // namespace

Client::~Client() {
  // Then gRPC's shutdown is waited for: "destroy the Client, then exit" is
  // safe.
  LetConnectionAttemptSettle(*rep_->channel);
  rep_->stub.reset();
  rep_->channel.reset();
  grpc_shutdown_blocking();
}

absl::StatusOr<DataKey> Client::GenerateDataKey(absl::string_view key, absl::string_view segment,
                                                const EncryptionContext& context) {
  v1::GenerateDataKeyRequest request;
  request.set_key(std::string(key));
  request.set_segment(std::string(segment));
  SetContext(context, request.mutable_encryption_context());
  v1::GenerateDataKeyResponse response;
  absl::Status status = rep_->Call("GenerateDataKey", [&](grpc::ClientContext* ctx) {
    return rep_->stub->GenerateDataKey(ctx, request, &response);
  });
  DataKey data_key;
  data_key.plaintext = TakeSecret(response.mutable_plaintext());
  if (!status.ok()) return status;
  if (data_key.plaintext.size() != kDataKeySize || response.ciphertext_blob().empty()) {
    return absl::InternalError(absl::StrCat("Clavis GenerateDataKey: server returned a ",
                                            data_key.plaintext.size(),
                                            "-byte data key; expected 32 and a blob"));
  }
  data_key.ciphertext_blob = std::move(*response.mutable_ciphertext_blob());
  return data_key;
}

absl::StatusOr<SecretBytes> Client::DecryptDataKey(absl::string_view key, absl::string_view segment,
                                                   absl::string_view ciphertext_blob,
                                                   const EncryptionContext& context) {
  v1::DecryptRequest request;
  request.set_ciphertext_blob(std::string(ciphertext_blob));
  request.set_key(std::string(key));  // the server refuses a blob of another key
  SetContext(context, request.mutable_encryption_context());
  v1::DecryptResponse response;
  absl::Status status = rep_->Call("Decrypt", [&](grpc::ClientContext* ctx) {
    return rep_->stub->Decrypt(ctx, request, &response);
  });
  SecretBytes plaintext = TakeSecret(response.mutable_plaintext());
  if (!status.ok()) return status;
  return CheckDataKey(key, segment, response, std::move(plaintext));
}

absl::StatusOr<SecretBytes> Client::Decrypt(absl::string_view ciphertext_blob,
                                            const EncryptionContext& context) {
  v1::DecryptRequest request;
  request.set_ciphertext_blob(std::string(ciphertext_blob));
  SetContext(context, request.mutable_encryption_context());
  v1::DecryptResponse response;
  absl::Status status = rep_->Call("Decrypt", [&](grpc::ClientContext* ctx) {
    return rep_->stub->Decrypt(ctx, request, &response);
  });
  SecretBytes plaintext = TakeSecret(response.mutable_plaintext());
  if (!status.ok()) return status;
  return plaintext;
}

absl::StatusOr<std::vector<absl::StatusOr<SecretBytes>>> Client::BatchDecrypt(
    absl::Span<const DecryptItem> items) {
  v1::BatchDecryptRequest request;
  for (const DecryptItem& item : items) {
    v1::DecryptRequest* r = request.add_requests();
    r->set_ciphertext_blob(item.ciphertext_blob);
    r->set_key(item.key);
    SetContext(item.context, r->mutable_encryption_context());
  }
  v1::BatchDecryptResponse response;
  absl::Status status = rep_->Call("BatchDecrypt", [&](grpc::ClientContext* ctx) {
    return rep_->stub->BatchDecrypt(ctx, request, &response);
  });
  std::vector<absl::StatusOr<SecretBytes>> results;
  results.reserve(response.items_size());
  for (v1::BatchDecryptResponse::Item& item : *response.mutable_items()) {
    SecretBytes plaintext = TakeSecret(item.mutable_result()->mutable_plaintext());
    if (item.status().code() != 0) {
      results.emplace_back(FromItemStatus(item.status()));
    } else {
      results.emplace_back(std::move(plaintext));
    }
  }
  if (!status.ok()) return status;
  if (results.size() != items.size()) {
    return absl::InternalError(absl::StrCat("Clavis BatchDecrypt: server answered ", results.size(),
                                            " items for ", items.size()));
  }
  return results;
}

std::vector<absl::StatusOr<SecretBytes>> Client::BatchDecryptDataKeys(
    absl::Span<const DataKeyRequest> requests) {
  std::vector<absl::StatusOr<SecretBytes>> results;
  results.reserve(requests.size());
  const size_t per_call = static_cast<size_t>(rep_->options.max_batch_items);
  for (size_t start = 0; start < requests.size(); start += per_call) {
    const absl::Span<const DataKeyRequest> chunk = requests.subspan(start, per_call);
    v1::BatchDecryptRequest request;
    for (const DataKeyRequest& item : chunk) {
      v1::DecryptRequest* r = request.add_requests();
      r->set_ciphertext_blob(item.ciphertext_blob);
      r->set_key(item.key);  // the server refuses a blob of another key
      SetContext(item.context, r->mutable_encryption_context());
    }
    v1::BatchDecryptResponse response;
    absl::Status status = rep_->Call("BatchDecrypt", [&](grpc::ClientContext* ctx) {
      return rep_->stub->BatchDecrypt(ctx, request, &response);
    });
    // Every plaintext leaves the protobuf (which is then wiped) whatever
    // happens next.
    std::vector<SecretBytes> plaintexts;
    plaintexts.reserve(response.items_size());
    for (v1::BatchDecryptResponse::Item& item : *response.mutable_items()) {
      plaintexts.push_back(TakeSecret(item.mutable_result()->mutable_plaintext()));
    }
    if (status.ok() && static_cast<size_t>(response.items_size()) != chunk.size()) {
      status =
          absl::InternalError(absl::StrCat("Clavis BatchDecrypt: server answered ",
                                           response.items_size(), " items for ", chunk.size()));
    }
    for (size_t n = 0; n < chunk.size(); ++n) {
      if (!status.ok()) {
        results.emplace_back(status);
        continue;
      }
      v1::BatchDecryptResponse::Item& item = *response.mutable_items(static_cast<int>(n));
      if (item.status().code() != 0) {
        results.emplace_back(FromItemStatus(item.status()));
        continue;
      }
      results.push_back(
          CheckDataKey(chunk[n].key, chunk[n].segment, item.result(), std::move(plaintexts[n])));
    }
  }
  return results;
}

absl::StatusOr<SecretBytes> Client::DeriveBlindIndexKey(absl::string_view key,
                                                        absl::string_view segment,
                                                        absl::string_view index) {
  v1::DeriveBlindIndexKeyRequest request;
  request.set_key(std::string(key));
  request.set_segment(std::string(segment));
  request.set_index(std::string(index));
  v1::DeriveBlindIndexKeyResponse response;
  absl::Status status = rep_->Call("DeriveBlindIndexKey", [&](grpc::ClientContext* ctx) {
    return rep_->stub->DeriveBlindIndexKey(ctx, request, &response);
  });
  SecretBytes index_key = TakeSecret(response.mutable_index_key());
  if (!status.ok()) return status;
  if (index_key.size() != 32) {
    return absl::InternalError(absl::StrCat("Clavis DeriveBlindIndexKey: server returned ",
                                            index_key.size(), " bytes; expected 32"));
  }
  return index_key;
}

Client::Stats Client::stats() const {
  return Stats{rep_->calls.load(std::memory_order_relaxed),
               rep_->attempts.load(std::memory_order_relaxed)};
}

namespace {

// One WatchKeyEvents stream, re-opened until stopped.
class WatchThread : public KeyEventSubscription {
 public:
  using OnEvent = std::function<void(const KeyEventInfo&)>;
  using OnConnection = std::function<void(bool, const absl::Status&)>;

  WatchThread(const Client::Rep* rep, std::string tenant, OnEvent on_event,
              OnConnection on_connection)
      : rep_(rep),
        tenant_(std::move(tenant)),
        on_event_(std::move(on_event)),
        on_connection_(std::move(on_connection)) {
    thread_ = std::thread([this] { Run(); });
  }

  ~WatchThread() override {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
      if (current_ != nullptr) current_->TryCancel();
    }
    thread_.join();
  }

  bool connected() const override { return connected_.load(); }

 private:
  void Run() {
    absl::BitGen gen;
    int failures = 0;
    while (true) {
      absl::Status why = WatchOnce();
      if (connected_.exchange(false) || failures == 0) {
        if (on_connection_) on_connection_(false, why);
      }
      ++failures;
      const absl::Duration pause =
          client_internal::BackoffBeforeRetry(rep_->retry, std::min(failures, 30), gen);
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopped_), pause)) return;
      if (connected_once_) failures = 0, connected_once_ = false;
    }
  }

  // One stream from open to break; the reason it ended.
  absl::Status WatchOnce() {
    std::shared_ptr<grpc::Channel> channel = rep_->NewPrivateChannel();
    std::unique_ptr<v1::KeyManagement::Stub> stub = v1::KeyManagement::NewStub(channel);
    absl::Status status = WatchOn(*stub);
    LetConnectionAttemptSettle(*channel);
    return status;
  }

  absl::Status WatchOn(v1::KeyManagement::Stub& stub) {
    grpc::ClientContext context;
    rep_->AddCredentials(&context);
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return absl::CancelledError("stopped");
      current_ = &context;
    }
    v1::WatchKeyEventsRequest request;
    request.set_tenant(tenant_);
    std::unique_ptr<grpc::ClientReader<v1::KeyEvent>> reader =
        stub.WatchKeyEvents(&context, request);
    reader->WaitForInitialMetadata();
    const auto& headers = context.GetServerInitialMetadata();
    if (headers.find("clavis-watch") != headers.end()) {
      connected_ = true;
      connected_once_ = true;
      if (on_connection_) on_connection_(true, absl::OkStatus());
    }
    v1::KeyEvent event;
    while (reader->Read(&event)) {
      KeyEventInfo info;
      info.type = event.key().empty() ? "REDACTED" : v1::KeyEvent::Type_Name(event.type());
      info.key = event.key();
      info.segment = event.segment();
      info.version = event.version();
      info.sequence = event.sequence();
      if (on_event_) on_event_(info);
    }
    absl::Status status = FromGrpc("WatchKeyEvents", reader->Finish());
    absl::MutexLock lock(&mu_);
    current_ = nullptr;
    if (status.ok()) status = absl::UnavailableError("Clavis WatchKeyEvents: stream ended");
    return status;
  }

  const Client::Rep* const rep_;
  const std::string tenant_;
  const OnEvent on_event_;
  const OnConnection on_connection_;
  std::atomic<bool> connected_{false};
  bool connected_once_ = false;  // only the watch thread uses it
  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<KeyEventSubscription> Client::WatchKeyEvents(
    std::string tenant, std::function<void(const KeyEventInfo&)> on_event,
    std::function<void(bool connected, const absl::Status& why)> on_connection) {
  return std::make_unique<WatchThread>(rep_.get(), std::move(tenant), std::move(on_event),
                                       std::move(on_connection));
}

}  // namespace clavis
