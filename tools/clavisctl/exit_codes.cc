#include "tools/clavisctl/exit_codes.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace clavis::clavisctl {
namespace {

// Payloads travel only inside this process; the URL just has to be unique.
constexpr absl::string_view kUsagePayload = "type.clavis.dev/clavisctl.UsageError";
constexpr absl::string_view kApprovalPayload = "type.clavis.dev/clavisctl.ApprovalRequest";

// The quorum in clavisd's message ("... needs 2 approvals for ..."), if the
// message says it; the hint reads well without it too.
std::optional<int> RequiredApprovals(absl::string_view message) {
  constexpr absl::string_view kNeeds = " needs ";
  const size_t at = message.find(kNeeds);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = message.substr(at + kNeeds.size());
  const size_t space = rest.find(' ');
  if (space == absl::string_view::npos || !absl::StartsWith(rest.substr(space), " approval")) {
    return std::nullopt;
  }
  int count = 0;
  if (!absl::SimpleAtoi(rest.substr(0, space), &count) || count <= 0) return std::nullopt;
  return count;
}

}  // namespace

absl::Status UsageError(absl::string_view message) {
  return AsUsageError(absl::InvalidArgumentError(message));
}

absl::Status AsUsageError(const absl::Status& status) {
  if (status.ok()) return status;
  absl::Status marked = status;
  marked.SetPayload(kUsagePayload, absl::Cord());
  return marked;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayload).has_value();
}

absl::Status WithApprovalRequest(const absl::Status& status, absl::string_view request_name) {
  if (status.ok() || request_name.empty()) return status;
  absl::Status marked = status;
  marked.SetPayload(kApprovalPayload, absl::Cord(request_name));
  return marked;
}

std::string ApprovalRequestOf(const absl::Status& status) {
  const auto name = status.GetPayload(kApprovalPayload);  // absl::optional
  return name.has_value() ? std::string(*name) : std::string();
}

ExitCode ExitCodeForStatus(const absl::Status& status) {
  if (IsUsageError(status)) return kExitUsage;
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kFailedPrecondition:
      return kExitFailedPrecondition;
    case absl::StatusCode::kInvalidArgument:
      return kExitInvalidArgument;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return kExitPermissionDenied;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnavailable;
    case absl::StatusCode::kAlreadyExists:
      return kExitAlreadyExists;
    default:
      return kExitGeneric;
  }
}

std::string FormatError(const absl::Status& status, absl::string_view endpoint) {
  // An empty message would leave the user with "clavisctl: "; the code name
  // is better than nothing.
  const std::string message = status.message().empty() ? absl::StatusCodeToString(status.code())
                                                       : std::string(status.message());
  std::string out = absl::StrCat("clavisctl: ", message, "\n");
  if (IsUsageError(status)) {
    absl::StrAppend(&out, "Run with --help for more information.\n");
  } else if (const std::string request = ApprovalRequestOf(status); !request.empty()) {
    const std::optional<int> required = RequiredApprovals(status.message());
    absl::StrAppend(&out, "clavisctl: approval request ", request, ": needs ",
                    required.has_value() ? absl::StrCat(*required, " approvals") : "approvals",
                    "; run `clavisctl approval approve ", request,
                    "` as another approver (see `clavisctl approval get ", request, "`)\n");
  } else if (status.code() == absl::StatusCode::kUnavailable) {
    absl::StrAppend(&out, "clavisctl: is clavisd running on ", endpoint,
                    "? start it with scripts/run (or point --endpoint / CLAVIS_ENDPOINT at it)\n");
  } else if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    absl::StrAppend(&out, "clavisctl: no answer from ", endpoint,
                    " within --timeout; is clavisd running there and not overloaded?\n");
  }
  return out;
}

}  // namespace clavis::clavisctl
