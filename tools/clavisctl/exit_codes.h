// clavisctl's documented exit codes (docs/clavisctl.md) and how a command's
// final absl::Status becomes one of them and an error line on stderr.
//
//   0 ok                          5 INVALID_ARGUMENT
//   1 any other error             6 PERMISSION_DENIED / UNAUTHENTICATED
//   2 usage error                 7 UNAVAILABLE / DEADLINE_EXCEEDED
//   3 NOT_FOUND                   8 ALREADY_EXISTS
//   4 FAILED_PRECONDITION
//
// Scripts branch on these, so a code never changes meaning once released.
#ifndef CLAVIS_TOOLS_CLAVISCTL_EXIT_CODES_H_
#define CLAVIS_TOOLS_CLAVISCTL_EXIT_CODES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace clavis::clavisctl {

enum ExitCode : int {
  kExitOk = 0,
  kExitGeneric = 1,
  kExitUsage = 2,
  kExitNotFound = 3,
  kExitFailedPrecondition = 4,
  kExitInvalidArgument = 5,
  kExitPermissionDenied = 6,
  kExitUnavailable = 7,
  kExitAlreadyExists = 8,
};

// An error in how clavisctl was called that only shows after CLI11 parsing
// (a bad --context entry, a malformed name): InvalidArgument marked so that
// it exits with kExitUsage (2) like a CLI11 parse error, while an
// INVALID_ARGUMENT from the server exits with 5.
absl::Status UsageError(absl::string_view message);
// Marks an existing error (e.g. from ParseDuration) as a usage error.
absl::Status AsUsageError(const absl::Status& status);
bool IsUsageError(const absl::Status& status);

// A call that clavisd turned into an M-of-N approval request (docs/ACCESS.md,
// "Approvals") fails with FAILED_PRECONDITION and names the request in the
// trailing metadata "clavis-approval-request". Session::Call records that
// name on the status, and FormatError adds a hint on how to approve it.
inline constexpr char kApprovalRequestMetadata[] = "clavis-approval-request";
absl::Status WithApprovalRequest(const absl::Status& status, absl::string_view request_name);
// The approval request recorded by WithApprovalRequest, or "" if none.
std::string ApprovalRequestOf(const absl::Status& status);

ExitCode ExitCodeForStatus(const absl::Status& status);

// What clavisctl prints on stderr for a failed command: "clavisctl: <message>"
// plus, where it helps, a hint line (UNAVAILABLE: is clavisd running on
// <endpoint>?; an approval request: how many approvals it needs and the
// command that gives one). The message is the server's (or ours) and never holds key
// material: no command puts plaintext into a status.
// REQUIRES: !status.ok().
std::string FormatError(const absl::Status& status, absl::string_view endpoint);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_EXIT_CODES_H_
