// clavis-customer-records: a small customer database on the Clavis SDK.
//
// Customers live in a SQLite file (customer_store.h). Name and country are
// stored in the clear; email, phone and card number are encrypted in a JSON
// document with keys from clavisd, and the email also gets a blind index tag
// so customers can be found by email without decrypting anything
// (customer_crypto.h). Run with --help, or see README.md beside this file
// for a whole session: insert, find, key rotation and revocation.
#include <cstdint>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "client/examples/customer_records/customer_crypto.h"
#include "client/examples/customer_records/customer_store.h"
#include "nlohmann/json.hpp"

namespace customer_records {
namespace {

using Json = nlohmann::ordered_json;

constexpr char kProgram[] = "clavis-customer-records";

constexpr char kFooter[] =
    "Examples:\n"
    "  export CLAVIS_ENDPOINT=localhost:7370 CLAVIS_CA_CERT=pki/ca.crt \\\n"
    "         CLAVIS_CLIENT_CERT=pki/crm-app.crt CLAVIS_CLIENT_KEY=pki/crm-app.key\n"
    "  clavis-customer-records --db customers.db init\n"
    "  clavis-customer-records --db customers.db --clavis-key tenants/acme/keys/crm \\\n"
    "      insert --name 'Ada Lovelace' --email ada@example.com --phone '+44 20 7946 0000' \\\n"
    "      --card 4111111111111111 --country GB\n"
    "  clavis-customer-records --db customers.db --clavis-key tenants/acme/keys/crm "
    "find --email ' ADA@example.com'\n"
    "\n"
    "The application's principal (its client certificate) needs GenerateDataKey,\n"
    "Decrypt, DeriveBlindIndexKey and WatchKeyEvents on the key: make it a key user\n"
    "(clavisctl key create ... --user <principal>).\n"
    "\n"
    "Exit codes:\n"
    "  0 ok                      5 invalid argument (e.g. a stored field that does\n"
    "  1 other error               not decrypt: changed or moved to another row)\n"
    "  2 usage error             6 permission denied / unauthenticated\n"
    "  3 no such customer        7 clavisd unavailable / deadline exceeded\n"
    "  4 the key is disabled,    8 a customer with that email exists\n"
    "    revoked or being destroyed\n"
    "\n"
    "See client/examples/customer_records/README.md.";

constexpr char kReencryptHelp[] =
    "Re-encrypts every customer's fields with fresh data keys of the current\n"
    "segment-key version of --segment (and recomputes the email tags there).\n"
    "\n"
    "What rotation means for existing rows:\n"
    "  - clavisctl key rotate adds a master-key version; clavisctl key rewrap\n"
    "    re-wraps the segment keys under it. Rows are not touched and stay\n"
    "    readable: nothing to re-encrypt.\n"
    "  - clavisctl segment rotate adds a segment-key version: new rows get data\n"
    "    keys of it, and old rows remain readable through the older version.\n"
    "Re-encrypting is optional hygiene: afterwards every row uses a data key of\n"
    "the current segment-key version, so older versions protect none of this\n"
    "database's rows. Email tags do not change with rotation.\n"
    "\n"
    "All rows or none: if any row fails (e.g. the key is disabled), nothing changes.\n"
    "\n"
    "Example:\n"
    "  clavisctl segment rotate tenants/acme/keys/crm/segments/acme/customers\n"
    "  clavis-customer-records --clavis-key tenants/acme/keys/crm reencrypt";

struct Flags {
  std::string endpoint = "127.0.0.1:7370";
  std::string ca_cert;
  std::string cert;
  std::string key;
  std::string db = "customers.db";
  std::string clavis_key;
  std::string segment;  // default: <tenant>/customers
};

struct NewCustomer {
  std::string name;
  std::string email;
  std::string phone;
  std::string card;
  std::string country;
};

// ---- Errors ----

// What a user can do about the codes that come from keys and connections.
std::string Reason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kFailedPrecondition:
      return "the key is disabled or revoked; its owner has withdrawn access, and customer data "
             "stays unreadable until the key is enabled again";
    case absl::StatusCode::kPermissionDenied:
      return "the key's policy does not let this application use the key; it needs "
             "GenerateDataKey, Decrypt, DeriveBlindIndexKey and WatchKeyEvents";
    case absl::StatusCode::kUnauthenticated:
      return "clavisd did not accept this application's credentials (--cert, --key)";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return "clavisd did not answer; is it running at --endpoint? (a failed TLS handshake "
             "looks the same: check --ca-cert)";
    default:
      return "";
  }
}

