#include "storage/sqlite.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace fleetplan::storage {

absl::Status SqliteStatus(int code, sqlite3* db, absl::string_view context) {
  if (code == SQLITE_OK || code == SQLITE_ROW || code == SQLITE_DONE) return absl::OkStatus();
  std::string message = absl::StrCat("sqlite ", context, ": ", sqlite3_errstr(code));
  if (db != nullptr) {
    absl::string_view detail = sqlite3_errmsg(db);
    if (!detail.empty() && detail != sqlite3_errstr(code))
      absl::StrAppend(&message, " (", detail, ")");
  }
  switch (code & 0xff) {  // primary result code
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(message);
    case SQLITE_CONSTRAINT:
      if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(message);
      }
      return absl::FailedPreconditionError(message);
    case SQLITE_NOTFOUND:
      return absl::NotFoundError(message);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_TOOBIG:
      return absl::ResourceExhaustedError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(message);
    case SQLITE_INTERRUPT:
    case SQLITE_ABORT:
      return absl::AbortedError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteStatus(rc, db, absl::StrCat("open \"", path, "\""));
    sqlite3_close_v2(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Database>(new Database(db, path));
}

Database::~Database() {
  cache_.clear();  // finalize cached statements before closing
  sqlite3_close_v2(db_);
}

absl::StatusOr<ScopedStatement> Database::Cached(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    absl::StatusOr<Statement> stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    it = cache_.emplace(std::string(sql), std::make_unique<Statement>(std::move(*stmt))).first;
  }
  return ScopedStatement(it->second.get());
}

ScopedStatement::~ScopedStatement() {
  if (stmt_ != nullptr) stmt_->Reset().IgnoreError();
}

absl::Status Database::Exec(absl::string_view sql) {
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  return SqliteStatus(rc, db_, "exec");
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteStatus(rc, db_, absl::StrCat("prepare \"", sql.substr(0, 60), "\""));
  }
  return Statement(stmt, db_);
}

absl::StatusOr<int64_t> Database::PragmaInt(absl::string_view pragma) {
  absl::StatusOr<Statement> stmt = Prepare(absl::StrCat("PRAGMA ", pragma));
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat("PRAGMA ", pragma, " returned no row"));
  return stmt->ColumnInt(0);
}

int64_t Database::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
int Database::Changes() const { return sqlite3_changes(db_); }

Statement::Statement(Statement&& other) noexcept
    : bind_status_(std::move(other.bind_status_)), stmt_(other.stmt_), db_(other.db_) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    bind_status_ = std::move(other.bind_status_);
    stmt_ = other.stmt_;
    db_ = other.db_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::BindInt(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_status_.ok()) bind_status_ = SqliteStatus(rc, db_, "bind");
  return *this;
}

Statement& Statement::BindDouble(int index, double value) {
  int rc = sqlite3_bind_double(stmt_, index, value);
  if (bind_status_.ok()) bind_status_ = SqliteStatus(rc, db_, "bind");
  return *this;
}

Statement& Statement::BindText(int index, absl::string_view value) {
  int rc =
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_status_.ok()) bind_status_ = SqliteStatus(rc, db_, "bind");
  return *this;
}

Statement& Statement::BindNull(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (bind_status_.ok()) bind_status_ = SqliteStatus(rc, db_, "bind");
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteStatus(rc, db_, "step");
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

absl::Status Statement::Reset() {
  bind_status_ = absl::OkStatus();
  sqlite3_reset(stmt_);
  return SqliteStatus(sqlite3_clear_bindings(stmt_), db_, "reset");
}

int64_t Statement::ColumnInt(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::ColumnDouble(int column) const { return sqlite3_column_double(stmt_, column); }
bool Statement::ColumnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}
std::string Statement::ColumnText(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

absl::StatusOr<Transaction> Transaction::Begin(Database& db, Mode mode) {
  if (db.in_outer_transaction()) {
    absl::Status status = db.Exec("SAVEPOINT inner");
    if (!status.ok()) return status;
    return Transaction(&db, /*savepoint=*/true);
  }
  absl::Status status = db.Exec(mode == Mode::kWrite ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
  if (!status.ok()) return status;
  return Transaction(&db, /*savepoint=*/false);
}

Transaction::~Transaction() {
  if (db_ == nullptr) return;
  if (savepoint_) {
    db_->Exec("ROLLBACK TO inner; RELEASE inner").IgnoreError();
  } else {
    db_->Exec("ROLLBACK").IgnoreError();
  }
}

absl::Status Transaction::Commit() {
  if (db_ == nullptr) return absl::FailedPreconditionError("transaction already finished");
  absl::Status status = db_->Exec(savepoint_ ? "RELEASE inner" : "COMMIT");
  if (status.ok()) db_ = nullptr;
  return status;
}

}  // namespace fleetplan::storage
