// What a command runs against: the stubs of the three services, the per-RPC
// deadline, the output mode (--json or tables) and the streams. Commands take
// a Session& so a test can build one around fake stubs and string streams.
#ifndef CLAVIS_TOOLS_CLAVISCTL_SESSION_H_
#define CLAVIS_TOOLS_CLAVISCTL_SESSION_H_

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/key_management.grpc.pb.h"
#include "clavis/v1/operations.grpc.pb.h"
#include "google/protobuf/message.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "spdlog/spdlog.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/health.grpc.pb.h"

namespace clavis::clavisctl {

// How clavisctl proves who it is to clavisd, and which server it trusts:
// the contents of the --ca-cert, --cert, --key and --token-file files.
// Secrets (the key, the token) are wiped when the Session is done with them
// and never logged.
struct Credentials {
  std::string root_certificates_pem;   // non-empty: TLS
  std::string client_certificate_pem;  // mTLS, with client_key_pem
  std::string client_key_pem;
  std::string token;  // a service token, sent as "authorization: Bearer <token>"

  bool tls() const { return !root_certificates_pem.empty(); }
};

// "plaintext", "TLS" or "mTLS", with "+token" when a service token is sent:
// how `credentials` connect, for `clavisctl status`.
std::string DescribeTransport(const Credentials& credentials);

// The global options after parsing.
struct SessionSettings {
  std::string endpoint;
  absl::Duration timeout = absl::Seconds(10);  // deadline of each RPC
  bool json = false;
  std::string profile;  // the profile the options came from, "" if none
  Credentials credentials;
  // DescribeTransport(credentials), set by Session::Connect before it wipes
  // the secrets; "" in sessions made around fake stubs.
  std::string transport;
};

// The process's standard streams, or string streams in tests.
struct Io {
  std::istream* in = &std::cin;
  std::ostream* out = &std::cout;
  std::ostream* err = &std::cerr;
  // Whether `in` is an interactive terminal (encrypt then says it is waiting
  // for input instead of seeming to hang).
  bool in_is_terminal = false;
};

// grpc::Status -> absl::Status; both follow google.rpc.Code, so the code
// carries over unchanged and the server's message is kept.
absl::Status FromGrpcStatus(const grpc::Status& status);

class Session {
 public:
  // Any stub may be null when the commands run on the session do not use it.
  Session(SessionSettings settings, std::unique_ptr<clavis::v1::KeyAdmin::StubInterface> admin,
          std::unique_ptr<clavis::v1::KeyManagement::StubInterface> data,
          std::unique_ptr<clavis::v1::AccessControl::StubInterface> access, Io io);
  // Without an AccessControl stub: access() must not be called.
  Session(SessionSettings settings, std::unique_ptr<clavis::v1::KeyAdmin::StubInterface> admin,
          std::unique_ptr<clavis::v1::KeyManagement::StubInterface> data, Io io);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // A session on a real channel to settings.endpoint (channel.h), with TLS
  // and credentials as settings.credentials say. The private key is wiped
  // once the channel exists; a token is kept only where the Session itself
  // sends it (plaintext loopback).
  static std::unique_ptr<Session> Connect(SessionSettings settings, Io io);

  // A session without a server, for the commands that run locally (pki,
  // token, audit): only the output mode and the streams. admin(), data()
  // and access() must not be called on it.
  static std::unique_ptr<Session> Local(SessionSettings settings, Io io);

  clavis::v1::KeyAdmin::StubInterface& admin() { return *admin_; }
  clavis::v1::KeyManagement::StubInterface& data() { return *data_; }
  clavis::v1::AccessControl::StubInterface& access() { return *access_; }
  // The standard gRPC health service (health.proto) on the same channel;
  // null in sessions made around fake stubs and in local ones.
  grpc::health::v1::Health::StubInterface* health() { return health_.get(); }
  // The Operations service (backups) on the same channel; null in sessions
  // made around fake stubs and in local ones.
  clavis::v1::Operations::StubInterface* operations() { return operations_.get(); }
  const SessionSettings& settings() const { return settings_; }
  bool json() const { return settings_.json; }
  std::istream& in() { return *io_.in; }
  std::ostream& out() { return *io_.out; }
  std::ostream& err() { return *io_.err; }
  bool in_is_terminal() const { return io_.in_is_terminal; }

  // One unary RPC with the session's deadline, or `at_least` if that is
  // longer (for calls known to take seconds of server work):
  //   Call(s.admin(), &KeyAdmin::StubInterface::GetKey, request)
  // Only the request's type name, the outcome and the latency are logged
  // (at debug level, --verbose), never a field: requests carry plaintext and
  // encryption contexts. A failure that clavisd turned into an approval
  // request carries the request's name (ApprovalRequestOf in exit_codes.h).
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Call(
      Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      const Request& request, absl::Duration at_least = absl::ZeroDuration()) {
    grpc::ClientContext context;
    PrepareContext(&context, at_least);
    Response response;
    const absl::Time start = absl::Now();
    const grpc::Status status = (stub.*method)(&context, request, &response);
    spdlog::debug("{}: {} after {}", Request::descriptor()->name(),
                  absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
                  absl::FormatDuration(absl::Now() - start));
    if (!status.ok()) return WithApprovalRequest(FromGrpcStatus(status), ApprovalRequest(context));
    return response;
  }

  // One server-streaming RPC; `on_message` gets each response in order (an
  // error from it cancels the call and is returned). The session's deadline
  // covers the whole stream.
  template <typename Stub, typename Request, typename Response>
  absl::Status Stream(Stub& stub,
                      std::unique_ptr<grpc::ClientReaderInterface<Response>> (Stub::*method)(
                          grpc::ClientContext*, const Request&),
                      const Request& request,
                      const std::function<absl::Status(const Response&)>& on_message) {
    grpc::ClientContext context;
    PrepareContext(&context);
    std::unique_ptr<grpc::ClientReaderInterface<Response>> reader =
        (stub.*method)(&context, request);
    Response response;
    absl::Status handled;
    while (handled.ok() && reader->Read(&response)) handled = on_message(response);
    if (!handled.ok()) context.TryCancel();
    const grpc::Status status = reader->Finish();
    if (!handled.ok()) return handled;
    if (!status.ok()) return WithApprovalRequest(FromGrpcStatus(status), ApprovalRequest(context));
    return absl::OkStatus();
  }

  // Prints `message` as one JSON document with --json, else `human` as is.
  absl::Status Print(const google::protobuf::Message& message, absl::string_view human);

 private:
  // The deadline (the session's timeout, or `at_least` if longer), and the
  // token header on a plaintext channel (on TLS the channel's call
  // credentials send it).
  void PrepareContext(grpc::ClientContext* context,
                      absl::Duration at_least = absl::ZeroDuration()) const;
  // The trailing metadata kApprovalRequestMetadata of a finished call, or "".
  static std::string ApprovalRequest(const grpc::ClientContext& context);

  SessionSettings settings_;
  std::unique_ptr<clavis::v1::KeyAdmin::StubInterface> admin_;
  std::unique_ptr<clavis::v1::KeyManagement::StubInterface> data_;
  std::unique_ptr<clavis::v1::AccessControl::StubInterface> access_;
  std::unique_ptr<grpc::health::v1::Health::StubInterface> health_;
  std::unique_ptr<clavis::v1::Operations::StubInterface> operations_;
  Io io_;
};

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_SESSION_H_
