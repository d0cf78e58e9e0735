#ifndef FLEETPLAN_STORAGE_SQL_H_
#define FLEETPLAN_STORAGE_SQL_H_

// The SQL layer every repository of SqlStore is written against, with two backends: SQLite
// (storage/sqlite.h, the embedded default) and PostgreSQL over libpq (storage/postgres.h, for
// several servers on one database). In the manner of Chromium's sql/ and TensorFlow's
// core/lib/db/sqlite.h:
//   - Database owns one connection; opened through a backend's factory, closed in its destructor.
//   - Statement is one prepared statement; Bind* parameters are 1-based and written ?1, ?2, ...
//     in the SQL text of either backend (PostgreSQL's $1, $2 ... are produced by its backend);
//     Column* are 0-based; Step() returns true while a row is available.
//   - Transaction begins in Begin() and rolls back in its destructor unless Commit()ed. A write
//     transaction excludes every other writer on the database, whatever process or server holds
//     it (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock), so the
//     repositories' read-check-write sequences are serial on both backends.
//   - Each backend has one function mapping its error codes to absl::Status (SqliteStatus,
//     PostgresStatus), with the same meaning of codes: UNAVAILABLE (retry later), ALREADY_EXISTS
//     (unique key), FAILED_PRECONDITION (another constraint), ABORTED (a conflict to retry),
//     RESOURCE_EXHAUSTED (disk or memory full), DATA_LOSS (corruption), INTERNAL (a bug in our
//     SQL).
//
// Thread safety: a Database (and its statements) must be used by one thread at a time. SqlStore
// serialises access with its own mutexes; concurrent writers use separate connections.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetplan::storage {

enum class Dialect { kSqlite, kPostgres };

// A failure worth retrying the whole transaction for (PostgreSQL's serialization failure 40001 or
// deadlock 40P01): ABORTED with this payload set.
inline constexpr absl::string_view kRetryablePayload = "fleetplan.io/sql-retryable";
bool IsRetryable(const absl::Status& status);

// One backend's prepared statement (Statement's implementation).
class StatementBackend {
 public:
  virtual ~StatementBackend() = default;
  virtual absl::Status BindInt(int index, int64_t value) = 0;
  virtual absl::Status BindDouble(int index, double value) = 0;
  virtual absl::Status BindText(int index, absl::string_view value) = 0;
  virtual absl::Status BindNull(int index) = 0;
  virtual absl::StatusOr<bool> Step() = 0;
  virtual absl::Status Reset() = 0;  // ready to run again, bindings cleared
  virtual int64_t ColumnInt(int column) const = 0;  // NULL reads as 0, a boolean as 0 or 1
  virtual double ColumnDouble(int column) const = 0;
  virtual std::string ColumnText(int column) const = 0;
  virtual bool ColumnIsNull(int column) const = 0;
};

class Statement {
 public:
  explicit Statement(std::unique_ptr<StatementBackend> backend) : backend_(std::move(backend)) {}
  Statement(Statement&&) noexcept = default;
  Statement& operator=(Statement&&) noexcept = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // A failed bind is reported by the next Step().
  Statement& BindInt(int index, int64_t value);
  Statement& BindDouble(int index, double value);
  Statement& BindText(int index, absl::string_view value);
  Statement& BindNull(int index);

  // Advances: true when a row is available, false when done; an error is returned as Status.
  absl::StatusOr<bool> Step();
  // Steps to completion of a statement that returns no rows.
  absl::Status Run();
  absl::Status Reset();

  int64_t ColumnInt(int column) const { return backend_->ColumnInt(column); }
  double ColumnDouble(int column) const { return backend_->ColumnDouble(column); }
  std::string ColumnText(int column) const { return backend_->ColumnText(column); }
  bool ColumnIsNull(int column) const { return backend_->ColumnIsNull(column); }

 private:
  void Note(absl::Status status) {
    if (bind_status_.ok()) bind_status_ = std::move(status);
  }
  absl::Status bind_status_;
  std::unique_ptr<StatementBackend> backend_;
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

class Database {
 public:
  virtual ~Database() = default;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  virtual Dialect dialect() const = 0;
  // Runs one or more statements that return no rows (DDL, settings).
  virtual absl::Status Exec(absl::string_view sql) = 0;
  virtual absl::StatusOr<Statement> Prepare(absl::string_view sql) = 0;
  // A statement Cached() keeps for the connection's life: a backend may prepare it on the server
  // once (PostgreSQL) instead of per run. Prepare() by default.
  virtual absl::StatusOr<Statement> PrepareKept(absl::string_view sql) { return Prepare(sql); }
  // Rows inserted, updated or deleted by the last statement that finished.
  virtual int Changes() const = 0;
  // The statements that open a transaction (Transaction::Begin).
  virtual absl::string_view BeginWriteSql() const = 0;
  virtual absl::string_view BeginReadSql() const = 0;

  // A statement prepared once per connection and kept (SQL text is the key); reset when the
  // returned handle goes out of scope, so no read stays open. One handle per SQL text at a time.
  absl::StatusOr<ScopedStatement> Cached(absl::string_view sql);
  // The first column of the first row of `sql` as an integer (INTERNAL when there is no row).
  absl::StatusOr<int64_t> QueryInt(absl::string_view sql);

  // Inside an outer transaction someone else began and will commit (SqlStore's group commit):
  // Transaction::Begin then opens a savepoint, so a write rolls back alone and commits with the
  // group.
  void set_in_outer_transaction(bool in) { in_outer_transaction_ = in; }
  bool in_outer_transaction() const { return in_outer_transaction_; }
  // What the database is, for messages: a file path, or a PostgreSQL target without password.
  const std::string& path() const { return path_; }

 protected:
  explicit Database(std::string path) : path_(std::move(path)) {}
  // Backends call this in their destructor, before closing the connection.
  void ClearCache() { cache_.clear(); }

 private:
  std::string path_;
  bool in_outer_transaction_ = false;
  std::map<std::string, std::unique_ptr<Statement>, std::less<>> cache_;
};

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

// Runs `body` inside a savepoint of the transaction open on `db`: when it fails, what it wrote is
// rolled back and the transaction stays usable, so the caller can go on (e.g. to name every
// problem of a batch). PostgreSQL refuses every later statement of a transaction in which one
// failed; SQLite would not, but the rule is the same for both.
absl::Status InSavepoint(Database& db, const std::function<absl::Status()>& body);

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_SQL_H_
