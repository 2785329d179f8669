#include "client/examples/customer_records/customer_store.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace customer_records {
namespace {

constexpr char kSchema[] =
    "CREATE TABLE IF NOT EXISTS customers ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  country TEXT NOT NULL,"
    "  doc TEXT NOT NULL,"
    "  email_index TEXT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS customers_by_email_index ON customers (email_index);";

// SQLite's result code as a status; `what` says what was being done.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", sqlite3_errstr(rc));
  if (db != nullptr && sqlite3_errcode(db) == rc)
    absl::StrAppend(&message, " (", sqlite3_errmsg(db), ")");
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::AbortedError(message);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(message);
    case SQLITE_CANTOPEN:
      return absl::NotFoundError(message);
    default:
      return absl::InternalError(message);
  }
}

// A prepared statement. Bind errors are kept and reported by Step.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) status_ = SqliteError(db, rc, "preparing a statement");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are numbered from 1. Text is copied by SQLite.
  Statement& Bind(int index, absl::string_view text) {
    if (status_.ok()) {
      Check(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                SQLITE_UTF8));
    }
    return *this;
  }
  Statement& Bind(int index, int64_t value) {
    if (status_.ok()) Check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }

  // True when a row is ready, false when the statement is done.
  absl::StatusOr<bool> Step() {
    if (!status_.ok()) return status_;
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, "running a statement");
  }
  // Steps to the end (statements without results).
  absl::Status Run() {
    absl::StatusOr<bool> row;
    do {
      row = Step();
    } while (row.ok() && *row);
    return row.status();
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string Text(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    if (text == nullptr) return "";
    return std::string(text, sqlite3_column_bytes(stmt_, column));
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK) status_ = SqliteError(db_, rc, "binding a parameter");
  }

  sqlite3* const db_;
  sqlite3_stmt* stmt_ = nullptr;
  absl::Status status_;
};

CustomerRow ReadRow(const Statement& s) {
  return CustomerRow{s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Text(4)};
}

// The rows a SELECT of kColumns returns.
absl::StatusOr<std::vector<CustomerRow>> ReadRows(Statement& s) {
  std::vector<CustomerRow> rows;
  while (true) {
    absl::StatusOr<bool> row = s.Step();
    if (!row.ok()) return row.status();
    if (!*row) return rows;
    rows.push_back(ReadRow(s));
  }
}

absl::Status Exec(sqlite3* db, const char* sql, absl::string_view what) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? absl::OkStatus() : SqliteError(db, rc, what);
}

// Runs `body` in a write transaction (BEGIN IMMEDIATE: other writers wait
// for it), committed only if `body` succeeds.
absl::Status InTransaction(sqlite3* db, const std::function<absl::Status()>& body) {
  if (absl::Status s = Exec(db, "BEGIN IMMEDIATE", "starting a transaction"); !s.ok()) return s;
  absl::Status status = body();
  if (status.ok()) status = Exec(db, "COMMIT", "committing");
  if (!status.ok()) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  return status;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CustomerStore>> CustomerStore::Open(const std::string& path,
                                                                   Mode mode) {
  int flags = SQLITE_OPEN_READWRITE;
  if (mode == Mode::kCreate) flags |= SQLITE_OPEN_CREATE;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(db, rc, absl::StrCat("opening ", path));
    sqlite3_close(db);
    if (mode == Mode::kExisting && status.code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("no database at ", path, " (run init first)"));
    }
    return status;
  }
  // Another process may hold a write lock for a moment (e.g. a reencrypt).
  sqlite3_busy_timeout(db, 5000);
  auto store = std::unique_ptr<CustomerStore>(new CustomerStore(db));
  if (mode == Mode::kExisting) {
    if (absl::Status s = store->RequireSchema(); !s.ok()) return s;
  }
  return store;
}

CustomerStore::~CustomerStore() { sqlite3_close(db_); }

absl::Status CustomerStore::RequireSchema() {
  Statement s(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'customers'");
  absl::StatusOr<bool> found = s.Step();
  if (!found.ok()) return found.status();
  if (!*found) {
    return absl::NotFoundError("the database has no customers table (run init first)");
  }
  return absl::OkStatus();
}

absl::Status CustomerStore::CreateSchema() { return Exec(db_, kSchema, "creating the table"); }

absl::StatusOr<int64_t> CustomerStore::Insert(
    absl::string_view name, absl::string_view country, absl::string_view email_index,
    const std::function<absl::StatusOr<std::string>(int64_t id)>& make_doc) {
  int64_t id = 0;
  absl::Status status = InTransaction(db_, [&]() -> absl::Status {
    Statement taken(db_, "SELECT id FROM customers WHERE email_index = ?1");
    absl::StatusOr<bool> exists = taken.Bind(1, email_index).Step();
    if (!exists.ok()) return exists.status();
    if (*exists) {
      return absl::AlreadyExistsError(
          absl::StrCat("customer ", taken.Int(0), " has the same email"));
    }
    Statement next(db_, "SELECT COALESCE(MAX(id), 0) + 1 FROM customers");
    absl::StatusOr<bool> row = next.Step();
    if (!row.ok()) return row.status();
    id = next.Int(0);

    absl::StatusOr<std::string> doc = make_doc(id);
    if (!doc.ok()) return doc.status();
    Statement insert(db_,
                     "INSERT INTO customers (id, name, country, doc, email_index) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)");
    return insert.Bind(1, id)
        .Bind(2, name)
        .Bind(3, country)
        .Bind(4, *doc)
        .Bind(5, email_index)
        .Run();
  });
  if (!status.ok()) return status;
  return id;
}

absl::StatusOr<CustomerRow> CustomerStore::FindByEmailIndex(absl::string_view email_index) {
  Statement s(db_,
              "SELECT id, name, country, doc, email_index FROM customers WHERE email_index = ?1");
  absl::StatusOr<bool> row = s.Bind(1, email_index).Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError("no customer with that email");
  return ReadRow(s);
}

absl::StatusOr<CustomerRow> CustomerStore::Get(int64_t id) {
  Statement s(db_, "SELECT id, name, country, doc, email_index FROM customers WHERE id = ?1");
  absl::StatusOr<bool> row = s.Bind(1, id).Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("no customer ", id));
  return ReadRow(s);
}

absl::StatusOr<std::vector<CustomerRow>> CustomerStore::List() {
  Statement s(db_, "SELECT id, name, country, doc, email_index FROM customers ORDER BY id");
  return ReadRows(s);
}

absl::StatusOr<size_t> CustomerStore::RewriteAll(
    const std::function<absl::Status(CustomerRow& row)>& rewrite) {
  size_t count = 0;
  absl::Status status = InTransaction(db_, [&]() -> absl::Status {
    Statement select(db_, "SELECT id, name, country, doc, email_index FROM customers ORDER BY id");
    absl::StatusOr<std::vector<CustomerRow>> rows = ReadRows(select);
    if (!rows.ok()) return rows.status();
    for (CustomerRow& row : *rows) {
      if (absl::Status s = rewrite(row); !s.ok()) return s;
      Statement update(db_, "UPDATE customers SET doc = ?1, email_index = ?2 WHERE id = ?3");
      if (absl::Status s = update.Bind(1, row.doc).Bind(2, row.email_index).Bind(3, row.id).Run();
          !s.ok()) {
        return s;
      }
    }
    count = rows->size();
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return count;
}

}  // namespace customer_records
