#include "tools/clavisctl/key_commands.h"

#include <map>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "clavis/v1/key_admin.grpc.pb.h"
#include "google/protobuf/field_mask.pb.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/key_import_commands.h"
#include "tools/clavisctl/key_version_commands.h"
#include "tools/clavisctl/resource_format.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

using clavis::v1::KeyAdmin;

constexpr char kKeyName[] = "tenants/T/keys/K";

}  // namespace

absl::Status CreateKey(Session& session, const CreateKeyArgs& args) {
  absl::StatusOr<KeyNameParts> parts = AsUsage(SplitKeyName(args.name));
  if (!parts.ok()) return parts.status();
  absl::StatusOr<std::map<std::string, std::string>> labels =
      AsUsage(ParseKeyValues(args.labels, "--label"));
  if (!labels.ok()) return labels.status();

  clavis::v1::CreateKeyRequest request;
  request.set_parent(parts->parent);
  request.set_key_id(parts->key_id);
  request.set_description(args.description);
  request.mutable_labels()->insert(labels->begin(), labels->end());
  if (!args.rotation_period.empty()) {
    absl::StatusOr<absl::Duration> period = AsUsage(ParseDuration(args.rotation_period));
    if (!period.ok()) return period.status();
    *request.mutable_rotation_period() = ToProtoDuration(*period);
  }
  request.set_require_explicit_segments(args.require_explicit_segments);
  if (!args.segment_rotation_period.empty()) {
    absl::StatusOr<absl::Duration> period = AsUsage(ParseDuration(args.segment_rotation_period));
    if (!period.ok()) return period.status();
    *request.mutable_segment_rotation_period() = ToProtoDuration(*period);
  }
  if (!args.retire_unused.empty()) {
    absl::StatusOr<clavis::v1::VersionRetirement> retirement =
        ParseVersionRetirement(args.retire_unused);
    if (!retirement.ok()) return retirement.status();
    request.set_version_retirement(*retirement);
  }
  if (!args.policy_file.empty()) {
    if (!args.administrators.empty() || !args.users.empty()) {
      return UsageError("--policy-file excludes --admin and --user: the document says it all");
    }
    absl::StatusOr<std::string> policy = ReadInput(session, args.policy_file, "the policy");
    if (!policy.ok()) return policy.status();
    if (absl::StripAsciiWhitespace(*policy).empty()) {
      return UsageError("--policy-file: the policy document is empty");
    }
    request.set_policy(*std::move(policy));
  }
  for (const std::string& admin : args.administrators) request.add_key_administrators(admin);
  for (const std::string& user : args.users) request.add_key_users(user);
  if (args.approvals < 0 || args.approvals > kMaxApprovals) {
    return UsageError(absl::StrCat("--approvals must be 0..", kMaxApprovals));
  }
  request.set_approvals_required(static_cast<uint32_t>(args.approvals));
  if (args.origin == "external") {
    request.set_origin(clavis::v1::EXTERNAL);
  } else if (args.origin.empty() || args.origin == "generated") {
    request.set_origin(clavis::v1::GENERATED);
  } else {
    return UsageError("--origin must be generated or external");
  }
  absl::StatusOr<clavis::v1::Key> key =
      session.Call(session.admin(), &KeyAdmin::StubInterface::CreateKey, request);
  if (!key.ok()) return key.status();
  return PrintResource(session, *key);
}

absl::Status ListKeys(Session& session, const ListKeysArgs& args) {
  clavis::v1::ListKeysRequest request;
  request.set_parent(args.parent);
  request.set_page_size(args.page_size);
  request.set_page_token(args.page_token);
  // With --all the pages are accumulated into one response, so --json is
  // still one document of the same shape as a single page.
  clavis::v1::ListKeysResponse all;
  while (true) {
    absl::StatusOr<clavis::v1::ListKeysResponse> page =
        session.Call(session.admin(), &KeyAdmin::StubInterface::ListKeys, request);
    if (!page.ok()) return page.status();
    for (clavis::v1::Key& key : *page->mutable_keys()) *all.add_keys() = std::move(key);
    all.set_next_page_token(page->next_page_token());
    if (!args.all || page->next_page_token().empty()) break;
    // A server that hands back the token it was given would loop forever.
    if (page->next_page_token() == request.page_token()) {
      return absl::InternalError("the server returned the same page token twice");
    }
    request.set_page_token(page->next_page_token());
  }
  if (!session.json()) {
    if (all.keys().empty()) session.err() << "no keys in " << args.parent << "\n";
    if (!all.next_page_token().empty()) {
      session.err() << "more keys: rerun with --all, or with --page-token " << all.next_page_token()
                    << "\n";
    }
    if (all.keys().empty()) return absl::OkStatus();
  }
  return session.Print(all, FormatKeyList(all.keys()));
}

