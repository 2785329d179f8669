// The one place where clavisctl opens its connection to clavisd: plaintext
// (loopback only, or with a warning) or TLS with an optional client
// certificate (mTLS) and an optional bearer service token. Commands do not
// see the difference.
#ifndef CLAVIS_TOOLS_CLAVISCTL_CHANNEL_H_
#define CLAVIS_TOOLS_CLAVISCTL_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"

namespace clavis::clavisctl {

constexpr absl::string_view kDefaultEndpoint = "127.0.0.1:7370";
constexpr char kEndpointEnvVar[] = "CLAVIS_ENDPOINT";

struct ChannelOptions {
  std::string endpoint;  // a gRPC target: host:port, [v6]:port, unix:/path
  std::string user_agent;
  // Non-empty: TLS, trusting only these CA certificates (PEM). Empty:
  // plaintext, and the fields below must be empty too (the caller checks).
  std::string root_certificates_pem;
  // mTLS: the client certificate chain and its private key (PEM), both or
  // neither. gRPC keeps its own copy; the caller wipes client_key_pem once
  // MakeChannel returns.
  std::string client_certificate_pem;
  std::string client_key_pem;
  // A service token sent on every call as "authorization: Bearer <token>"
  // (gRPC call credentials, which need TLS; on a plaintext loopback channel
  // the Session adds the header itself). Never logged.
  std::string token;
};

// Creates the channel; does not connect (the first RPC does, and fails with
// UNAVAILABLE if clavisd is not there or the TLS handshake fails).
// REQUIRES: root_certificates_pem is non-empty if any credential is set.
std::shared_ptr<grpc::Channel> MakeChannel(const ChannelOptions& options);

// The endpoint to use when --endpoint is not given: $CLAVIS_ENDPOINT if set
// and non-empty, else kDefaultEndpoint. `env_value` is getenv's result.
std::string DefaultEndpoint(const char* env_value);

// True for 127.0.0.0/8, ::1, localhost and unix: sockets. Plaintext to any
// other host would carry data keys and decrypted payloads across the network
// in clear, so clavisctl warns about it (and refuses to send a token that
// way): use TLS (--ca-cert) instead.
bool IsLoopbackEndpoint(absl::string_view endpoint);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_CHANNEL_H_
