// The SDK example clavis-customer-records (client/examples/customer_records)
// against a real clavisd with mTLS, run as a subprocess the way its README
// runs it: the key's administrator is acme's admin, the application is a key
// user with a certificate of its own. Covers insert, lookup by email
// (normalized), what is stored in SQLite, rotation and re-encryption, and
// what the user sees when the key's owner disables it or revokes the
// segment, and when the principal may not use the key.
#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/clavisd_fixture.h"

extern char** environ;

namespace clavis::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

#ifdef CUSTOMER_RECORDS_BINARY
constexpr char kBinary[] = CUSTOMER_RECORDS_BINARY;
#else
constexpr char kBinary[] = "";  // SetUp skips every test
#endif
constexpr char kKey[] = "tenants/acme/keys/crm";
constexpr char kSegmentName[] = "tenants/acme/keys/crm/segments/acme/customers";
const char* const kEncryptedFields[] = {"/email", "/phone", "/card/number"};

struct Customer {
  std::string name, email, phone, card, country;
};

const std::vector<Customer>& Customers() {
  static const auto* const customers = new std::vector<Customer>{
      {"Ada Lovelace", "ada@example.com", "+44 20 7946 0001", "4111111111111111", "GB"},
      {"Grace Hopper", "grace@example.org", "+1 202 555 0102", "5500005555555559", "US"},
      {"Émilie du Châtelet", "emilie@example.fr", "+33 1 70 36 0103", "340000000000009", "FR"},
  };
  return *customers;
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `argv` (no shell), stdout and stderr captured through files. gRPC
// resolves names with its native resolver (see clavisctl_e2e_test.cc).
RunResult Spawn(const std::vector<std::string>& argv, const std::string& scratch_dir) {
  const std::string out_file = scratch_dir + "/stdout";
  const std::string err_file = scratch_dir + "/stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings = {"GRPC_DNS_RESOLVER=native"};
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "GRPC_DNS_RESOLVER=")) env_strings.push_back(*e);
  }
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);

  RunResult result;
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << rc;
    return result;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = Slurp(out_file);
  result.err = Slurp(err_file);
  return result;
}

std::ostream& operator<<(std::ostream& os, const RunResult& r) {
  return os << "exit " << r.exit_code << "\nstdout: " << r.out << "\nstderr: " << r.err;
}

// The segment-key versions of the data keys an encrypted document uses,
// read from the headers of its fields' sealed records and their data key
// blobs (docs/FORMAT.md "Encrypted JSON field", "Sealed record", "Ciphertext
// blob"): nothing secret is needed for that.
std::set<uint32_t> SegmentKeyVersions(const std::string& doc) {
  std::set<uint32_t> versions;
  const Json json = Json::parse(doc);
  for (const char* pointer : kEncryptedFields) {
    const std::string value = json.at(Json::json_pointer(pointer)).get<std::string>();
    std::string sealed;
    EXPECT_TRUE(absl::StartsWith(value, "clavis:v1:")) << pointer;
    EXPECT_TRUE(absl::Base64Unescape(value.substr(10), &sealed)) << pointer;
    // magic (4), version, algorithm, u16 key name, u16 segment, u32 blob.
    size_t i = 6;
    auto u16 = [&] {
      const size_t n = (static_cast<uint8_t>(sealed[i]) << 8) | static_cast<uint8_t>(sealed[i + 1]);
      i += 2;
      return n;
    };
    i += u16();
    i += u16();
    i += 4;
    auto blob = BlobParts::Parse(sealed.substr(i));
    EXPECT_TRUE(blob.has_value()) << pointer;
    if (blob.has_value()) versions.insert(blob->segment_key_version);
  }
  return versions;
}

class CustomerRecordsExampleTest : public ClavisdTest {
 protected:
  void SetUp() override {
#ifndef CUSTOMER_RECORDS_BINARY
    GTEST_SKIP() << "built with CLAVIS_BUILD_EXAMPLES=OFF";
#endif
    ClavisdTest::SetUp();
    if (HasFatalFailure()) return;
    // Separation of duties, as in the README: acme's admin administers the
    // key, the application only uses it.
    clavis::v1::CreateKeyRequest create;
    create.set_parent("tenants/acme");
    create.set_key_id("crm");
    create.add_key_administrators(PrincipalName("acme"));
    create.add_key_users(app_);
    ASSERT_TRUE(IsOk(Call(&AdminStub::CreateKey, create)));
    db_ = dir_.path() + "/customers.db";
    scratch_ = dir_.path();
  }