// A failure of `what` ("cannot read customer 3"), for people: the reason in
// plain words when there is one, then the status itself. Keeps the code.
absl::Status Failure(absl::string_view what, const absl::Status& status) {
  const std::string reason = Reason(status.code());
  return absl::Status(status.code(), absl::StrCat(what, reason.empty() ? "" : ": ", reason, " (",
                                                  status.ToString(), ")"));
}

int ExitCode(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kNotFound:
      return 3;
    case absl::StatusCode::kFailedPrecondition:
      return 4;
    case absl::StatusCode::kInvalidArgument:
      return 5;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return 6;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 7;
    case absl::StatusCode::kAlreadyExists:
      return 8;
    default:
      return 1;
  }
}

// ---- Documents ----

// The document whose fields /email, /phone and /card/number are encrypted.
// InvalidArgument for text that is not UTF-8 (JSON cannot hold it).
absl::StatusOr<std::string> CustomerDocument(const NewCustomer& c) {
  Json doc = {{"email", std::string(absl::StripAsciiWhitespace(c.email))},
              {"phone", c.phone},
              {"card", {{"number", c.card}}}};
  try {
    // Name and country are stored as columns; checked here for UTF-8 too.
    (void)Json::array({c.name, c.country}).dump();
    return doc.dump();
  } catch (const Json::type_error&) {
    return absl::InvalidArgumentError("every option's value must be UTF-8 text");
  }
}

