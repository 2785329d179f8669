#include "tools/clavisctl/session.h"

#include <utility>

#include "tools/clavisctl/channel.h"
#include "tools/clavisctl/json_output.h"

namespace clavis::clavisctl {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

Session::Session(SessionSettings settings,
                 std::unique_ptr<clavis::v1::KeyAdmin::StubInterface> admin,
                 std::unique_ptr<clavis::v1::KeyManagement::StubInterface> data, Io io)
    : settings_(std::move(settings)), admin_(std::move(admin)), data_(std::move(data)), io_(io) {}

std::unique_ptr<Session> Session::Connect(SessionSettings settings, Io io) {
  ChannelOptions options;
  options.endpoint = settings.endpoint;
  options.user_agent = "clavisctl/" CLAVIS_VERSION;
  std::shared_ptr<grpc::Channel> channel = MakeChannel(options);
  return std::make_unique<Session>(std::move(settings), clavis::v1::KeyAdmin::NewStub(channel),
                                   clavis::v1::KeyManagement::NewStub(channel), io);
}

void Session::PrepareContext(grpc::ClientContext* context) const {
  // A deadline per RPC rather than per command: `key list --all` and
  // `key rewrap` make many calls and should not fail just for being long.
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(settings_.timeout));
  // Fail fast (the default): a clavisd that is not running is UNAVAILABLE
  // at once, not after the whole timeout.
  context->set_wait_for_ready(false);
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
