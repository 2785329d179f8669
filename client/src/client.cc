#include "clavis/client.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "client/src/retry.h"
#include "crypto/secret_bytes.h"
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

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1") return true;
  std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4 || octets[0] != "127") return false;
  for (absl::string_view octet : octets) {
    int v = 0;
    if (!absl::SimpleAtoi(octet, &v) || v < 0 || v > 255) return false;
  }
  return true;
}

// >>> The one place where the channel's credentials are chosen. <<<
// TLS with the operator's CA (and a client certificate for mTLS) when
// tls_ca_pem is set; otherwise plaintext, and therefore loopback only, since
// data keys cross this connection. Service tokens are added per attempt as
// call metadata (Rep::Call).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const ClientOptions& options) {
  absl::string_view host;
  if (!SplitHostPort(options.endpoint, &host)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ClientOptions.endpoint \"", options.endpoint, "\" is not host:port"));
  }
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
  if (!IsLoopbackHost(host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ClientOptions.endpoint \"", options.endpoint,
        "\" is not a loopback address; without TLS (tls_ca_pem) the SDK only connects to "
        "127.0.0.0/8, ::1 or localhost"));
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
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::KeyManagement::Stub> stub;

  // One RPC with deadline and retries: `rpc(context)` makes one attempt.
  template <typename Rpc>
  absl::Status Call(absl::string_view method, Rpc rpc) const {
    return client_internal::CallWithRetries(retry, [&]() {
      grpc::ClientContext context;  // one per attempt: gRPC forbids reuse
      context.set_deadline(absl::ToChronoTime(absl::Now() + options.call_timeout));
      if (options.token_source) {
        context.AddMetadata("authorization", "Bearer " + options.token_source());
      }
      return FromGrpc(method, rpc(&context));
    });
  }
};

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentials(options);
  if (!credentials.ok()) return credentials.status();

  auto rep = std::make_unique<Rep>();
  rep->options = options;
  rep->retry = RetryPolicy{options.max_attempts, options.initial_backoff, options.max_backoff,
                           options.backoff_multiplier};
  grpc::ChannelArguments args;
  // Our retry policy is the only one: two layers of retries would multiply.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  rep->channel = grpc::CreateCustomChannel(options.endpoint, *credentials, args);
  rep->stub = v1::KeyManagement::NewStub(rep->channel);
  return std::unique_ptr<Client>(new Client(std::move(rep)));
}

Client::Client(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Client::~Client() = default;

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
  if (response.key() != key || response.segment() != segment) {
    return absl::InvalidArgumentError(
        absl::StrCat("data key blob belongs to key \"", response.key(), "\" segment \"",
                     response.segment(), "\", not to the key and segment the record names"));
  }
  if (plaintext.size() != kDataKeySize) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob holds ", plaintext.size(), " bytes, not a 32-byte data key"));
  }
  return plaintext;
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

}  // namespace clavis