absl::StatusOr<clavis::v1::VersionRetirement> ParseVersionRetirement(const std::string& value) {
  if (value == "keep") return clavis::v1::KEEP_UNUSED_VERSIONS;
  if (value == "disable") return clavis::v1::DISABLE_UNUSED_VERSIONS;
  if (value == "destroy") return clavis::v1::DESTROY_UNUSED_VERSIONS;
  return UsageError("--retire-unused must be keep, disable or destroy");
}

absl::Status GetKey(Session& session, const GetKeyArgs& args) {
  clavis::v1::GetKeyRequest request;
  request.set_name(args.name);
  absl::StatusOr<clavis::v1::Key> key =
      session.Call(session.admin(), &KeyAdmin::StubInterface::GetKey, request);
  if (!key.ok()) return key.status();
  // --json prints the Key message alone (scripts get usage from key usage).
  if (session.json() || args.no_usage || key->versions().empty()) {
    return PrintResource(session, *key);
  }
  // The usage scan reads every segment of the key: worth it for a person
  // looking at one key, and skippable with --no-usage for very large keys.
  clavis::v1::KeyNameRequest usage_request;
  usage_request.set_name(args.name);
  absl::StatusOr<clavis::v1::KeyVersionUsage> usage =
      session.Call(session.admin(), &KeyAdmin::StubInterface::GetKeyVersionUsage, usage_request);
  if (!usage.ok()) {
    const absl::Status& why = usage.status();
    session.err() << "(segment-key counts unavailable: "
                  << (why.message().empty() ? absl::StatusCodeToString(why.code())
                                            : std::string(why.message()))
                  << ")\n";
    return PrintResource(session, *key);
  }
  return session.Print(*key, FormatKeyWithUsage(*key, *usage));
}

absl::Status KeyUsage(Session& session, const std::string& name) {
  clavis::v1::KeyNameRequest request;
  request.set_name(name);
  absl::StatusOr<clavis::v1::KeyVersionUsage> usage =
      session.Call(session.admin(), &KeyAdmin::StubInterface::GetKeyVersionUsage, request);
  if (!usage.ok()) return usage.status();
  std::vector<TableRow> rows = {{"VERSION", "STATE", "SEGMENTS", "SEGMENT KEY VERSIONS"}};
  for (const auto& v : usage->versions()) {
    rows.push_back({absl::StrCat(v.version(), v.primary() ? " (primary)" : ""),
                    FormatState(v.state()), absl::StrCat(v.segments()),
                    absl::StrCat(v.segment_key_versions())});
  }
  return session.Print(*usage, absl::StrCat(FormatTable(rows), FormatRewrapProgress(*usage),
                                            "\na version protecting none can be disabled and "
                                            "destroyed without losing data\n"));
}

absl::Status RotateKey(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::RotateKey, name);
}

absl::Status EnableKey(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::EnableKey, name);
}

absl::Status DisableKey(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::DisableKey, name);
}

absl::Status ScheduleKeyDestruction(Session& session, const ScheduleDestroyArgs& args) {
  return CallScheduleDestruction(session, &KeyAdmin::StubInterface::ScheduleKeyDestruction, args);
}

absl::Status CancelKeyDestruction(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::CancelKeyDestruction, name);
}

absl::Status DestroyKey(Session& session, const std::string& name) {
  return CallOnName(session, &KeyAdmin::StubInterface::DestroyKey, name);
}

