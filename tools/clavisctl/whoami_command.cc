#include "tools/clavisctl/whoami_command.h"

#include "clavis/v1/access_control.grpc.pb.h"
#include "tools/clavisctl/access_format.h"

namespace clavis::clavisctl {

absl::Status WhoAmI(Session& session) {
  absl::StatusOr<clavis::v1::WhoAmIResponse> response =
      session.Call(session.access(), &clavis::v1::AccessControl::StubInterface::WhoAmI,
                   clavis::v1::WhoAmIRequest());
  if (!response.ok()) return response.status();
  return session.Print(*response, FormatWhoAmI(*response));
}

void RegisterWhoAmICommand(CommandRegistry& registry) {
  registry.AddCommand(
      registry.root(), "whoami",
      "Show who clavisd thinks you are: principal, groups, authentication method and peer",
      {"clavisctl --ca-cert pki/ca.crt --cert pki/admin.crt --key pki/admin.key whoami"},
      [](Session& s) { return WhoAmI(s); });
}

}  // namespace clavis::clavisctl
