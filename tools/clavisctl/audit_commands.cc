#include "tools/clavisctl/audit_commands.h"

#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "crypto/encoding.h"
#include "google/protobuf/struct.pb.h"
#include "kms/audit/audit_query.h"
#include "kms/audit/audit_verifier.h"
#include "tools/clavisctl/args.h"
#include "tools/clavisctl/cli_checks.h"
#include "tools/clavisctl/command_helpers.h"
#include "tools/clavisctl/input.h"
#include "tools/clavisctl/table.h"

namespace clavis::clavisctl {
namespace {

// The log's files are the caller's argument: a missing --dir is a usage
// error (2), like any unreadable input file, not NOT_FOUND (3, "no such
// key"). DataLoss (a record that cannot be parsed) stays as it is.
absl::Status LogReadError(const absl::Status& status, const std::string& dir) {
  if (status.code() != absl::StatusCode::kNotFound) return status;
  return AsUsageError(absl::Status(
      status.code(), absl::StrCat("--dir ", absl::CHexEscape(dir), ": ", status.message())));
}

absl::StatusOr<std::string> PublicKey(const AuditVerifyArgs& args) {
  std::string text = args.public_key;
  if (!args.public_key_file.empty()) {
    absl::StatusOr<std::string> content = AsUsage(ReadFile(args.public_key_file));
    if (!content.ok()) return content.status();
    text = *std::move(content);
  }
  auto key = crypto::Base64Decode(absl::StripAsciiWhitespace(text));
  if (!key.ok() || key->size() != 32) {
    return AsUsageError(absl::InvalidArgumentError(
        "the public key must be the base64 of 32 bytes (the content of "
        "<data_dir>/audit-signing.pub, or the value clavisd logs at start-up)"));
  }
  return *key;
}

absl::StatusOr<kms::AuditFilter> ToFilter(const AuditQueryArgs& args) {
  kms::AuditFilter filter;
  if (!args.principal.empty()) filter.principal = args.principal;
  if (!args.segment.empty()) filter.segment = args.segment;
  if (!args.action.empty()) filter.action = args.action;
  if (!args.since.empty()) {
    absl::StatusOr<absl::Time> t = ParseTime(args.since);
    if (!t.ok()) return AsUsageError(t.status());
    filter.from_time_us = absl::ToUnixMicros(*t);
  }
  if (!args.until.empty()) {
    absl::StatusOr<absl::Time> t = ParseTime(args.until);
    if (!t.ok()) return AsUsageError(t.status());
    filter.to_time_us = absl::ToUnixMicros(*t);
  }
  return filter;
}

// --key matches the key itself and everything under it (versions, segments).
bool MatchesKey(const AuditQueryArgs& args, const kms::AuditRecord& record) {
  if (args.key.empty()) return true;
  return record.resource == args.key || absl::StartsWith(record.resource, args.key + "/");
}

// Text fields come from the log, and some from callers (a claimed
// principal, an error message): TerminalSafe, as for server text.
std::string HumanLine(const kms::AuditRecord& r) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(r.time_us),
                                    absl::UTCTimeZone()),
                   " #", r.sequence, " ", kms::AuditRecordKindName(r.kind));
  if (r.kind == kms::AuditRecordKind::kCheckpoint) {
    return absl::StrCat(line, r.closing ? " (closing)" : "");
  }
  absl::StrAppend(&line, " ", r.principal.empty() ? "-" : TerminalSafe(r.principal), " ",
                  TerminalSafe(r.action), " ", r.resource.empty() ? "-" : TerminalSafe(r.resource));
  if (!r.segment.empty()) absl::StrAppend(&line, " segment=", TerminalSafe(r.segment));
  if (r.kind == kms::AuditRecordKind::kCall) {
    absl::StrAppend(&line, " ", absl::StatusCodeToString(r.result_code));
  }
  if (!r.message.empty() &&
      (r.kind == kms::AuditRecordKind::kAlert || r.result_code != absl::StatusCode::kOk)) {
    absl::StrAppend(&line, ": ", TerminalSafe(r.message));
  }
  if (!r.peer.empty()) absl::StrAppend(&line, " peer=", TerminalSafe(r.peer));
  if (!r.request_id.empty()) absl::StrAppend(&line, " request=", TerminalSafe(r.request_id));
  return line;
}

void PrintRecord(Session& session, const kms::AuditRecord& record, bool json) {
  session.out() << (json ? kms::AuditRecordToJson(record) : HumanLine(record)) << "\n";
}