absl::Status SetKeyRotation(Session& session, const SetRotationArgs& args) {
  if (args.period.empty() && args.next.empty() && args.segment_period.empty() &&
      args.retire_unused.empty()) {
    return UsageError(
        "give at least one of --period, --next, --segment-period and --retire-unused");
  }
  clavis::v1::UpdateKeySettingsRequest request;
  request.set_name(args.name);
  // Only the fields named in the mask change; description, labels and the
  // explicit-segments flag keep their values.
  if (!args.period.empty()) {
    absl::StatusOr<absl::Duration> period = AsUsage(ParseDuration(args.period));
    if (!period.ok()) return period.status();
    request.mutable_update_mask()->add_paths("rotation_period");
    *request.mutable_rotation_period() = ToProtoDuration(*period);
  }
  if (!args.segment_period.empty()) {
    absl::StatusOr<absl::Duration> period = AsUsage(ParseDuration(args.segment_period));
    if (!period.ok()) return period.status();
    request.mutable_update_mask()->add_paths("segment_rotation_period");
    *request.mutable_segment_rotation_period() = ToProtoDuration(*period);
  }
  if (!args.retire_unused.empty()) {
    absl::StatusOr<clavis::v1::VersionRetirement> retirement =
        ParseVersionRetirement(args.retire_unused);
    if (!retirement.ok()) return retirement.status();
    request.mutable_update_mask()->add_paths("version_retirement");
    request.set_version_retirement(*retirement);
  }
  if (!args.next.empty()) {
    absl::StatusOr<absl::Time> next = AsUsage(ParseTime(args.next));
    if (!next.ok()) return next.status();
    request.mutable_update_mask()->add_paths("next_rotation_time");
    *request.mutable_next_rotation_time() = ToProtoTimestamp(*next);
  }
  absl::StatusOr<clavis::v1::Key> key =
      session.Call(session.admin(), &KeyAdmin::StubInterface::UpdateKeySettings, request);
  if (!key.ok()) return key.status();
  return PrintResource(session, *key);
}

absl::Status RewrapSegments(Session& session, const RewrapArgs& args) {
  clavis::v1::RewrapSegmentsRequest request;
  request.set_name(args.name);
  request.set_batch_size(args.batch_size);
  request.set_page_token(args.page_token);
  clavis::v1::RewrapSegmentsResponse totals;
  for (int batch = 1;; ++batch) {
    absl::StatusOr<clavis::v1::RewrapSegmentsResponse> response =
        session.Call(session.admin(), &KeyAdmin::StubInterface::RewrapSegments, request);
    if (!response.ok()) {
      // Rewrapping is resumable; tell the admin where to pick up instead of
      // making them start over (which is correct too, only slower).
      if (!request.page_token().empty()) {
        session.err() << "rewrap: stopped at batch " << batch << "; resume with --page-token "
                      << request.page_token() << "\n";
      }
      return response.status();
    }
    totals.set_rewrapped(totals.rewrapped() + response->rewrapped());
    totals.set_already_current(totals.already_current() + response->already_current());
    totals.set_compromised_rewrapped(totals.compromised_rewrapped() +
                                     response->compromised_rewrapped());
    totals.set_segments_rotated(totals.segments_rotated() + response->segments_rotated());
    session.err() << "rewrap: batch " << batch << ": " << response->rewrapped() << " re-wrapped, "
                  << response->already_current() << " already current (total " << totals.rewrapped()
                  << " re-wrapped, " << totals.already_current() << " already current)\n";
    if (response->next_page_token().empty()) break;
    if (response->next_page_token() == request.page_token()) {
      return absl::InternalError("the server returned the same page token twice");
    }
    request.set_page_token(response->next_page_token());
  }
  return session.Print(totals, FormatRewrapSummary(totals));
}

void AddRetireUnusedOption(CLI::App* command, std::string* retire_unused) {
  command
      ->add_option("--retire-unused", *retire_unused,
                   "What clavis-rotator does with a version once no segment key is wrapped under "
                   "it (after a rotation and its re-wrap): keep (default), disable, or destroy "
                   "(disable, then schedule destruction with the default pending window)")
      ->type_name("keep|disable|destroy")
      ->check(CLI::IsMember({"keep", "disable", "destroy"}));
}

