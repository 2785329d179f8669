#include "tools/clavisctl/pki_commands.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "tools/clavisctl/exit_codes.h"
#include "tools/clavisctl/json_output.h"

namespace clavis::clavisctl {
namespace {

// The CLI's bound on --validity-days (pki allows up to 100 years).
constexpr int kMaxValidityDays = 36500;

std::string Rfc3339Utc(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

void SetString(google::protobuf::Struct* fields, const std::string& name,
               const std::string& value) {
  (*fields->mutable_fields())[name].set_string_value(value);
}

void SetList(google::protobuf::Struct* fields, const std::string& name,
             const std::vector<std::string>& values) {
  google::protobuf::ListValue* list = (*fields->mutable_fields())[name].mutable_list_value();
  for (const std::string& value : values) list->add_values()->set_string_value(value);
}

// "pki/" and "pki" both name the directory; paths printed as "pki/ca.crt".
std::string CaPrefix(const std::string& dir) {
  absl::string_view trimmed = dir;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.remove_suffix(1);
  return absl::StrCat(trimmed, trimmed == "/" ? "" : "/", "ca");
}

absl::Status CheckPath(const std::string& path, absl::string_view option) {
  if (path.empty()) return UsageError(absl::StrCat(option, " is empty"));
  return absl::OkStatus();
}

absl::Status CheckValidityDays(int days) {
  if (days < 1 || days > kMaxValidityDays) {
    return UsageError(absl::StrCat("--validity-days must be 1-", kMaxValidityDays));
  }
  return absl::OkStatus();
}

absl::StatusOr<pki::KeyAndCertificate> ReadCa(const std::string& dir) {
  if (absl::Status s = CheckPath(dir, "--ca"); !s.ok()) return s;
  absl::StatusOr<pki::KeyAndCertificate> ca = pki::ReadKeyAndCertificate(CaPrefix(dir));
  if (!ca.ok()) {
    return LocalCommandError(
        absl::Status(ca.status().code(),
                     absl::StrCat("--ca ", absl::CHexEscape(dir), ": ", ca.status().message(),
                                  " (a directory made by clavisctl pki init-ca)")));
  }
  return ca;
}

// Writes `pair` to <prefix>.crt/.key and prints what was written.
absl::Status WriteAndPrint(Session& session, const pki::KeyAndCertificate& pair,
                           const std::string& prefix, bool force) {
  if (absl::Status s = pki::WriteKeyAndCertificate(pair, prefix, force); !s.ok()) {
    return LocalCommandError(s);
  }
  absl::StatusOr<pki::CertificateInfo> info = pki::DescribeCertificate(pair.certificate_pem);
  if (!info.ok()) return info.status();
  const std::string certificate_file = absl::StrCat(prefix, ".crt");
  const std::string key_file = absl::StrCat(prefix, ".key");

  google::protobuf::Struct fields;
  SetString(&fields, "certificateFile", certificate_file);
  SetString(&fields, "privateKeyFile", key_file);
  SetString(&fields, "subject", info->subject);
  SetString(&fields, "issuer", info->issuer);
  SetString(&fields, "serial", info->serial_hex);
  SetString(&fields, "notBefore", Rfc3339Utc(info->not_before));
  SetString(&fields, "notAfter", Rfc3339Utc(info->not_after));
  (*fields.mutable_fields())["isCa"].set_bool_value(info->is_ca);
  SetList(&fields, "dnsNames", info->dns_names);
  SetList(&fields, "ipAddresses", info->ip_addresses);
  SetList(&fields, "uris", info->uris);

  std::vector<TableRow> rows = {
      {"certificate", certificate_file},
      {"private key", absl::StrCat(key_file, " (mode 0600, keep it secret)")},
      {"subject", info->subject},
      {"issuer", info->issuer},
      {"serial", info->serial_hex},
      {"valid", absl::StrCat(Rfc3339Utc(info->not_before), " to ", Rfc3339Utc(info->not_after))},
  };
  if (!info->dns_names.empty()) rows.push_back({"dns names", absl::StrJoin(info->dns_names, " ")});
  if (!info->ip_addresses.empty()) {
    rows.push_back({"ip addresses", absl::StrJoin(info->ip_addresses, " ")});
  }
  for (const std::string& uri : info->uris) rows.push_back({"uri", uri});
  return PrintLocalResult(session, fields, rows);
}

}  // namespace

absl::Status LocalCommandError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
      return AsUsageError(status);
    case absl::StatusCode::kAlreadyExists:
      return absl::AlreadyExistsError(
          absl::StrCat(status.message(), "; use --force to overwrite it"));
    default:
      return status;
  }
}

