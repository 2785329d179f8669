#include "tools/clavisctl/session.h"

#include <algorithm>

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

#include "tools/clavisctl/channel.h"
#include "tools/clavisctl/json_output.h"
#include "tools/clavisctl/wipe.h"

namespace clavis::clavisctl {

std::string DescribeTransport(const Credentials& credentials) {
  std::string transport = !credentials.tls()                           ? "plaintext"
                          : credentials.client_certificate_pem.empty() ? "TLS"
                                                                       : "mTLS";
  if (!credentials.token.empty()) transport += "+token";
  return transport;
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

Session::Session(SessionSettings settings,
                 std::unique_ptr<clavis::v1::KeyAdmin::StubInterface> admin,
                 std::unique_ptr<clavis::v1::KeyManagement::StubInterface> data,
                 std::unique_ptr<clavis::v1::AccessControl::StubInterface> access, Io io)
    : settings_(std::move(settings)),
      admin_(std::move(admin)),
      data_(std::move(data)),
      access_(std::move(access)),
      io_(io) {}

Session::Session(SessionSettings settings,
                 std::unique_ptr<clavis::v1::KeyAdmin::StubInterface> admin,
                 std::unique_ptr<clavis::v1::KeyManagement::StubInterface> data, Io io)
    : Session(std::move(settings), std::move(admin), std::move(data), nullptr, io) {}

Session::~Session() {
  WipeString(&settings_.credentials.client_key_pem);
  WipeString(&settings_.credentials.token);
}

std::unique_ptr<Session> Session::Connect(SessionSettings settings, Io io) {
  Credentials& credentials = settings.credentials;
  settings.transport = DescribeTransport(credentials);
  ChannelOptions options;
  options.endpoint = settings.endpoint;
  options.user_agent = "clavisctl/" CLAVIS_VERSION;
  options.root_certificates_pem = credentials.root_certificates_pem;
  options.client_certificate_pem = credentials.client_certificate_pem;
  options.client_key_pem = credentials.client_key_pem;
  if (credentials.tls()) options.token = credentials.token;
  std::shared_ptr<grpc::Channel> channel = MakeChannel(options);
  // gRPC holds its own copies now.
  WipeString(&options.client_key_pem);
  WipeString(&options.token);
  WipeString(&credentials.client_key_pem);
  if (credentials.tls()) WipeString(&credentials.token);
  auto session = std::make_unique<Session>(
      std::move(settings), clavis::v1::KeyAdmin::NewStub(channel),
      clavis::v1::KeyManagement::NewStub(channel), clavis::v1::AccessControl::NewStub(channel), io);
  session->health_ = grpc::health::v1::Health::NewStub(channel);
  session->operations_ = clavis::v1::Operations::NewStub(channel);
  return session;
}

std::unique_ptr<Session> Session::Local(SessionSettings settings, Io io) {
  return std::make_unique<Session>(std::move(settings), nullptr, nullptr, nullptr, io);
}

void Session::PrepareContext(grpc::ClientContext* context, absl::Duration at_least) const {
  if (!settings_.credentials.token.empty()) {
    // Only on plaintext (Connect keeps the token for nothing else), which
    // global_options.cc allows for loopback endpoints only.
    std::string header = absl::StrCat("Bearer ", settings_.credentials.token);
    context->AddMetadata("authorization", header);
    WipeString(&header);
  }
  // A deadline per RPC rather than per command: `key list --all` and
  // `key rewrap` make many calls and should not fail just for being long.
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(std::max(settings_.timeout, at_least)));
  // Fail fast (the default): a clavisd that is not running is UNAVAILABLE
  // at once, not after the whole timeout.
  context->set_wait_for_ready(false);
}

std::string Session::ApprovalRequest(const grpc::ClientContext& context) {
  const std::multimap<grpc::string_ref, grpc::string_ref>& trailing =
      context.GetServerTrailingMetadata();
  auto it = trailing.find(kApprovalRequestMetadata);
  if (it == trailing.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

absl::Status Session::Print(const google::protobuf::Message& message, absl::string_view human) {
  if (settings_.json) {
    absl::StatusOr<std::string> json = ToJson(message);
    if (!json.ok()) return json.status();
    out() << *json;
  } else {
    out() << human;
  }
  return absl::OkStatus();
}

}  // namespace clavis::clavisctl