  // The example with mTLS as `principal` and the test's database and key.
  RunResult App(const std::vector<std::string>& command, const std::string& principal = "") {
    const std::string prefix = clavisd_->client_cert_prefix(principal.empty() ? app_ : principal);
    std::vector<std::string> argv = {kBinary, "--endpoint", clavisd_->address()};
    argv.insert(argv.end(), {"--ca-cert", clavisd_->ca_cert_file()});
    argv.insert(argv.end(), {"--cert", prefix + ".crt", "--key", prefix + ".key"});
    argv.insert(argv.end(), {"--db", db_, "--clavis-key", kKey});
    argv.insert(argv.end(), command.begin(), command.end());
    return Spawn(argv, scratch_);
  }

  // init, then the three customers; their ids are 1, 2, 3.
  void InitAndInsertCustomers() {
    RunResult init = App({"init"});
    ASSERT_EQ(init.exit_code, 0) << init;
    int64_t expected_id = 1;
    for (const Customer& c : Customers()) {
      RunResult r = App({"insert", "--name", c.name, "--email", c.email, "--phone", c.phone,
                         "--card", c.card, "--country", c.country});
      ASSERT_EQ(r.exit_code, 0) << r;
      EXPECT_EQ(r.out, absl::StrCat(expected_id++, "\n"));
    }
  }

  // The customer `find` prints for `email`; fails the test otherwise.
  Json Find(const std::string& email) {
    RunResult r = App({"find", "--email", email});
    EXPECT_EQ(r.exit_code, 0) << r;
    if (r.exit_code != 0) return Json();
    return Json::parse(r.out);
  }

  static void ExpectCustomer(const Json& got, int64_t id, const Customer& c) {
    EXPECT_EQ(got.value("id", int64_t{0}), id) << got.dump();
    EXPECT_EQ(got.value("name", ""), c.name);
    EXPECT_EQ(got.value("country", ""), c.country);
    EXPECT_EQ(got.value("email", ""), c.email);
    EXPECT_EQ(got.value("phone", ""), c.phone);
    EXPECT_EQ(got.value(Json::json_pointer("/card/number"), ""), c.card);
  }

  struct StoredRow {
    int64_t id;
    std::string name, country, doc, email_index;
  };

  // The table as SQLite has it, read without the example's code.
  std::vector<StoredRow> StoredRows() {
    std::vector<StoredRow> rows;
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << db_;
      sqlite3_close(db);
      return rows;
    }
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(
                  db, "SELECT id, name, country, doc, email_index FROM customers ORDER BY id", -1,
                  &stmt, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    auto text = [&](int column) {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
      return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt, column));
    };
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      rows.push_back({sqlite3_column_int64(stmt, 0), text(1), text(2), text(3), text(4)});
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return rows;
  }

  grpc::Status SetKeyEnabled(bool enabled) {
    return KeyOp(enabled ? &AdminStub::EnableKey : &AdminStub::DisableKey, kKey);
  }

  const std::string app_ = PrincipalName("acme", "crm-app");
  std::string db_;
  std::string scratch_;
};