// One line of JSON: the clear columns, then the decrypted fields. Stored
// text is escaped by the JSON encoding, so it cannot drive the terminal.
absl::Status PrintCustomer(const CustomerCrypto& crypto, const CustomerRow& row,
                           std::ostream& out) {
  absl::StatusOr<std::string> plain = crypto.OpenDocument(row.id, row.doc);
  if (!plain.ok()) return Failure(absl::StrCat("cannot read customer ", row.id), plain.status());
  Json doc = Json::parse(*plain, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::DataLossError(absl::StrCat("customer ", row.id, ": the document is not JSON"));
  }
  Json line = {{"id", row.id}, {"name", row.name}, {"country", row.country}};
  for (auto& [field, value] : doc.items()) line[field] = value;
  out << line.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

// ---- Commands ----

absl::StatusOr<std::unique_ptr<CustomerStore>> OpenStore(const Flags& flags,
                                                         CustomerStore::Mode mode) {
  absl::StatusOr<std::unique_ptr<CustomerStore>> store = CustomerStore::Open(flags.db, mode);
  if (!store.ok()) return Failure(absl::StrCat("cannot open ", flags.db), store.status());
  return store;
}

// Commands connect only once they know a call to clavisd follows. Besides
// sparing a TLS handshake, this keeps clear of a gRPC exit race: the
// CacheInvalidator starts its event stream, and so the endpoint's name
// resolution, at once, and a process that exits while that resolution is
// still under way can crash in gRPC's resolver thread (seen with
// GRPC_DNS_RESOLVER=native). A finished call means resolution is done.
absl::StatusOr<std::unique_ptr<CustomerCrypto>> ConnectClavis(const Flags& flags) {
  ClavisSettings settings{flags.endpoint, flags.ca_cert,    flags.cert,
                          flags.key,      flags.clavis_key, flags.segment};
  absl::StatusOr<std::unique_ptr<CustomerCrypto>> crypto = CustomerCrypto::Connect(settings);
  if (!crypto.ok()) return Failure("cannot connect to clavisd", crypto.status());
  return crypto;
}

absl::Status Init(const Flags& flags, std::ostream& out) {
  auto store = OpenStore(flags, CustomerStore::Mode::kCreate);
  if (!store.ok()) return store.status();
  if (absl::Status s = (*store)->CreateSchema(); !s.ok()) {
    return Failure("cannot create the customers table", s);
  }
  out << "customers table ready in " << flags.db << "\n";
  return absl::OkStatus();
}

absl::Status Insert(const Flags& flags, const NewCustomer& customer, std::ostream& out) {
  absl::StatusOr<std::string> doc = CustomerDocument(customer);
  if (!doc.ok()) return doc.status();
  auto store = OpenStore(flags, CustomerStore::Mode::kExisting);
  if (!store.ok()) return store.status();
  auto crypto = ConnectClavis(flags);
  if (!crypto.ok()) return crypto.status();

  absl::StatusOr<std::string> tag = (*crypto)->EmailTag(customer.email);
  if (!tag.ok()) return Failure("cannot index the email", tag.status());
  absl::StatusOr<int64_t> id =
      (*store)->Insert(customer.name, customer.country, *tag,
                       [&](int64_t new_id) { return (*crypto)->SealDocument(new_id, *doc); });
  if (!id.ok()) return Failure("cannot add the customer", id.status());
  out << *id << "\n";
  return absl::OkStatus();
}

absl::Status Find(const Flags& flags, const std::string& email, std::ostream& out) {
  auto store = OpenStore(flags, CustomerStore::Mode::kExisting);
  if (!store.ok()) return store.status();
  auto crypto = ConnectClavis(flags);
  if (!crypto.ok()) return crypto.status();

  absl::StatusOr<std::string> tag = (*crypto)->EmailTag(email);
  if (!tag.ok()) return Failure("cannot search by email", tag.status());
  absl::StatusOr<CustomerRow> row = (*store)->FindByEmailIndex(*tag);
  if (absl::IsNotFound(row.status())) return row.status();  // "no customer with that email"
  if (!row.ok()) return Failure("cannot search the database", row.status());
  return PrintCustomer(**crypto, *row, out);
}

absl::Status Show(const Flags& flags, int64_t id, std::ostream& out) {
  auto store = OpenStore(flags, CustomerStore::Mode::kExisting);
  if (!store.ok()) return store.status();
  absl::StatusOr<CustomerRow> row = (*store)->Get(id);
  if (absl::IsNotFound(row.status())) return row.status();  // "no customer 7"
  if (!row.ok()) return Failure("cannot read the database", row.status());

  auto crypto = ConnectClavis(flags);
  if (!crypto.ok()) return crypto.status();
  return PrintCustomer(**crypto, *row, out);
}

absl::Status List(const Flags& flags, std::ostream& out, std::ostream& err) {
  auto store = OpenStore(flags, CustomerStore::Mode::kExisting);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::vector<CustomerRow>> rows = (*store)->List();
  if (!rows.ok()) return Failure("cannot read the database", rows.status());
  if (rows->empty()) {
    err << "no customers in " << flags.db << "\n";
    return absl::OkStatus();
  }

  auto crypto = ConnectClavis(flags);
  if (!crypto.ok()) return crypto.status();
  // One DecryptFields per row; rows share data keys through the cache, so
  // this costs few round trips.
  for (const CustomerRow& row : *rows) {
    if (absl::Status s = PrintCustomer(**crypto, row, out); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Reencrypt(const Flags& flags, std::ostream& out) {
  auto store = OpenStore(flags, CustomerStore::Mode::kExisting);
  if (!store.ok()) return store.status();

  std::unique_ptr<CustomerCrypto> crypto;  // connected at the first row
  absl::Status row_failure;                // already explained; reported as is
  absl::StatusOr<size_t> count = (*store)->RewriteAll([&](CustomerRow& row) -> absl::Status {
    if (crypto == nullptr) {
      absl::StatusOr<std::unique_ptr<CustomerCrypto>> connected = ConnectClavis(flags);
      if (!connected.ok()) return row_failure = connected.status();
      crypto = *std::move(connected);
    }
    const std::string what = absl::StrCat("cannot re-encrypt customer ", row.id);
    absl::StatusOr<std::string> plain = crypto->OpenDocument(row.id, row.doc);
    if (!plain.ok()) {
      return row_failure = Failure(absl::StrCat("cannot read customer ", row.id), plain.status());
    }
    std::string email;
    try {
      email = Json::parse(*plain).at("email").get<std::string>();
    } catch (const Json::exception&) {
      return row_failure = absl::DataLossError(absl::StrCat(what, ": the document has no email"));
    }
    absl::StatusOr<std::string> tag = crypto->EmailTag(email);
    if (!tag.ok()) return row_failure = Failure(what, tag.status());
    absl::StatusOr<std::string> sealed = crypto->SealDocument(row.id, *plain);
    if (!sealed.ok()) return row_failure = Failure(what, sealed.status());
    row.doc = *std::move(sealed);
    row.email_index = *std::move(tag);
    return absl::OkStatus();
  });
  if (!row_failure.ok()) return row_failure;
  if (!count.ok()) return Failure("cannot update the database", count.status());
  out << "re-encrypted " << *count << " customers with data keys of the current segment key of "
      << flags.segment << "\n";
  return absl::OkStatus();
}

// ---- Command line ----

// Fills in the default segment; InvalidArgument for a missing or malformed
// --clavis-key (every command but init needs it).
absl::Status CheckClavisFlags(Flags& flags) {
  if (flags.clavis_key.empty()) {
    return absl::InvalidArgumentError("--clavis-key is required (tenants/{t}/keys/{k})");
  }
  absl::StatusOr<std::string> tenant = TenantOfKey(flags.clavis_key);
  if (!tenant.ok()) return tenant.status();
  if (flags.segment.empty()) {
    flags.segment = absl::StrCat(absl::StripPrefix(*tenant, "tenants/"), "/customers");
  }
  if (flags.segment.size() > 256) {
    return absl::InvalidArgumentError("--segment is longer than 256 bytes");
  }
  if (flags.cert.empty() != flags.key.empty()) {
    return absl::InvalidArgumentError("--cert and --key go together");
  }
  if (!flags.cert.empty() && flags.ca_cert.empty()) {
    return absl::InvalidArgumentError("--cert and --key need --ca-cert");
  }
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  CLI::App app{
      "A customer database in SQLite whose email, phone and card number are encrypted with "
      "keys from Clavis, with a blind index to find customers by email.",
      kProgram};
  app.require_subcommand(1);
  app.fallthrough();  // the options below may also follow the command
  app.footer(kFooter);

  Flags flags;
  app.add_option("--endpoint", flags.endpoint, "clavisd's host:port")
      ->envname("CLAVIS_ENDPOINT")
      ->capture_default_str();
  app.add_option("--ca-cert", flags.ca_cert, "CA certificate of clavisd (PEM): use TLS")
      ->envname("CLAVIS_CA_CERT");
  app.add_option("--cert", flags.cert, "this application's client certificate (PEM), for mTLS")
      ->envname("CLAVIS_CLIENT_CERT");
  app.add_option("--key", flags.key, "the client certificate's private key (PEM)")
      ->envname("CLAVIS_CLIENT_KEY");
  app.add_option("--db", flags.db, "the SQLite file")->capture_default_str();
  app.add_option("--clavis-key", flags.clavis_key, "the Clavis key, tenants/{t}/keys/{k}");
  app.add_option("--segment", flags.segment, "the segment of the records (default: <t>/customers)");

  CLI::App* init = app.add_subcommand("init", "Create the customers table (needs no clavisd)");
  init->footer("Example:\n  clavis-customer-records --db customers.db init");

  NewCustomer customer;
  CLI::App* insert = app.add_subcommand("insert", "Add a customer; prints the new id");
  insert->add_option("--name", customer.name, "stored in the clear")->required();
  insert->add_option("--email", customer.email, "encrypted, and indexed for find")->required();
  insert->add_option("--phone", customer.phone, "encrypted")->required();
  insert->add_option("--card", customer.card, "card number, encrypted")->required();
  insert->add_option("--country", customer.country, "stored in the clear")->required();
  insert->footer(
      "Example:\n  clavis-customer-records --clavis-key tenants/acme/keys/crm insert --name 'Ada "
      "Lovelace' \\\n      --email ada@example.com --phone '+44 20 7946 0000' --card "
      "4111111111111111 --country GB");

  std::string email;
  CLI::App* find = app.add_subcommand(
      "find", "Print the customer with this email (case and surrounding spaces ignored)");
  find->add_option("--email", email)->required();
  find->footer(
      "Example:\n  clavis-customer-records --clavis-key tenants/acme/keys/crm find "
      "--email ada@example.com");

  int64_t id = 0;
  CLI::App* show = app.add_subcommand("show", "Print the customer with this id");
  show->add_option("--id", id)->required()->check(CLI::PositiveNumber);
  show->footer(
      "Example:\n  clavis-customer-records --clavis-key tenants/acme/keys/crm show --id 1");

  CLI::App* list = app.add_subcommand("list", "Print every customer, one JSON object per line");
  list->footer("Example:\n  clavis-customer-records --clavis-key tenants/acme/keys/crm list");

  CLI::App* reencrypt = app.add_subcommand(
      "reencrypt", "Re-encrypt every customer with the current segment key (after a rotation)");
  reencrypt->footer(kReencryptHelp);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  absl::Status status;
  if (init->parsed()) {
    status = Init(flags, std::cout);
  } else if (absl::Status usage = CheckClavisFlags(flags); !usage.ok()) {
    std::cerr << kProgram << ": " << usage.message() << "\n";
    return 2;
  } else if (insert->parsed()) {
    status = Insert(flags, customer, std::cout);
  } else if (find->parsed()) {
    status = Find(flags, email, std::cout);
  } else if (show->parsed()) {
    status = Show(flags, id, std::cout);
  } else if (list->parsed()) {
    status = List(flags, std::cout, std::cerr);
  } else if (reencrypt->parsed()) {
    status = Reencrypt(flags, std::cout);
  }
  std::cout.flush();
  if (status.ok() && !std::cout) status = absl::UnknownError("cannot write to standard output");
  if (!status.ok()) std::cerr << kProgram << ": " << status.message() << "\n";
  return ExitCode(status);
}

}  // namespace
}  // namespace customer_records

int main(int argc, char** argv) { return customer_records::Run(argc, argv); }
