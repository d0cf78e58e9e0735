#ifndef FLEETPLAN_STORAGE_SQLITE_H_
#define FLEETPLAN_STORAGE_SQLITE_H_

// A thin RAII wrapper over the SQLite C API, in the manner of Chromium's sql/ and TensorFlow's
// core/lib/db/sqlite.h:
//   - Database owns one sqlite3* connection; opened through a factory, closed in the destructor.
//   - Statement owns one sqlite3_stmt*; Bind*/Column* are 0-based for columns, 1-based for
//     parameters exactly as in SQLite; Step() returns true while a row is available.
//   - Transaction begins in its constructor and rolls back in its destructor unless Commit()ed.
//   - SqliteStatus() is the one function that maps SQLite result codes to absl::Status.
//
// Thread safety: a Database (and its statements) must be used by one thread at a time. SqliteStore
// serialises access with its own mutex; concurrent writers use separate connections.

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetplan::storage {

// Maps a SQLite result code to a Status. `context` says what we were doing ("prepare", "step" ...),
// `db` (may be null) contributes sqlite3_errmsg.
//   SQLITE_BUSY/LOCKED      -> UNAVAILABLE (retry later)
//   SQLITE_CONSTRAINT_*     -> ALREADY_EXISTS for UNIQUE/PRIMARYKEY, FAILED_PRECONDITION otherwise
//   SQLITE_NOTFOUND         -> NOT_FOUND
//   SQLITE_FULL/NOMEM       -> RESOURCE_EXHAUSTED
//   SQLITE_CORRUPT/NOTADB   -> DATA_LOSS
//   SQLITE_CANTOPEN/PERM/READONLY/IOERR -> UNAVAILABLE / PERMISSION_DENIED
//   SQLITE_MISUSE/RANGE     -> INTERNAL (a bug in our SQL)
absl::Status SqliteStatus(int code, sqlite3* db, absl::string_view context);

class Statement;
class ScopedStatement;

class Database {
 public:
  // Opens (creating if needed) the database at `path` (":memory:" for a private in-memory one).
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path);

  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows (DDL, PRAGMA settings).
  absl::Status Exec(absl::string_view sql);
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // A statement prepared once per connection and kept (SQL text is the key); reset when the
  // returned handle goes out of scope, so no read stays open. One handle per SQL text at a time.
  absl::StatusOr<ScopedStatement> Cached(absl::string_view sql);

  // Reads a single integer PRAGMA, e.g. PragmaInt("user_version").
  absl::StatusOr<int64_t> PragmaInt(absl::string_view pragma);

  int64_t LastInsertRowId() const;
  int Changes() const;
  // Inside an outer transaction someone else began and will commit (SqliteStore's group commit):
  // Transaction::Begin then opens a savepoint, so a write rolls back alone and commits with the
  // group.
  void set_in_outer_transaction(bool in) { in_outer_transaction_ = in; }
  bool in_outer_transaction() const { return in_outer_transaction_; }
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  bool in_outer_transaction_ = false;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;  // destroyed before db_
};

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& BindInt(int index, int64_t value);
  Statement& BindDouble(int index, double value);
  Statement& BindText(int index, absl::string_view value);
  Statement& BindNull(int index);

  // Advances: true when a row is available, false when done; an error is returned as Status.
  absl::StatusOr<bool> Step();
  // Steps to completion of a statement that returns no rows.
  absl::Status Run();
  absl::Status Reset();

  int64_t ColumnInt(int column) const;
  double ColumnDouble(int column) const;
  std::string ColumnText(int column) const;
  bool ColumnIsNull(int column) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  absl::Status bind_status_;
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
};

// A cached statement in use (Database::Cached): the statement's interface, reset on scope exit.
class ScopedStatement {
 public:
  explicit ScopedStatement(Statement* stmt) : stmt_(stmt) {}
  ScopedStatement(ScopedStatement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  ScopedStatement& operator=(ScopedStatement&&) = delete;
  ScopedStatement(const ScopedStatement&) = delete;
  ~ScopedStatement();
  Statement* operator->() const { return stmt_; }
  Statement& operator*() const { return *stmt_; }

 private:
  Statement* stmt_;
};

// BEGIN IMMEDIATE (write) or BEGIN DEFERRED (read) in the constructor via Begin(); rolls back in
// the destructor unless Commit() succeeded.
class Transaction {
 public:
  enum class Mode { kRead, kWrite };
  static absl::StatusOr<Transaction> Begin(Database& db, Mode mode);

  Transaction(Transaction&& other) noexcept : db_(other.db_), savepoint_(other.savepoint_) {
    other.db_ = nullptr;
  }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  absl::Status Commit();

 private:
  Transaction(Database* db, bool savepoint) : db_(db), savepoint_(savepoint) {}
  Database* db_;
  bool savepoint_;  // a savepoint inside an outer transaction (Database::in_outer_transaction)
};

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_SQLITE_H_
