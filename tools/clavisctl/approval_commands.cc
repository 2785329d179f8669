#include "tools/clavisctl/approval_commands.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "tools/clavisctl/access_format.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/resource_format.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

using clavis::v1::AccessControl;

constexpr char kApprovalName[] = "tenants/T/approvals/ID";

// FormatApprovalRequest plus, for a denied request, who denied it and why.
// "denied by" is as wide as FormatApprovalRequest's widest field name
// ("requester"), so the two tables line up as one.
std::string FormatRequest(const clavis::v1::ApprovalRequest& request) {
  std::string out = FormatApprovalRequest(request);
  if (request.state() != clavis::v1::APPROVAL_DENIED) return out;
  return out + FormatTable({{"denied by", request.denied_by()},
                            {"reason", request.deny_reason().empty() ? "-" : request.deny_reason()},
                            {"denied", FormatTimestamp(request.deny_time())}});
}

}  // namespace

absl::Status ListApprovals(Session& session, const ListApprovalsArgs& args) {
  clavis::v1::ListApprovalRequestsRequest request;
  request.set_key(args.key);
  request.set_include_finished(args.all);
  absl::StatusOr<clavis::v1::ListApprovalRequestsResponse> response =
      session.Call(session.access(), &AccessControl::StubInterface::ListApprovalRequests, request);
  if (!response.ok()) return response.status();
  if (!session.json() && response->requests().empty()) {
    session.err() << "no " << (args.all ? "" : "pending ") << "approval requests for " << args.key
                  << (args.all ? "" : " (--all shows finished ones too)") << "\n";
    return absl::OkStatus();
  }
  return session.Print(*response, FormatApprovalList(response->requests()));
}

absl::Status GetApproval(Session& session, const std::string& name) {
  clavis::v1::GetApprovalRequestRequest request;
  request.set_name(name);
  absl::StatusOr<clavis::v1::ApprovalRequest> response =
      session.Call(session.access(), &AccessControl::StubInterface::GetApprovalRequest, request);
  if (!response.ok()) return response.status();
  return session.Print(*response, FormatRequest(*response));
}

absl::Status ApproveApproval(Session& session, const std::string& name) {
  clavis::v1::ApproveRequestRequest request;
  request.set_name(name);
  absl::StatusOr<clavis::v1::ApprovalRequest> response =
      session.Call(session.access(), &AccessControl::StubInterface::ApproveRequest, request);
  if (!response.ok()) return response.status();
  if (absl::Status s = session.Print(*response, FormatApprovalRequest(*response)); !s.ok()) {
    return s;
  }
  if (response->state() == clavis::v1::APPROVAL_PENDING) {
    const int missing =
        static_cast<int>(response->approvals_required()) - response->approvers_size();
    if (!session.json() && missing > 0) {
      session.err() << "approved; " << missing << " more approval" << (missing == 1 ? "" : "s")
                    << " needed before the " << response->action() << " runs\n";
    }
    return absl::OkStatus();
  }
  if (response->state() == clavis::v1::APPROVAL_EXECUTED && response->result_code() != 0) {
    // The approval counted, but what it released failed: a script waiting
    // for the destruction to be scheduled must not see success.
    return absl::Status(static_cast<absl::StatusCode>(response->result_code()),
                        absl::StrCat("approved, and the ", response->action(),
                                     " ran but failed: ", response->result_message()));
  }
  if (!session.json() && response->state() == clavis::v1::APPROVAL_EXECUTED) {
    session.err() << "approved; the quorum is reached and the " << response->action() << " ran\n";
  }
  return absl::OkStatus();
}

absl::Status DenyApproval(Session& session, const DenyApprovalArgs& args) {
  clavis::v1::DenyRequestRequest request;
  request.set_name(args.name);
  request.set_reason(args.reason);
  absl::StatusOr<clavis::v1::ApprovalRequest> response =
      session.Call(session.access(), &AccessControl::StubInterface::DenyRequest, request);
  if (!response.ok()) return response.status();
  if (absl::Status s = session.Print(*response, FormatRequest(*response)); !s.ok()) return s;
  if (!session.json()) {
    session.err() << "denied; the " << response->action() << " will not run\n";
  }
  return absl::OkStatus();
}

void RegisterApprovalCommands(CommandRegistry& registry) {
  CLI::App* approval = registry.AddNoun(
      registry.root(), "approval",
      "M-of-N approval requests: list, show, approve and deny guarded changes (docs/ACCESS.md)",
      {"clavisctl approval list tenants/acme/keys/crm",
       "clavisctl approval approve tenants/acme/approvals/ar-5f2c9d",
       "clavisctl approval deny tenants/acme/approvals/ar-5f2c9d --reason \"change freeze\""});
  {
    auto args = std::make_shared<ListApprovalsArgs>();
    CLI::App* c = registry.AddCommand(*approval, "list",
                                      "List a key's pending approval requests, one row per request",
                                      {"clavisctl approval list tenants/acme/keys/crm --all"},
                                      [args](Session& s) { return ListApprovals(s, *args); });
    AddNameArg(c, &args->key, "tenants/T/keys/K", "The key");
    c->add_flag("--all", args->all, "Include executed, denied and expired requests");
  }
  AddNameCommand(registry, *approval,
                 {"get",
                  "Show one approval request: what it will do, who asked, who approved, its "
                  "state and, once executed, the result",
                  "clavisctl approval get tenants/acme/approvals/ar-5f2c9d", &GetApproval},
                 kApprovalName, "The approval request");
  AddNameCommand(registry, *approval,
                 {"approve",
                  "Approve a request as the caller (not its requester; needs ApproveRequest on "
                  "the key). The approval that reaches the quorum runs the action",
                  "clavisctl approval approve tenants/acme/approvals/ar-5f2c9d", &ApproveApproval},
                 kApprovalName, "The approval request");
  {
    auto args = std::make_shared<DenyApprovalArgs>();
    CLI::App* c = registry.AddCommand(
        *approval, "deny",
        "Deny a pending request for good: its action never runs (needs ApproveRequest on the "
        "key; the requester may deny, i.e. withdraw, their own request)",
        {"clavisctl approval deny tenants/acme/approvals/ar-5f2c9d --reason \"change freeze "
         "until 2026-12-01\""},
        [args](Session& s) { return DenyApproval(s, *args); });
    AddNameArg(c, &args->name, kApprovalName, "The approval request");
    c->add_option("--reason", args->reason,
                  "Why, shown to everyone who reads the request (at most 512 bytes, one line)")
        ->type_name("TEXT");
  }
}

}  // namespace clavis::clavisctl
