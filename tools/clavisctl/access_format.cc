#include "tools/clavisctl/access_format.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "tools/clavisctl/resource_format.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

std::string JoinOrDash(const google::protobuf::RepeatedPtrField<std::string>& items) {
  return items.empty() ? "-" : absl::StrJoin(items, ", ");
}

}  // namespace

std::string FormatApprovalState(clavis::v1::ApprovalState state) {
  const std::string& name = clavis::v1::ApprovalState_Name(state);
  // A state added to the API after this binary was built has no name here.
  if (name.empty()) return absl::StrCat("STATE_", static_cast<int>(state));
  return std::string(absl::StripPrefix(name, "APPROVAL_"));
}

std::string FormatApprovalCount(const clavis::v1::ApprovalRequest& request) {
  return absl::StrCat(request.approvers_size(), "/", request.approvals_required());
}

std::string FormatApprovalRequest(const clavis::v1::ApprovalRequest& request) {
  std::vector<TableRow> fields = {
      {"name", request.name()},
      {"key", request.key()},
      {"action", request.action()},
      {"resource", OrDash(request.resource())},
      {"summary", OrDash(request.summary())},
      {"requester", request.requester()},
      {"approvals", FormatApprovalCount(request)},
      {"approvers", JoinOrDash(request.approvers())},
      {"state", FormatApprovalState(request.state())},
      {"created", FormatTimestamp(request.create_time())},
      {"expires", FormatTimestamp(request.expire_time())},
  };
  if (request.state() == clavis::v1::APPROVAL_EXECUTED) {
    const auto code = static_cast<absl::StatusCode>(request.result_code());
    std::string result = absl::StatusCodeToString(code);
    if (!request.result_message().empty()) absl::StrAppend(&result, ": ", request.result_message());
    fields.push_back({"result", result});
  }
  return FormatTable(fields);
}

std::string FormatApprovalList(
    const google::protobuf::RepeatedPtrField<clavis::v1::ApprovalRequest>& requests) {
  std::vector<TableRow> rows = {
      {"NAME", "ACTION", "RESOURCE", "REQUESTER", "APPROVALS", "STATE", "EXPIRES"}};
  for (const clavis::v1::ApprovalRequest& r : requests) {
    rows.push_back({r.name(), r.action(), OrDash(r.resource()), r.requester(),
                    FormatApprovalCount(r), FormatApprovalState(r.state()),
                    FormatTimestamp(r.expire_time())});
  }
  return FormatTable(rows);
}

std::string FormatSimulation(const clavis::v1::SimulatePolicyResponse& response) {
  std::string statement = "none (default deny)";
  if (response.statement_index() >= 0) {
    statement = absl::StrCat(response.statement_index());
    if (!response.sid().empty()) absl::StrAppend(&statement, " (sid \"", response.sid(), "\")");
  }
  return absl::StrCat(
      response.allowed() ? "ALLOW" : "DENY", "\n",
      FormatTable({{"reason", OrDash(response.reason())}, {"statement", statement}}));
}

std::string FormatWhoAmI(const clavis::v1::WhoAmIResponse& response) {
  return FormatTable({
      {"principal", response.principal()},
      {"groups", JoinOrDash(response.groups())},
      {"method", OrDash(response.method())},
      {"peer", OrDash(response.peer())},
  });
}

}  // namespace clavis::clavisctl