TEST_F(CustomerRecordsExampleTest, InsertsAndFindsCustomersByEmail) {
  InitAndInsertCustomers();
  ASSERT_FALSE(HasFatalFailure());
  for (size_t i = 0; i < Customers().size(); ++i) {
    ExpectCustomer(Find(Customers()[i].email), static_cast<int64_t>(i + 1), Customers()[i]);
  }
  // The index is over the trimmed, lower-cased email.
  ExpectCustomer(Find("  ADA@Example.COM\t"), 1, Customers()[0]);
  ExpectCustomer(Find("Grace@EXAMPLE.org "), 2, Customers()[1]);

  RunResult missing = App({"find", "--email", "nobody@example.com"});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_THAT(missing.err, HasSubstr("no customer with that email"));
  EXPECT_EQ(missing.out, "");

  RunResult shown = App({"show", "--id", "3"});
  ASSERT_EQ(shown.exit_code, 0) << shown;
  ExpectCustomer(Json::parse(shown.out), 3, Customers()[2]);
  RunResult no_such = App({"show", "--id", "9"});
  EXPECT_EQ(no_such.exit_code, 3) << no_such;
  EXPECT_THAT(no_such.err, HasSubstr("no customer 9"));

  RunResult listed = App({"list"});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  std::vector<std::string> lines = absl::StrSplit(listed.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << listed;
  for (size_t i = 0; i < lines.size(); ++i) {
    ExpectCustomer(Json::parse(lines[i]), static_cast<int64_t>(i + 1), Customers()[i]);
  }

  // One customer per email, whatever its case.
  RunResult duplicate = App({"insert", "--name", "Ada again", "--email", "ADA@example.com",
                             "--phone", "0", "--card", "0", "--country", "GB"});
  EXPECT_EQ(duplicate.exit_code, 8) << duplicate;
  EXPECT_THAT(duplicate.err, HasSubstr("customer 1 has the same email"));
}

TEST_F(CustomerRecordsExampleTest, StoresPersonalFieldsOnlyEncryptedAndTheEmailAsATag) {
  InitAndInsertCustomers();
  ASSERT_FALSE(HasFatalFailure());
  std::vector<StoredRow> rows = StoredRows();
  ASSERT_EQ(rows.size(), Customers().size());
  std::set<std::string> tags;
  for (size_t i = 0; i < rows.size(); ++i) {
    const Customer& c = Customers()[i];
    const StoredRow& row = rows[i];
    EXPECT_EQ(row.id, static_cast<int64_t>(i + 1));
    EXPECT_EQ(row.name, c.name);  // in the clear, by design
    EXPECT_EQ(row.country, c.country);
    for (const std::string& secret : {c.email, c.phone, c.card, std::string("example")}) {
      EXPECT_THAT(row.doc, Not(HasSubstr(secret))) << "row " << row.id;
      EXPECT_THAT(row.email_index, Not(HasSubstr(secret))) << "row " << row.id;
    }
    const Json doc = Json::parse(row.doc);
    for (const char* pointer : kEncryptedFields) {
      EXPECT_TRUE(
          absl::StartsWith(doc.at(Json::json_pointer(pointer)).get<std::string>(), "clavis:v1:"))
          << "row " << row.id << " " << pointer;
    }
    EXPECT_EQ(row.email_index.size(), 64u);
    EXPECT_EQ(row.email_index.find_first_not_of("0123456789abcdef"), std::string::npos)
        << row.email_index;
    tags.insert(row.email_index);
  }
  EXPECT_EQ(tags.size(), rows.size());

  // A field moved to another customer's row does not decrypt there: the
  // record id is bound to each field.
  {
    Json moved = Json::parse(rows[1].doc);
    moved["email"] = Json::parse(rows[0].doc)["email"];
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(db, "UPDATE customers SET doc = ?1 WHERE id = 2", -1, &stmt, nullptr),
        SQLITE_OK);
    const std::string text = moved.dump();
    sqlite3_bind_text(stmt, 1, text.c_str(), -1, SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
  RunResult tampered = App({"show", "--id", "2"});
  EXPECT_EQ(tampered.exit_code, 5) << tampered;
  EXPECT_THAT(tampered.err, HasSubstr("cannot read customer 2 (INVALID_ARGUMENT: field /email"));
  EXPECT_THAT(tampered.err, Not(HasSubstr(Customers()[0].email)));
}

TEST_F(CustomerRecordsExampleTest, RotationKeepsRowsReadableAndReencryptMovesThemToTheNewKey) {
  InitAndInsertCustomers();
  ASSERT_FALSE(HasFatalFailure());
  std::vector<StoredRow> before = StoredRows();
  for (const StoredRow& row : before) {
    EXPECT_EQ(SegmentKeyVersions(row.doc), std::set<uint32_t>{1}) << "row " << row.id;
  }

  clavis::v1::Key key;
  ASSERT_TRUE(IsOk(RotateKey(kKey, &key)));
  EXPECT_EQ(key.primary_version(), 2u);
  clavis::v1::Segment segment;
  ASSERT_TRUE(IsOk(SegmentOp(&AdminStub::RotateSegment, kSegmentName, &segment)));
  EXPECT_EQ(segment.primary_version(), 2u);

  // Old rows are still readable; a new row uses the new segment key.
  ExpectCustomer(Find("ada@example.com"), 1, Customers()[0]);
  RunResult added =
      App({"insert", "--name", "Alan Turing", "--email", "alan@example.com", "--phone",
           "+44 161 496 0104", "--card", "6011000990139424", "--country", "GB"});
  ASSERT_EQ(added.exit_code, 0) << added;
  EXPECT_EQ(added.out, "4\n");
  EXPECT_EQ(SegmentKeyVersions(StoredRows().back().doc), std::set<uint32_t>{2});

  RunResult reencrypted = App({"reencrypt"});
  ASSERT_EQ(reencrypted.exit_code, 0) << reencrypted;
  EXPECT_THAT(reencrypted.out, HasSubstr("re-encrypted 4 customers"));
  std::vector<StoredRow> after = StoredRows();
  ASSERT_EQ(after.size(), 4u);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(SegmentKeyVersions(after[i].doc), std::set<uint32_t>{2}) << "row " << after[i].id;
    if (i < before.size()) {
      EXPECT_NE(after[i].doc, before[i].doc);
      // Tags survive segment rotation, so the index needs no rebuild.
      EXPECT_EQ(after[i].email_index, before[i].email_index);
    }
  }
  for (size_t i = 0; i < Customers().size(); ++i) {
    ExpectCustomer(Find(Customers()[i].email), static_cast<int64_t>(i + 1), Customers()[i]);
  }
  EXPECT_EQ(Find("ALAN@example.com").value("name", ""), "Alan Turing");
}

TEST_F(CustomerRecordsExampleTest, DisabledKeyLeavesTheUserAClearMessageUntilItIsEnabled) {
  InitAndInsertCustomers();
  ASSERT_FALSE(HasFatalFailure());
  const std::vector<StoredRow> before = StoredRows();

  ASSERT_TRUE(IsOk(SetKeyEnabled(false)));
  RunResult find = App({"find", "--email", "ada@example.com"});
  EXPECT_EQ(find.exit_code, 4) << find;
  EXPECT_THAT(find.err, HasSubstr("cannot search by email: the key is disabled or revoked"));
  EXPECT_THAT(find.err, HasSubstr("(FAILED_PRECONDITION: "));
  EXPECT_THAT(find.err, HasSubstr("is DISABLED"));
  EXPECT_EQ(find.out, "");

  RunResult show = App({"show", "--id", "3"});
  EXPECT_EQ(show.exit_code, 4) << show;
  EXPECT_THAT(show.err, HasSubstr("cannot read customer 3: the key is disabled or revoked"));
  EXPECT_THAT(show.err, HasSubstr("(FAILED_PRECONDITION: "));
  EXPECT_THAT(show.err, Not(HasSubstr(Customers()[2].email)));

  RunResult list = App({"list"});
  EXPECT_EQ(list.exit_code, 4) << list;
  EXPECT_THAT(list.err, HasSubstr("cannot read customer 1: the key is disabled"));

  RunResult insert = App({"insert", "--name", "N", "--email", "n@example.com", "--phone", "1",
                          "--card", "1", "--country", "NL"});
  EXPECT_EQ(insert.exit_code, 4) << insert;
  RunResult reencrypt = App({"reencrypt"});
  EXPECT_EQ(reencrypt.exit_code, 4) << reencrypt;
  EXPECT_THAT(reencrypt.err, HasSubstr("cannot read customer 1: the key is disabled"));
  // Nothing was written while the key was off.
  std::vector<StoredRow> during = StoredRows();
  ASSERT_EQ(during.size(), before.size());
  for (size_t i = 0; i < during.size(); ++i) EXPECT_EQ(during[i].doc, before[i].doc);

  ASSERT_TRUE(IsOk(SetKeyEnabled(true)));
  ExpectCustomer(Find("ada@example.com"), 1, Customers()[0]);
  RunResult shown = App({"show", "--id", "3"});
  ASSERT_EQ(shown.exit_code, 0) << shown;
  ExpectCustomer(Json::parse(shown.out), 3, Customers()[2]);

  // Revoking just the segment has the same effect on this application.
  ASSERT_TRUE(IsOk(SegmentOp(&AdminStub::RevokeSegment, kSegmentName)));
  RunResult revoked = App({"show", "--id", "1"});
  EXPECT_EQ(revoked.exit_code, 4) << revoked;
  EXPECT_THAT(revoked.err, HasSubstr("cannot read customer 1: the key is disabled or revoked"));
  ASSERT_TRUE(IsOk(SegmentOp(&AdminStub::EnableSegment, kSegmentName)));
  EXPECT_EQ(App({"show", "--id", "1"}).exit_code, 0);
}

TEST_F(CustomerRecordsExampleTest, PrincipalWithoutRightsOnTheKeyIsToldSo) {
  InitAndInsertCustomers();
  ASSERT_FALSE(HasFatalFailure());
  // acme's admin administers the key but may not use it (separation of duties).
  RunResult admin = App({"find", "--email", "ada@example.com"}, PrincipalName("acme"));
  EXPECT_EQ(admin.exit_code, 6) << admin;
  EXPECT_THAT(admin.err, HasSubstr("the key's policy does not let this application use the key"));
  EXPECT_THAT(admin.err, HasSubstr("(PERMISSION_DENIED: "));
}

TEST_F(CustomerRecordsExampleTest, HelpExplainsRotationAndUsageErrorsExitWithTwo) {
  RunResult help = App({"reencrypt", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help;
  EXPECT_THAT(help.out, HasSubstr("old rows remain readable"));
  EXPECT_THAT(help.out, HasSubstr("optional hygiene"));

  RunResult missing = App({"insert", "--name", "x"});
  EXPECT_EQ(missing.exit_code, 2) << missing;
  RunResult bad_key = Spawn({kBinary, "--db", db_, "--clavis-key", "crm", "list"}, scratch_);
  EXPECT_EQ(bad_key.exit_code, 2) << bad_key;
  EXPECT_THAT(bad_key.err, HasSubstr("is not a key name"));
}

}  // namespace
}  // namespace clavis::testing
