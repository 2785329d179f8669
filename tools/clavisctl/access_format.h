// Human-readable views of the AccessControl messages (docs/ACCESS.md), as
// clavisctl prints them without --json: approval requests, a policy
// simulation and the caller's identity. Pure functions of the messages, like
// resource_format.h.
#ifndef CLAVIS_TOOLS_CLAVISCTL_ACCESS_FORMAT_H_
#define CLAVIS_TOOLS_CLAVISCTL_ACCESS_FORMAT_H_

#include <string>

#include "clavis/v1/access_control.pb.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace clavis::clavisctl {

// "PENDING", "EXECUTED", "EXPIRED" (the enum name without "APPROVAL_").
std::string FormatApprovalState(clavis::v1::ApprovalState state);

// "1/2": approvals given / approvals required.
std::string FormatApprovalCount(const clavis::v1::ApprovalRequest& request);

// A field table: name, key, action, resource, summary, requester, approvals,
// approvers, state, created, expires and, once executed, the result.
std::string FormatApprovalRequest(const clavis::v1::ApprovalRequest& request);

// One row per request: NAME, ACTION, RESOURCE, REQUESTER, APPROVALS, STATE,
// EXPIRES.
std::string FormatApprovalList(
    const google::protobuf::RepeatedPtrField<clavis::v1::ApprovalRequest>& requests);

// "ALLOW" or "DENY" on the first line, then the reason and the deciding
// statement ("none" when no statement decided: default deny).
std::string FormatSimulation(const clavis::v1::SimulatePolicyResponse& response);

// principal, groups, method, peer.
std::string FormatWhoAmI(const clavis::v1::WhoAmIResponse& response);

}  // namespace clavis::clavisctl

#endif  // CLAVIS_TOOLS_CLAVISCTL_ACCESS_FORMAT_H_
