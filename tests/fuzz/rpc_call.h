// Calling a gRPC handler in process: the request parsed from fuzz bytes, a
// bare ServerContext (no network, no credentials: the FuzzDomain's
// development-mode authenticator admits it), and the checks every
// handler's answer must pass. Test-only.
#ifndef CLAVIS_TESTS_FUZZ_RPC_CALL_H_
#define CLAVIS_TESTS_FUZZ_RPC_CALL_H_

#include <cstdio>

#include "absl/strings/string_view.h"
#include "grpcpp/server_context.h"
#include "tests/fuzz/fuzz_util.h"

namespace clavis::fuzz {

// No request may make a handler answer as if the server were broken: the
// domain is in memory and healthy, so these codes mean a bug (an unchecked
// input reaching an internal error path, or an audit record the log
// refuses, which fails the call as UNAVAILABLE).
inline void CheckHandlerStatus(const char* rpc, const grpc::Status& status) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DATA_LOSS:
      std::fprintf(stderr, "%s answered %d: %s\n", rpc, static_cast<int>(status.error_code()),
                   status.error_message().c_str());
      std::abort();
    default:
      break;
  }
}

// Parses `body` as the handler's request type and calls it; false if the
// bytes are not a request (nothing is called then).
template <typename Service, typename Request, typename Response>
bool CallHandler(const char* rpc, Service* service,
                 grpc::Status (Service::*method)(grpc::ServerContext*, const Request*, Response*),
                 absl::string_view body, Request* request, Response* response,
                 grpc::Status* status) {
  if (!request->ParseFromArray(body.data(), static_cast<int>(body.size()))) return false;
  grpc::ServerContext context;
  *status = (service->*method)(&context, request, response);
  CheckHandlerStatus(rpc, *status);
  return true;
}

}  // namespace clavis::fuzz

#endif  // CLAVIS_TESTS_FUZZ_RPC_CALL_H_
