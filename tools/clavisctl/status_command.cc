#include "tools/clavisctl/status_command.h"

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "tools/clavisctl/health.grpc.pb.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

using HealthStub = grpc::health::v1::Health::StubInterface;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// What the transport says when nothing answered: no server, a refused
// handshake, or no answer in time.
bool Unreachable(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

absl::Status UnreachableError(const StatusReport& report, const absl::Status& cause) {
  return absl::Status(
      cause.code(),
      absl::StrCat("cannot reach clavisd at ", report.endpoint(), " over ", report.transport(),
                   ": ", cause.message(),
                   "\nclavisctl: check the endpoint (--endpoint, $CLAVIS_ENDPOINT or the "
                   "profile's) and the TLS options: --ca-cert for a clavisd with TLS, none for a "
                   "plaintext one, and --cert/--key when clavisd asks for client certificates"));
}

}  // namespace

std::string TenantOfPrincipal(absl::string_view principal) {
  if (!absl::ConsumePrefix(&principal, "tenants/")) return "";
  const size_t slash = principal.find('/');
  return std::string(principal.substr(0, slash));
}

std::string FormatStatusReport(const StatusReport& report) {
  std::vector<TableRow> rows = {
      {"endpoint", report.endpoint()},       {"transport", OrDash(report.transport())},
      {"profile", OrDash(report.profile())}, {"reachable", report.reachable() ? "yes" : "no"},
      {"health", OrDash(report.health())},
  };
  if (report.reachable()) {
    rows.push_back({"latency", report.principal().empty()
                                   ? "-"
                                   : absl::StrFormat("%.1f ms (WhoAmI)", report.latency_ms())});
    rows.push_back({"principal", OrDash(report.principal())});
    rows.push_back({"tenant", OrDash(report.tenant())});
    rows.push_back(
        {"groups", report.groups().empty() ? "-" : absl::StrJoin(report.groups(), ", ")});
    rows.push_back({"method", OrDash(report.method())});
    rows.push_back({"peer", OrDash(report.peer())});
    rows.push_back({"server version", report.server_version().empty()
                                          ? "unknown (this clavisd does not report it)"
                                          : report.server_version()});
  }
  rows.push_back({"client version", report.client_version()});
  return FormatTable(rows);
}

absl::Status ShowStatus(Session& session) {
  const SessionSettings& settings = session.settings();
  StatusReport report;
  report.set_endpoint(settings.endpoint);
  report.set_transport(settings.transport.empty() ? DescribeTransport(settings.credentials)
                                                  : settings.transport);
  report.set_profile(settings.profile);
  report.set_client_version(CLAVIS_VERSION);

  // The health check first: it also opens the connection (and the TLS
  // handshake), so the WhoAmI below times a round trip, not a handshake.
  absl::Status outcome;
  bool unreachable = false;
  if (HealthStub* health = session.health(); health != nullptr) {
    absl::StatusOr<HealthCheckResponse> checked =
        session.Call(*health, &HealthStub::Check, HealthCheckRequest());
    if (checked.ok()) {
      report.set_reachable(true);
      report.set_health(HealthCheckResponse::ServingStatus_Name(checked->status()));
      if (checked->status() == HealthCheckResponse::NOT_SERVING) {
        outcome = absl::UnavailableError(absl::StrCat(
            "clavisd at ", settings.endpoint, " answers but reports NOT_SERVING (shutting down?)"));
      }
    } else if (Unreachable(checked.status())) {
      unreachable = true;
      outcome = UnreachableError(report, checked.status());
      report.set_error(std::string(checked.status().message()));
    } else if (checked.status().code() == absl::StatusCode::kUnimplemented) {
      report.set_reachable(true);
      report.set_health("NOT_REGISTERED");
    } else {
      // Answered, so reachable; the WhoAmI below says more about why.
      report.set_reachable(true);
      report.set_health(
          absl::StrCat("UNKNOWN (", absl::StatusCodeToString(checked.status().code()), ")"));
    }
  }

  if (!unreachable) {
    const absl::Time start = absl::Now();
    absl::StatusOr<clavis::v1::WhoAmIResponse> who =
        session.Call(session.access(), &clavis::v1::AccessControl::StubInterface::WhoAmI,
                     clavis::v1::WhoAmIRequest());
    const absl::Duration latency = absl::Now() - start;
    if (who.ok()) {
      report.set_reachable(true);
      report.set_latency_ms(absl::ToDoubleMilliseconds(latency));
      report.set_principal(who->principal());
      report.set_tenant(TenantOfPrincipal(who->principal()));
      *report.mutable_groups() = who->groups();
      report.set_method(who->method());
      report.set_peer(who->peer());
      report.set_server_version(who->server_version());
    } else if (Unreachable(who.status()) && !report.reachable()) {
      outcome = UnreachableError(report, who.status());
      report.set_error(std::string(who.status().message()));
    } else {
      report.set_reachable(true);
      if (outcome.ok()) outcome = who.status();
      report.set_error(std::string(who.status().message()));
    }
  }

  if (absl::Status printed = session.Print(report, FormatStatusReport(report)); !printed.ok()) {
    return printed;
  }
  return outcome;
}

void RegisterStatusCommand(CommandRegistry& registry) {
  registry.AddCommand(
      registry.root(), "status",
      "Is clavisd reachable and healthy, and who are you there: endpoint, transport, health, "
      "WhoAmI round trip, principal, tenant and groups",
      {"clavisctl status", "clavisctl --profile prod status --json"},
      [](Session& s) { return ShowStatus(s); });
}

}  // namespace clavis::clavisctl