absl::Status Visit(const AuditQueryArgs& args,
                   const std::function<bool(const kms::AuditRecord&)>& visit) {
  auto filter = ToFilter(args);
  if (!filter.ok()) return filter.status();
  int seen = 0;
  absl::Status s = kms::ForEachAuditRecord(args.dir, *filter, [&](const kms::AuditRecord& r) {
    if (!MatchesKey(args, r)) return true;
    if (args.alerts_only && r.kind != kms::AuditRecordKind::kAlert) return true;
    if (!visit(r)) return false;
    return args.limit <= 0 || ++seen < args.limit;
  });
  return LogReadError(s, args.dir);
}

void AddQueryOptions(CLI::App* c, AuditQueryArgs* args) {
  c->add_option("--dir", args->dir, "The audit log directory (<data_dir>/audit)")->required();
  c->add_option("--principal", args->principal, "Only calls by this principal");
  c->add_option("--key", args->key, "Only this key (and its versions and segments)");
  c->add_option("--segment", args->segment, "Only this segment label");
  c->add_option("--action", args->action, "Only this action (e.g. Decrypt, Rotate)");
  c->add_option("--since", args->since, "From this time (RFC 3339, inclusive)")
      ->type_name("TIME")
      ->check(TimeCheck());
  c->add_option("--until", args->until, "Up to this time (RFC 3339, exclusive)")
      ->type_name("TIME")
      ->check(TimeCheck());
  c->add_flag("--alerts", args->alerts_only, "Only alert records (suspicious behaviour)");
  c->add_option("--limit", args->limit, "At most this many records")->check(CountCheck());
}

}  // namespace

namespace {

// The report of one log as --json fields.
google::protobuf::Struct ReportFields(const kms::AuditVerifyReport& report) {
  // lowerCamelCase like every other --json answer. Counts fit a double's 53
  // bits for any real log.
  google::protobuf::Struct fields;
  auto& f = *fields.mutable_fields();
  f["ok"].set_bool_value(report.ok());
  f["tampered"].set_bool_value(report.tampered());
  f["cleanlyClosed"].set_bool_value(report.cleanly_closed);
  f["files"].set_number_value(static_cast<double>(report.files));
  f["records"].set_number_value(static_cast<double>(report.records));
  f["checkpoints"].set_number_value(static_cast<double>(report.checkpoints));
  f["lastSequence"].set_number_value(static_cast<double>(report.last_sequence));
  f["unverifiedTailRecords"].set_number_value(static_cast<double>(report.unverified_tail_records));
  f["problem"].set_string_value(kms::AuditProblemName(report.problem));
  f["file"].set_string_value(report.file);
  f["offset"].set_number_value(static_cast<double>(report.offset));
  f["sequence"].set_number_value(static_cast<double>(report.sequence));
  f["detail"].set_string_value(report.detail);
  return fields;
}

// The command's status for one log's report (exit 0, 4 or 5).
absl::Status ReportStatus(const kms::AuditVerifyReport& report, const std::string& prefix) {
  if (report.ok()) return absl::OkStatus();
  if (report.tampered()) {
    return absl::DataLossError(
        absl::StrCat(prefix, "the audit log was changed or damaged: ", report.ToString()));
  }
  return absl::FailedPreconditionError(absl::StrCat(
      prefix,
      "the audit log does not end with a closing checkpoint (clavisd still running, or it "
      "crashed or the tail was cut): ",
      report.ToString()));
}

}  // namespace

absl::Status VerifyAudit(Session& session, const AuditVerifyArgs& args) {
  if (args.public_key.empty() == args.public_key_file.empty()) {
    return AsUsageError(
        absl::InvalidArgumentError("give exactly one of --public-key and --public-key-file"));
  }
  if (args.dirs.empty()) return AsUsageError(absl::InvalidArgumentError("give --dir"));
  auto key = PublicKey(args);
  if (!key.ok()) return key.status();
  if (args.dirs.size() == 1) {
    auto report = kms::VerifyAuditLog(args.dirs[0], *key);
    if (!report.ok()) return LogReadError(report.status(), args.dirs[0]);
    if (absl::Status s =
            session.Print(ReportFields(*report), TerminalSafe(report->ToString()) + "\n");
        !s.ok()) {
      return s;
    }
    return ReportStatus(*report, "");
  }
  // Several logs (one chain per replica): each is verified on its own; the
  // result is the worst of them (tampering before an open tail).
  google::protobuf::Struct all;
  auto* logs = (*all.mutable_fields())["logs"].mutable_list_value();
  std::string text;
  absl::Status worst = absl::OkStatus();
  bool all_ok = true;
  for (const std::string& dir : args.dirs) {
    auto report = kms::VerifyAuditLog(dir, *key);
    if (!report.ok()) return LogReadError(report.status(), dir);
    google::protobuf::Struct fields = ReportFields(*report);
    (*fields.mutable_fields())["dir"].set_string_value(dir);
    *logs->add_values()->mutable_struct_value() = std::move(fields);
    absl::StrAppend(&text, TerminalSafe(dir), ": ", TerminalSafe(report->ToString()), "\n");
    all_ok = all_ok && report->ok();
    absl::Status s = ReportStatus(*report, absl::StrCat(dir, ": "));
    if (!s.ok() && (worst.ok() || (absl::IsFailedPrecondition(worst) && absl::IsDataLoss(s)))) {
      worst = s;
    }
  }
  (*all.mutable_fields())["ok"].set_bool_value(all_ok);
  if (absl::Status s = session.Print(all, text); !s.ok()) return s;
  return worst;
}

