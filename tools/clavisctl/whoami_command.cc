#include "tools/clavisctl/whoami_command.h"

#include "absl/strings/str_join.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {

absl::Status WhoAmI(Session& session) {
  absl::StatusOr<clavis::v1::WhoAmIResponse> response =
      session.Call(session.access(), &clavis::v1::AccessControl::StubInterface::WhoAmI,
                   clavis::v1::WhoAmIRequest());
  if (!response.ok()) return response.status();
  // FormatWhoAmI's rows and the server's version, in one aligned table.
  return session.Print(
      *response,
      FormatTable({
          {"principal", response->principal()},
          {"groups", response->groups().empty() ? "-" : absl::StrJoin(response->groups(), ", ")},
          {"method", response->method().empty() ? "-" : response->method()},
          {"peer", response->peer().empty() ? "-" : response->peer()},
          {"server version", response->server_version().empty()
                                 ? "unknown (this clavisd does not report it)"
                                 : response->server_version()},
      }));
}

void RegisterWhoAmICommand(CommandRegistry& registry) {
  registry.AddCommand(
      registry.root(), "whoami",
      "Show who clavisd thinks you are: principal, groups, authentication method and peer, and "
      "clavisd's version",
      {"clavisctl --ca-cert pki/ca.crt --cert pki/admin.crt --key pki/admin.key whoami"},
      [](Session& s) { return WhoAmI(s); });
}

}  // namespace clavis::clavisctl
