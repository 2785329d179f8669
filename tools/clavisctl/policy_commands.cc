#include "tools/clavisctl/policy_commands.h"

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clavis/v1/access_control.grpc.pb.h"
#include "tools/clavisctl/access_format.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/json_output.h"

namespace clavis::clavisctl {
namespace {

using clavis::v1::AccessControl;

constexpr char kKeyName[] = "tenants/T/keys/K";

std::string QuorumNote(const clavis::v1::KeyPolicy& policy) {
  if (policy.approvals_required() < 2) {
    return absl::StrCat("approvals required: none (", policy.key(),
                        " runs destructive changes without approval)\n");
  }
  return absl::StrCat("approvals required: ", policy.approvals_required(), " (", policy.key(),
                      ": destructive and access-widening changes need this many approvers)\n");
}

// A policy document from a file or stdin; empty is a usage error (an empty
// policy would mean "no policy", which SetKeyPolicy cannot set).
absl::StatusOr<std::string> ReadPolicy(Session& session, const std::string& path,
                                       absl::string_view option) {
  absl::StatusOr<std::string> document = ReadInput(session, path, "the policy");
  if (!document.ok()) return document.status();
  if (absl::StripAsciiWhitespace(*document).empty()) {
    return UsageError(absl::StrCat(option, ": the policy document is empty"));
  }
  return document;
}

clavis::v1::SetKeyPolicyRequest SetRequest(const SetPolicyArgs& args, std::string document) {
  clavis::v1::SetKeyPolicyRequest request;
  request.set_key(args.key);
  request.set_policy(std::move(document));
  if (args.approvals >= 0) request.set_approvals_required(static_cast<uint32_t>(args.approvals));
  return request;
}

// --file (like `policy set`) and --policy-file (like `key create`) both
// name the document, so either habit works.
void AddPolicyFileOptions(CLI::App* c, SetPolicyArgs* args) {
  AddNameArg(c, &args->key, kKeyName, "The key");
  c->add_option("--file,--policy-file", args->file, "The policy document (JSON); - reads stdin")
      ->required()
      ->type_name("FILE");
  c->add_option("--approvals", args->approvals,
                "Set the M-of-N approvals quorum (0 or 1: none); default: keep it")
      ->type_name("M")
      ->check(CLI::Range(0, kMaxApprovals));
}

}  // namespace

absl::Status GetKeyPolicy(Session& session, const std::string& key) {
  clavis::v1::GetKeyPolicyRequest request;
  request.set_key(key);
  absl::StatusOr<clavis::v1::KeyPolicy> policy =
      session.Call(session.access(), &AccessControl::StubInterface::GetKeyPolicy, request);
  if (!policy.ok()) return policy.status();
  if (session.json()) return session.Print(*policy, "");
  if (policy->policy().empty()) {
    session.err() << key << " has no policy; its tenant administrators may give it one with "
                  << "`clavisctl policy set " << key << " --file F`\n";
  } else {
    session.out() << IndentJson(policy->policy());
  }
  session.err() << QuorumNote(*policy);
  return absl::OkStatus();
}

absl::Status SetKeyPolicy(Session& session, const SetPolicyArgs& args) {
  absl::StatusOr<std::string> document = ReadPolicy(session, args.file, "--file");
  if (!document.ok()) return document.status();
  absl::StatusOr<clavis::v1::KeyPolicy> policy =
      session.Call(session.access(), &AccessControl::StubInterface::SetKeyPolicy,
                   SetRequest(args, *std::move(document)));
  if (!policy.ok()) return policy.status();
  return session.Print(
      *policy, absl::StrCat("set the policy of ", policy->key(), "; ", QuorumNote(*policy)));
}

absl::Status ValidateKeyPolicy(Session& session, const SetPolicyArgs& args) {
  absl::StatusOr<std::string> document = ReadPolicy(session, args.file, "--file");
  if (!document.ok()) return document.status();
  absl::StatusOr<clavis::v1::ValidateKeyPolicyResponse> checked =
      session.Call(session.access(), &AccessControl::StubInterface::ValidateKeyPolicy,
                   SetRequest(args, *std::move(document)));
  if (!checked.ok()) return checked.status();
  std::string human = absl::StrCat("valid: a policy for ", checked->key(), "\n");
  if (checked->needs_approval()) {
    absl::StrAppend(&human, "setting it needs approval: it ",
                    absl::StrJoin(checked->approval_reasons(), " and "), ", so `policy set` ",
                    "would create an approval request (exit 4) for the key's quorum\n");
  } else {
    absl::StrAppend(&human, "setting it needs no approval: `policy set` would apply it at once\n");
  }
  return session.Print(*checked, human);
}

absl::Status SimulatePolicy(Session& session, const SimulateArgs& args) {
  clavis::v1::SimulatePolicyRequest request;
  request.set_key(args.key);
  request.set_principal(args.principal);
  for (const std::string& group : args.groups) request.add_groups(group);
  request.set_action(args.action);
  request.set_resource(args.resource);
  request.set_segment(args.segment);
  if (absl::Status s = ParseContext(args.context, request.mutable_encryption_context()); !s.ok()) {
    return s;
  }
  if (!args.time.empty()) {
    absl::StatusOr<absl::Time> time = AsUsage(ParseTime(args.time));
    if (!time.ok()) return time.status();
    *request.mutable_time() = ToProtoTimestamp(*time);
  }
  if (!args.draft_file.empty()) {
    absl::StatusOr<std::string> draft = ReadPolicy(session, args.draft_file, "--draft-file");
    if (!draft.ok()) return draft.status();
    request.set_draft_policy(*std::move(draft));
  }
  absl::StatusOr<clavis::v1::SimulatePolicyResponse> response =
      session.Call(session.access(), &AccessControl::StubInterface::SimulatePolicy, request);
  if (!response.ok()) return response.status();
  return session.Print(*response, FormatSimulation(*response));
}

void RegisterPolicyCommands(CommandRegistry& registry) {
  CLI::App* policy = registry.AddNoun(
      registry.root(), "policy",
      "Read, validate, replace and try out a key's access policy (docs/POLICY.md)",
      {"clavisctl policy get tenants/acme/keys/crm > crm-policy.json",
       "clavisctl policy validate tenants/acme/keys/crm --file crm-policy.json",
       "clavisctl policy set tenants/acme/keys/crm --file crm-policy.json",
       "clavisctl policy simulate tenants/acme/keys/crm --principal "
       "tenants/acme/principals/billing-app --action Decrypt --segment acme/billing/2026-11"});

  AddNameCommand(registry, *policy,
                 {"get",
                  "Print the key's policy document (indented JSON) on stdout and its approvals "
                  "quorum on stderr; --json prints the KeyPolicy message",
                  "clavisctl policy get tenants/acme/keys/crm > crm-policy.json", &GetKeyPolicy},
                 kKeyName, "The key");
  {
    auto args = std::make_shared<SetPolicyArgs>();
    CLI::App* c = registry.AddCommand(
        *policy, "set",
        "Replace the key's policy with a whole document (validated by clavisd). A change that "
        "widens access, or lowers --approvals, on a key with an approvals quorum becomes an "
        "approval request instead (exit 4, with the request's name)",
        {"clavisctl policy set tenants/acme/keys/crm --file crm-policy.json --approvals 2"},
        [args](Session& s) { return SetKeyPolicy(s, *args); });
    AddPolicyFileOptions(c, args.get());
  }
  {
    auto args = std::make_shared<SetPolicyArgs>();
    CLI::App* c = registry.AddCommand(
        *policy, "validate",
        "Check a policy document as `policy set` would (clavisd's parser, tenant scope, "
        "quorum) without changing anything: prints \"valid\" and whether setting it would need "
        "M-of-N approval; an invalid document exits 5 with the parser's message",
        {"clavisctl policy validate tenants/acme/keys/crm --policy-file crm-policy.json"},
        [args](Session& s) { return ValidateKeyPolicy(s, *args); });
    AddPolicyFileOptions(c, args.get());
  }
  {
    auto args = std::make_shared<SimulateArgs>();
    CLI::App* c = registry.AddCommand(
        *policy, "simulate",
        "Ask whether a principal may do an action under the key's policy (or a draft): prints "
        "ALLOW or DENY, the reason and the deciding statement. Exits 0 for both answers",
        {"clavisctl policy simulate tenants/acme/keys/crm --principal "
         "tenants/acme/principals/billing-app --action Decrypt --segment acme/billing/2026-11 "
         "--context table=invoices --draft-file new-policy.json"},
        [args](Session& s) { return SimulatePolicy(s, *args); });
    AddNameArg(c, &args->key, kKeyName, "The key whose policy decides");
    c->add_option("--principal", args->principal, "Who asks (tenants/T/principals/ID)")
        ->required()
        ->type_name("PRINCIPAL");
    c->add_option("--group", args->groups, "A group of the principal; repeat for more")
        ->type_name("tenants/T/groups/G");
    c->add_option("--action", args->action, "The action, e.g. Decrypt, Rotate (docs/POLICY.md)")
        ->required()
        ->type_name("ACTION");
    c->add_option("--segment", args->segment, "The segment of a data-plane request")
        ->type_name("SEGMENT");
    c->add_option("--resource", args->resource,
                  "What the action is on: the key (default), one of its versions or segments")
        ->type_name("NAME");
    c->add_option("--context", args->context, "An encryption-context entry; repeat for more")
        ->type_name("KEY=VALUE")
        ->check(KeyValueCheck());
    c->add_option("--time", args->time, "When the request happens (RFC 3339); default: now")
        ->type_name("TIME")
        ->check(TimeCheck());
    c->add_option("--draft-file", args->draft_file,
                  "Decide against this policy document instead of the stored one; - reads stdin")
        ->type_name("FILE");
  }
}

}  // namespace clavis::clavisctl