absl::Status PrintLocalResult(Session& session, const google::protobuf::Struct& fields,
                              const std::vector<TableRow>& rows) {
  return session.Print(fields, FormatTable(rows));
}

absl::Status InitCa(Session& session, const InitCaArgs& args) {
  if (absl::Status s = CheckPath(args.out_dir, "--out"); !s.ok()) return s;
  if (absl::Status s = CheckValidityDays(args.validity_days); !s.ok()) return s;
  pki::CaOptions options;
  options.common_name = args.common_name;
  options.validity = absl::Hours(24) * args.validity_days;
  absl::StatusOr<pki::KeyAndCertificate> ca = pki::CreateCertificateAuthority(options);
  if (!ca.ok()) return LocalCommandError(ca.status());

  // The directory holds the CA key: private to its owner when made here.
  if (mkdir(args.out_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    const int err = errno;
    return UsageError(absl::StrCat("cannot create directory ", absl::CHexEscape(args.out_dir), ": ",
                                   std::strerror(err)));
  }
  const std::string prefix = CaPrefix(args.out_dir);
  if (absl::Status s = WriteAndPrint(session, *ca, prefix, args.force); !s.ok()) return s;
  if (!session.json()) {
    session.err() << "clavisctl: whoever holds " << prefix
                  << ".key can issue certificates that clavisd accepts: keep it offline; give "
                  << prefix << ".crt to clavisd (--client_ca_file) and to clients (--ca-cert)\n";
  }
  return absl::OkStatus();
}

absl::Status IssueServer(Session& session, const IssueServerArgs& args) {
  if (absl::Status s = CheckPath(args.out, "--out"); !s.ok()) return s;
  if (absl::Status s = CheckValidityDays(args.validity_days); !s.ok()) return s;
  absl::StatusOr<pki::KeyAndCertificate> ca = ReadCa(args.ca_dir);
  if (!ca.ok()) return ca.status();
  pki::ServerCertOptions options;
  options.common_name = args.common_name;
  if (!args.dns_names.empty() || !args.ip_addresses.empty()) {
    options.dns_names = args.dns_names;
    options.ip_addresses = args.ip_addresses;
  }
  options.validity = absl::Hours(24) * args.validity_days;
  absl::StatusOr<pki::KeyAndCertificate> server = pki::IssueServerCertificate(*ca, options);
  if (!server.ok()) return LocalCommandError(server.status());
  return WriteAndPrint(session, *server, args.out, args.force);
}

absl::Status IssueClient(Session& session, const IssueClientArgs& args) {
  if (absl::Status s = CheckPath(args.out, "--out"); !s.ok()) return s;
  if (absl::Status s = CheckValidityDays(args.validity_days); !s.ok()) return s;
  absl::StatusOr<pki::KeyAndCertificate> ca = ReadCa(args.ca_dir);
  if (!ca.ok()) return ca.status();
  pki::ClientCertOptions options;
  options.principal = args.principal;
  options.groups = args.groups;
  options.validity = absl::Hours(24) * args.validity_days;
  absl::StatusOr<pki::KeyAndCertificate> client = pki::IssueClientCertificate(*ca, options);
  if (!client.ok()) return LocalCommandError(client.status());
  return WriteAndPrint(session, *client, args.out, args.force);
}

void RegisterPkiCommands(CommandRegistry& registry) {
  CLI::App* pki = registry.AddNoun(
      registry.root(), "pki",
      "A small certificate authority for TLS and mTLS (local; no server needed)",
      {"clavisctl pki init-ca --out pki",
       "clavisctl pki issue-server --ca pki --dns kms.internal --ip 10.0.0.5 --out pki/server",
       "clavisctl pki issue-client --ca pki --principal tenants/acme/principals/admin "
       "--out pki/admin",
       "clavisctl certs bootstrap --out pki"},
      /*local=*/true);
  // The names the issue tracker uses ("certs: bootstrap CA, issue"); help
  // lists them beside the originals ("pki, certs").
  pki->alias("certs");
  const auto add_force = [](CLI::App* c, bool* force) {
    c->add_flag("--force", *force, "Overwrite existing files");
  };
  const auto add_validity = [](CLI::App* c, int* days) {
    c->add_option("--validity-days", *days, "How long the certificate is valid, in days")
        ->type_name("N")
        ->check(CLI::Range(1, kMaxValidityDays))
        ->capture_default_str();
  };
  {
    auto args = std::make_shared<InitCaArgs>();
    CLI::App* c = registry.AddLocalCommand(
        *pki, "init-ca",
        "Create a CA: DIR/ca.crt (give it to clavisd and clients) and DIR/ca.key (mode 0600)",
        {"clavisctl pki init-ca --out pki --common-name 'Acme Clavis CA'",
         "clavisctl certs bootstrap --out pki"},
        [args](Session& s) { return InitCa(s, *args); });
    c->alias("bootstrap");
    c->add_option("--out", args->out_dir, "Directory for ca.crt and ca.key (created if missing)")
        ->type_name("DIR")
        ->required();
    c->add_option("--common-name", args->common_name, "Subject common name of the CA")
        ->type_name("CN")
        ->capture_default_str();
    add_validity(c, &args->validity_days);
    add_force(c, &args->force);
  }
  {
    auto args = std::make_shared<IssueServerArgs>();
    CLI::App* c = registry.AddLocalCommand(
        *pki, "issue-server",
        "Issue a TLS server certificate for clavisd: PREFIX.crt and PREFIX.key (mode 0600)",
        {"clavisctl pki issue-server --ca pki --dns kms.internal --ip 10.0.0.5 --out pki/server"},
        [args](Session& s) { return IssueServer(s, *args); });
    c->add_option("--ca", args->ca_dir, "The CA directory (from pki init-ca)")
        ->type_name("DIR")
        ->required();
    c->add_option("--out", args->out, "Writes PREFIX.crt and PREFIX.key")
        ->type_name("PREFIX")
        ->required();
    c->add_option("--dns", args->dns_names,
                  "A DNS name clients use to reach clavisd; repeat for more (default, when "
                  "neither --dns nor --ip is given: localhost, 127.0.0.1 and ::1)")
        ->type_name("NAME");
    c->add_option("--ip", args->ip_addresses, "An IP address of clavisd; repeat for more")
        ->type_name("ADDR");
    c->add_option("--common-name", args->common_name, "Subject common name")
        ->type_name("CN")
        ->capture_default_str();
    add_validity(c, &args->validity_days);
    add_force(c, &args->force);
  }
  {
    auto args = std::make_shared<IssueClientArgs>();
    CLI::App* c = registry.AddLocalCommand(
        *pki, "issue-client",
        "Issue a client certificate naming a principal (and groups) for mTLS: PREFIX.crt and "
        "PREFIX.key (mode 0600)",
        {"clavisctl pki issue-client --ca pki --principal tenants/acme/principals/billing-app "
         "--group tenants/acme/groups/billing --out pki/billing-app"},
        [args](Session& s) { return IssueClient(s, *args); });
    c->add_option("--ca", args->ca_dir, "The CA directory (from pki init-ca)")
        ->type_name("DIR")
        ->required();
    c->add_option("--principal", args->principal, "The principal the certificate proves")
        ->type_name("tenants/T/principals/ID")
        ->required();
    c->add_option("--group", args->groups, "A group of the principal, same tenant; repeat for more")
        ->type_name("tenants/T/groups/G");
    c->add_option("--out", args->out, "Writes PREFIX.crt and PREFIX.key")
        ->type_name("PREFIX")
        ->required();
    add_validity(c, &args->validity_days);
    add_force(c, &args->force);
  }
}

}  // namespace clavis::clavisctl
