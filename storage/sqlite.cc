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

namespace {

class SqliteStatement final : public StatementBackend {
 public:
  SqliteStatement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }

  absl::Status BindInt(int index, int64_t value) override {
    return SqliteStatus(sqlite3_bind_int64(stmt_, index, value), db_, "bind");
  }
  absl::Status BindDouble(int index, double value) override {
    return SqliteStatus(sqlite3_bind_double(stmt_, index, value), db_, "bind");
  }
  absl::Status BindText(int index, absl::string_view value) override {
    return SqliteStatus(sqlite3_bind_text64(stmt_, index, value.data(), value.size(),
                                            SQLITE_TRANSIENT, SQLITE_UTF8),
                        db_, "bind");
  }
  absl::Status BindNull(int index) override {
    return SqliteStatus(sqlite3_bind_null(stmt_, index), db_, "bind");
  }
  absl::StatusOr<bool> Step() override {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteStatus(rc, db_, "step");
  }
  absl::Status Reset() override {
    sqlite3_reset(stmt_);
    return SqliteStatus(sqlite3_clear_bindings(stmt_), db_, "reset");
  }
  int64_t ColumnInt(int column) const override { return sqlite3_column_int64(stmt_, column); }
  double ColumnDouble(int column) const override { return sqlite3_column_double(stmt_, column); }
  bool ColumnIsNull(int column) const override {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  std::string ColumnText(int column) const override {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(text),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const std::string& path) {
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteStatus(rc, db, absl::StrCat("open \"", path, "\""));
    sqlite3_close_v2(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<SqliteDatabase>(new SqliteDatabase(db, path));
}

SqliteDatabase::~SqliteDatabase() {
  ClearCache();  // finalize cached statements before closing
  sqlite3_close_v2(db_);
}

absl::Status SqliteDatabase::Exec(absl::string_view sql) {
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  return SqliteStatus(rc, db_, "exec");
}

absl::StatusOr<Statement> SqliteDatabase::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteStatus(rc, db_, absl::StrCat("prepare \"", sql.substr(0, 60), "\""));
  }
  return Statement(std::make_unique<SqliteStatement>(stmt, db_));
}

absl::StatusOr<int64_t> SqliteDatabase::PragmaInt(absl::string_view pragma) {
  return QueryInt(absl::StrCat("PRAGMA ", pragma));
}

int SqliteDatabase::Changes() const { return sqlite3_changes(db_); }

}  // namespace fleetplan::storage