void RegisterKeyCommands(CommandRegistry& registry) {
  CLI::App* key = registry.AddNoun(
      registry.root(), "key", "Manage tenant master keys (KEKs)",
      {"clavisctl key create tenants/acme/keys/main", "clavisctl key get tenants/acme/keys/main"});

  {
    auto args = std::make_shared<CreateKeyArgs>();
    CLI::App* c = registry.AddCommand(
        *key, "create",
        "Create a master key (its first version is generated by clavisd) and its access policy: "
        "the default one from --admin/--user, or a whole document with --policy-file",
        {"clavisctl key create tenants/acme/keys/main --description 'orders KEK' "
         "--label env=prod --rotation-period 90d",
         "clavisctl key create tenants/acme/keys/byok --origin external",
         "clavisctl key create tenants/acme/keys/crm --admin tenants/acme/groups/key-admins "
         "--user tenants/acme/principals/billing-app --approvals 2",
         "clavisctl key create tenants/acme/keys/hr --policy-file hr-policy.json"},
        [args](Session& s) { return CreateKey(s, *args); });
    AddNameArg(c, &args->name, kKeyName, "Name of the new key");
    c->add_option("--description", args->description, "Free text shown by key get");
    c->add_option("--label", args->labels, "A label; repeat for more")
        ->type_name("KEY=VALUE")
        ->check(KeyValueCheck());
    c->add_option("--rotation-period", args->rotation_period,
                  "Rotate automatically this often (clavis-rotator); default: never")
        ->type_name("DURATION")
        ->check(DurationCheck());
    c->add_flag("--require-explicit-segments", args->require_explicit_segments,
                "Refuse data keys for segments not created with 'segment create' first");
    c->add_option("--segment-rotation-period", args->segment_rotation_period,
                  "Give each segment a new segment key this often (clavis-rotator); default: "
                  "never")
        ->type_name("DURATION")
        ->check(DurationCheck());
    AddRetireUnusedOption(c, &args->retire_unused);
    CLI::Option* admin =
        c->add_option("--admin", args->administrators,
                      "A key administrator (principal or group); repeat for more. Default: you")
            ->type_name("PRINCIPAL");
    CLI::Option* user =
        c->add_option("--user", args->users,
                      "A key user (principal or group; data plane); repeat for more")
            ->type_name("PRINCIPAL");
    c->add_option("--policy-file", args->policy_file,
                  "The whole key policy (JSON, docs/POLICY.md) instead of --admin/--user; "
                  "- reads stdin")
        ->type_name("FILE")
        ->excludes(admin)
        ->excludes(user);
    c->add_option("--approvals", args->approvals,
                  "M-of-N: distinct approvers needed for destructive and access-widening "
                  "changes (0 or 1: none)")
        ->type_name("M")
        ->check(CLI::Range(0, kMaxApprovals));
    c->add_option("--origin", args->origin,
                  "generated (default): clavisd makes the material; external (BYOK): the key "
                  "waits in PENDING_IMPORT for your material (key import-params, key import; "
                  "docs/BYOK.md)")
        ->type_name("ORIGIN")
        ->check(CLI::IsMember({"generated", "external"}));
  }
  {
    auto args = std::make_shared<ListKeysArgs>();
    CLI::App* c = registry.AddCommand(*key, "list", "List a tenant's keys, one row per key",
                                      {"clavisctl key list tenants/acme --all"},
                                      [args](Session& s) { return ListKeys(s, *args); });
    AddNameArg(c, &args->parent, "tenants/T", "The tenant");
    c->add_option("--page-size", args->page_size, "Keys per page (server default 100)")
        ->check(CountCheck());
    c->add_option("--page-token", args->page_token, "Continue a previous listing");
    c->add_flag("--all", args->all, "Follow page tokens and list every key");
  }

  auto add = [&](const NameCommand& command) {
    AddNameCommand(registry, *key, command, kKeyName, "The key");
  };
  {
    auto args = std::make_shared<GetKeyArgs>();
    CLI::App* c = registry.AddCommand(
        *key, "get",
        "Show a key and its versions (state, creation time, key check value, how many segment "
        "keys each still protects, re-wrap progress)",
        {"clavisctl key get tenants/acme/keys/main",
         "clavisctl key get tenants/acme/keys/main --json"},
        [args](Session& s) { return GetKey(s, *args); });
    AddNameArg(c, &args->name, kKeyName, "The key");
    c->add_flag("--no-usage", args->no_usage,
                "Skip the scan of the key's segments behind the SEGMENT KEYS column (for keys "
                "with millions of segments); --json never scans");
  }
  add({"usage",
       "Per version, how many segments and segment-key versions it still protects (scans the "
       "key's segments)",
       "clavisctl key usage tenants/acme/keys/main", &KeyUsage});
  add({"rotate", "Add a new version and make it primary; older enabled versions still decrypt",
       "clavisctl key rotate tenants/acme/keys/main", &RotateKey});
  add({"enable", "Enable a disabled key", "clavisctl key enable tenants/acme/keys/main",
       &EnableKey});
  add({"disable",
       "Disable a key: the BYOK kill switch, every segment under it refuses at once "
       "(reversible with enable)",
       "clavisctl key disable tenants/acme/keys/main", &DisableKey});
  {
    auto args = std::make_shared<ScheduleDestroyArgs>();
    CLI::App* c = registry.AddCommand(
        *key, "schedule-destroy",
        "Schedule destruction of a key after a pending window (cancel-destroy undoes it)",
        {"clavisctl key schedule-destroy tenants/acme/keys/main --pending-window 30d"},
        [args](Session& s) { return ScheduleKeyDestruction(s, *args); });
    AddNameArg(c, &args->name, kKeyName, "The key");
    AddPendingWindowOption(c, &args->pending_window);
  }
  add({"cancel-destroy", "Cancel a scheduled destruction (the key becomes DISABLED)",
       "clavisctl key cancel-destroy tenants/acme/keys/main", &CancelKeyDestruction});
  add({"destroy",
       "Destroy a key whose pending window has passed: its material and every segment key "
       "under it are purged (irreversible)",
       "clavisctl key destroy tenants/acme/keys/main", &DestroyKey});
  {
    auto args = std::make_shared<SetRotationArgs>();
    CLI::App* c = registry.AddCommand(
        *key, "set-rotation",
        "Set the automatic rotation schedule of the key (--period) and of its segment keys "
        "(--segment-period), and what happens to versions no segment key uses any more "
        "(--retire-unused); 0s turns a schedule off",
        {"clavisctl key set-rotation tenants/acme/keys/main --period 90d "
         "--next 2026-12-01T00:00:00Z",
         "clavisctl key set-rotation tenants/acme/keys/main --segment-period 30d "
         "--retire-unused destroy"},
        [args](Session& s) { return SetKeyRotation(s, *args); });
    AddNameArg(c, &args->name, kKeyName, "The key");
    c->add_option("--period", args->period, "Rotation period, e.g. 90d; 0s for none")
        ->type_name("DURATION")
        ->check(DurationCheck());
    c->add_option("--segment-period", args->segment_period,
                  "Rotation period of each segment key under the key, e.g. 30d; 0s for none")
        ->type_name("DURATION")
        ->check(DurationCheck());
    AddRetireUnusedOption(c, &args->retire_unused);
    c->add_option("--next", args->next, "Time of the next rotation (RFC 3339)")
        ->type_name("TIME")
        ->check(TimeCheck());
  }
  {
    auto args = std::make_shared<RewrapArgs>();
    CLI::App* c = registry.AddCommand(
        *key, "rewrap",
        "Re-wrap segment keys still on older master-key versions under the primary version "
        "(customer data is not re-encrypted); progress goes to stderr",
        {"clavisctl key rewrap tenants/acme/keys/main --batch-size 500"},
        [args](Session& s) { return RewrapSegments(s, *args); });
    AddNameArg(c, &args->name, kKeyName, "The key");
    c->add_option("--batch-size", args->batch_size, "Segments per RPC (server default 1000)")
        ->check(CountCheck());
    c->add_option("--page-token", args->page_token, "Resume an interrupted rewrap");
  }

  RegisterKeyVersionCommands(registry, *key);
  RegisterKeyImportCommands(registry, *key);
}

}  // namespace clavis::clavisctl