absl::Status QueryAudit(Session& session, const AuditQueryArgs& args) {
  int printed = 0;
  absl::Status s = Visit(args, [&](const kms::AuditRecord& r) {
    PrintRecord(session, r, session.json());
    ++printed;
    return true;
  });
  if (!s.ok()) return s;
  if (printed == 0 && !session.json()) session.err() << "no matching records\n";
  return absl::OkStatus();
}

absl::Status TailAudit(Session& session, const std::string& dir, int count) {
  std::deque<kms::AuditRecord> last;
  kms::AuditFilter all;
  absl::Status s = kms::ForEachAuditRecord(dir, all, [&](const kms::AuditRecord& r) {
    last.push_back(r);
    if (static_cast<int>(last.size()) > count) last.pop_front();
    return true;
  });
  if (!s.ok()) return LogReadError(s, dir);
  for (const auto& r : last) PrintRecord(session, r, session.json());
  return absl::OkStatus();
}

absl::Status ExportAudit(Session& session, const AuditQueryArgs& args) {
  return Visit(args, [&](const kms::AuditRecord& r) {
    PrintRecord(session, r, /*json=*/true);
    return true;
  });
}

void RegisterAuditCommands(CommandRegistry& registry) {
  CLI::App* audit = registry.AddNoun(
      registry.root(), "audit",
      "Read and verify clavisd's tamper-evident audit log (reads the files; no RPC)",
      {"clavisctl audit verify --dir /var/lib/clavis/audit --public-key-file "
       "/var/lib/clavis/audit-signing.pub",
       "clavisctl audit query --dir /var/lib/clavis/audit --principal "
       "tenants/acme/principals/app --action Decrypt --since 2026-11-01T00:00:00Z"},
      /*local=*/true);
  {
    auto args = std::make_shared<AuditVerifyArgs>();
    CLI::App* c = registry.AddLocalCommand(
        *audit, "verify",
        "Check the hash chain and signed checkpoints; name the first changed, deleted, "
        "inserted or reordered record, or a cut tail",
        {"clavisctl audit verify --dir data/audit --public-key-file data/audit-signing.pub",
         "clavisctl audit verify --dir replica-a/audit --dir replica-b/audit --public-key-file "
         "replica-a/audit-signing.pub"},
        [args](Session& s) { return VerifyAudit(s, *args); });
    c->add_option("--dir", args->dirs,
                  "The audit log directory (<data_dir>/audit); repeat it for the logs of "
                  "several replicas (one chain each, same signing key)")
        ->required();
    c->add_option("--public-key", args->public_key,
                  "The signing public key (base64), pinned from clavisd's start-up log");
    c->add_option("--public-key-file", args->public_key_file,
                  "A file holding it (e.g. <data_dir>/audit-signing.pub)");
  }
  {
    auto dir = std::make_shared<std::string>();
    auto count = std::make_shared<int>(20);
    CLI::App* c = registry.AddLocalCommand(
        *audit, "tail", "Show the last records", {"clavisctl audit tail --dir data/audit -n 50"},
        [dir, count](Session& s) { return TailAudit(s, *dir, *count); });
    c->add_option("--dir", *dir, "The audit log directory (<data_dir>/audit)")->required();
    c->add_option("-n,--lines", *count, "How many records (default 20)")->check(CountCheck());
  }
  {
    auto args = std::make_shared<AuditQueryArgs>();
    CLI::App* c = registry.AddLocalCommand(
        *audit, "query", "Records matching every given filter, oldest first",
        {"clavisctl audit query --dir data/audit --key tenants/acme/keys/crm --action Decrypt"},
        [args](Session& s) { return QueryAudit(s, *args); });
    AddQueryOptions(c, args.get());
  }
  {
    auto args = std::make_shared<AuditQueryArgs>();
    CLI::App* c = registry.AddLocalCommand(
        *audit, "export", "Matching records as JSON Lines (one object per line)",
        {"clavisctl audit export --dir data/audit --since 2026-11-01T00:00:00Z > audit.jsonl"},
        [args](Session& s) { return ExportAudit(s, *args); });
    AddQueryOptions(c, args.get());
  }
}

}  // namespace clavis::clavisctl
