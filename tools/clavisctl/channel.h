// The one place where clavisctl opens its connection to clavisd. Today it is
// plaintext because clavisd listens on loopback only; TLS and caller
// credentials will be added here (ChannelOptions grows the fields), and no
// command has to change.
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
};

// Creates the channel; does not connect (the first RPC does, and fails with
// UNAVAILABLE if clavisd is not there).
std::shared_ptr<grpc::Channel> MakeChannel(const ChannelOptions& options);

// The endpoint to use when --endpoint is not given: $CLAVIS_ENDPOINT if set
// and non-empty, else kDefaultEndpoint. `env_value` is getenv's result.
std::string DefaultEndpoint(const char* env_value);

// True for 127.0.0.0/8, ::1, localhost and unix: sockets. Plaintext to any
// other host would carry data keys and decrypted payloads across the network
// in clear, so clavisctl warns about it until TLS exists.
bool IsLoopbackEndpoint(absl::string_view endpoint);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_CHANNEL_H_
