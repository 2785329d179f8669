#include "tools/clavisctl/channel.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "tools/clavisctl/wipe.h"

namespace clavis::clavisctl {

std::shared_ptr<grpc::Channel> MakeChannel(const ChannelOptions& options) {
  grpc::ChannelArguments args;
  if (!options.user_agent.empty()) args.SetUserAgentPrefix(options.user_agent);
  if (options.root_certificates_pem.empty()) {
    return grpc::CreateCustomChannel(options.endpoint, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.root_certificates_pem;
  ssl.pem_cert_chain = options.client_certificate_pem;
  ssl.pem_private_key = options.client_key_pem;
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  WipeString(&ssl.pem_private_key);
  if (!options.token.empty()) {
    std::shared_ptr<grpc::CallCredentials> token = grpc::AccessTokenCredentials(options.token);
    credentials = grpc::CompositeChannelCredentials(credentials, token);
  }
  return grpc::CreateCustomChannel(options.endpoint, credentials, args);
}

std::string DefaultEndpoint(const char* env_value) {
  if (env_value != nullptr && *env_value != '\0') return env_value;
  return std::string(kDefaultEndpoint);
}

bool IsLoopbackEndpoint(absl::string_view endpoint) {
  if (absl::StartsWith(endpoint, "unix:") || absl::StartsWith(endpoint, "unix-abstract:")) {
    return true;
  }
  // gRPC target schemes that are followed by host:port.
  for (absl::string_view scheme : {"dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::ConsumePrefix(&endpoint, scheme)) break;
  }
  absl::string_view host;
  if (absl::ConsumePrefix(&endpoint, "[")) {
    const size_t close = endpoint.find(']');
    if (close == absl::string_view::npos) return false;
    host = endpoint.substr(0, close);
  } else {
    // A bare IPv6 address without a port ("::1") has more than one colon.
    const size_t first = endpoint.find(':');
    const size_t last = endpoint.rfind(':');
    host = (first != last) ? endpoint : endpoint.substr(0, first);
  }
  const std::string lower = absl::AsciiStrToLower(host);
  if (lower == "localhost" || lower == "::1") return true;
  // 127.0.0.0/8 written as a dotted quad; "127.example.com" is not loopback.
  return absl::StartsWith(lower, "127.") && std::all_of(lower.begin(), lower.end(), [](char c) {
           return c == '.' || absl::ascii_isdigit(static_cast<unsigned char>(c));
         });
}

}  // namespace clavis::clavisctl
