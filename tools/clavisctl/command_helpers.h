// Pieces shared by the command files: the positional name argument, printing
// a Key or Segment in the chosen output mode, turning argument parse errors
// into usage errors, and the many commands that are "one RPC on a name".
#ifndef CLAVIS_TOOLS_CLAVISCTL_COMMAND_HELPERS_H_
#define CLAVIS_TOOLS_CLAVISCTL_COMMAND_HELPERS_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "clavis/v1/resources.pb.h"
#include "google/protobuf/map.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/command_registry.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/resource_format.h"
#include "tools/clavisctl/session.h"

namespace clavis::clavisctl {

// The largest M of an M-of-N approvals quorum clavisctl sends (--approvals
// of key create and policy set).
inline constexpr int kMaxApprovals = 10;

// The arguments of every "schedule-destroy" command.
struct ScheduleDestroyArgs {
  std::string name;
  std::string pending_window;  // empty: the server's default (30 days)
};

// Adds the required positional NAME argument; `type_name` shows the expected
// shape in --help ("tenants/T/keys/K").
CLI::Option* AddNameArg(CLI::App* command, std::string* name, const std::string& type_name,
                        const std::string& help);

// --pending-window DURATION.
CLI::Option* AddPendingWindowOption(CLI::App* command, std::string* window);

// A command whose only argument is a resource name.
struct NameCommand {
  const char* name;
  const char* description;
  const char* example;
  absl::Status (*run)(Session&, const std::string&);
};
// Registers `command` under `parent`; the name argument shows as `type_name`.
void AddNameCommand(CommandRegistry& registry, CLI::App& parent, const NameCommand& command,
                    const std::string& type_name, const std::string& help);

// Reads the file at `path`, or stdin for "" and "-" (saying so on stderr
// when stdin is a terminal). `what` names the input in messages ("the
// plaintext"). Errors are usage errors: the argument names a file that
// cannot be read, or the input is larger than kMaxInputBytes.
absl::StatusOr<std::string> ReadInput(Session& session, const std::string& path,
                                      absl::string_view what);

// Repeated --context "k=v" entries into an encryption context; a malformed
// entry or a key given twice is a usage error.
absl::Status ParseContext(const std::vector<std::string>& entries,
                          google::protobuf::Map<std::string, std::string>* context);

inline absl::Status PrintResource(Session& session, const clavis::v1::Key& key) {
  return session.Print(key, FormatKey(key));
}
inline absl::Status PrintResource(Session& session, const clavis::v1::Segment& segment) {
  return session.Print(segment, FormatSegment(segment));
}

// A parse error of a command-line value is the caller's mistake: exit 2.
template <typename T>
absl::StatusOr<T> AsUsage(absl::StatusOr<T> value) {
  if (!value.ok()) return AsUsageError(value.status());
  return value;
}

// A KeyAdmin RPC whose request is just a name and whose response is a Key or
// Segment, printed on success.
template <typename Request, typename Response>
absl::Status CallOnName(Session& session,
                        grpc::Status (clavis::v1::KeyAdmin::StubInterface::*method)(
                            grpc::ClientContext*, const Request&, Response*),
                        const std::string& name) {
  Request request;
  request.set_name(name);
  absl::StatusOr<Response> response = session.Call(session.admin(), method, request);
  if (!response.ok()) return response.status();
  return PrintResource(session, *response);
}

// ScheduleKeyDestruction, ScheduleKeyVersionDestruction and
// ScheduleSegmentDestruction: name plus an optional pending window. The window
// is only sent when given, so the server's default applies otherwise.
template <typename Request, typename Response>
absl::Status CallScheduleDestruction(Session& session,
                                     grpc::Status (clavis::v1::KeyAdmin::StubInterface::*method)(
                                         grpc::ClientContext*, const Request&, Response*),
                                     const ScheduleDestroyArgs& args) {
  Request request;
  request.set_name(args.name);
  if (!args.pending_window.empty()) {
    absl::StatusOr<absl::Duration> window = AsUsage(ParseDuration(args.pending_window));
    if (!window.ok()) return window.status();
    *request.mutable_pending_window() = ToProtoDuration(*window);
  }
  absl::StatusOr<Response> response = session.Call(session.admin(), method, request);
  if (!response.ok()) return response.status();
  return PrintResource(session, *response);
}

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_COMMAND_HELPERS_H_
