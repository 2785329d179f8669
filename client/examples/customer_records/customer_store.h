// CustomerStore: the `customers` table of the example, in one SQLite file.
//
//   CREATE TABLE customers (
//     id          INTEGER PRIMARY KEY,
//     name        TEXT NOT NULL,   -- in the clear
//     country     TEXT NOT NULL,   -- in the clear
//     doc         TEXT NOT NULL,   -- JSON; /email, /phone, /card/number encrypted
//     email_index TEXT NOT NULL);  -- blind index tag of the email, 64 hex digits
//   CREATE UNIQUE INDEX customers_by_email_index ON customers (email_index);
//
// The store keeps what it is given: it never sees a plaintext email, phone
// or card number, only the encrypted document and the email's tag
// (customer_crypto.h makes both). Every statement is a prepared statement
// with bound parameters.
//
// Errors: NotFound (no database file, or no customers table in it: run
// `init`; no such customer), AlreadyExists (a customer with the same email
// tag), Aborted (the database stayed locked by another process for 5 s),
// Internal (any other SQLite error, with SQLite's message). Never the codes
// main.cc explains as key or connection problems (FAILED_PRECONDITION,
// PERMISSION_DENIED, UNAUTHENTICATED, UNAVAILABLE).
//
// Thread safety: one thread at a time (one SQLite connection).
#ifndef CLAVIS_CLIENT_EXAMPLES_CUSTOMER_RECORDS_CUSTOMER_STORE_H_
#define CLAVIS_CLIENT_EXAMPLES_CUSTOMER_RECORDS_CUSTOMER_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct sqlite3;

namespace customer_records {

struct CustomerRow {
  int64_t id = 0;
  std::string name;
  std::string country;
  std::string doc;          // the stored JSON document, fields encrypted
  std::string email_index;  // the email's blind index tag (hex)
};

class CustomerStore {
 public:
  enum class Mode {
    kCreate,    // create the file if it does not exist (init)
    kExisting,  // the file and its customers table must exist
  };

  static absl::StatusOr<std::unique_ptr<CustomerStore>> Open(const std::string& path, Mode mode);
  ~CustomerStore();
  CustomerStore(const CustomerStore&) = delete;
  CustomerStore& operator=(const CustomerStore&) = delete;

  // Creates the table and its index unless they exist.
  absl::Status CreateSchema();

  // Adds a customer in one transaction: checks that no customer has
  // `email_index` (AlreadyExists, naming that customer's id), allots the
  // next id, asks `make_doc` for the row's document (which may bind the id),
  // and inserts the row. If `make_doc` fails, its status is returned and
  // nothing is stored. Returns the new id.
  absl::StatusOr<int64_t> Insert(
      absl::string_view name, absl::string_view country, absl::string_view email_index,
      const std::function<absl::StatusOr<std::string>(int64_t id)>& make_doc);

  // The customer with this email tag, or NotFound.
  absl::StatusOr<CustomerRow> FindByEmailIndex(absl::string_view email_index);
  // The customer with this id, or NotFound.
  absl::StatusOr<CustomerRow> Get(int64_t id);
  // Every customer, by id.
  absl::StatusOr<std::vector<CustomerRow>> List();

  // Calls `rewrite` on every row (by id), then stores each row's new `doc`
  // and `email_index`, in one transaction: if `rewrite` fails for any row,
  // its status is returned and nothing is changed. Returns the row count.
  absl::StatusOr<size_t> RewriteAll(const std::function<absl::Status(CustomerRow& row)>& rewrite);

 private:
  explicit CustomerStore(sqlite3* db) : db_(db) {}
  absl::Status RequireSchema();

  sqlite3* const db_;  // owned
};

}  // namespace customer_records

#endif  // CLAVIS_CLIENT_EXAMPLES_CUSTOMER_RECORDS_CUSTOMER_STORE_H_
