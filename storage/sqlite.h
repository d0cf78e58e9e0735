#ifndef FLEETPLAN_STORAGE_SQLITE_H_
#define FLEETPLAN_STORAGE_SQLITE_H_

// The SQLite backend of the SQL layer (storage/sql.h): one sqlite3* connection per Database.

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/sql.h"

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

class SqliteDatabase final : public Database {
 public:
  // Opens (creating if needed) the database at `path` (":memory:" for a private in-memory one).
  static absl::StatusOr<std::unique_ptr<SqliteDatabase>> Open(const std::string& path);
  ~SqliteDatabase() override;

  Dialect dialect() const override { return Dialect::kSqlite; }
  absl::Status Exec(absl::string_view sql) override;
  absl::StatusOr<Statement> Prepare(absl::string_view sql) override;
  int Changes() const override;
  absl::string_view BeginWriteSql() const override { return "BEGIN IMMEDIATE"; }
  absl::string_view BeginReadSql() const override { return "BEGIN DEFERRED"; }

  // Reads a single integer PRAGMA, e.g. PragmaInt("user_version").
  absl::StatusOr<int64_t> PragmaInt(absl::string_view pragma);
  sqlite3* raw() const { return db_; }

 private:
  SqliteDatabase(sqlite3* db, std::string path) : Database(std::move(path)), db_(db) {}
  sqlite3* db_;
};

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_SQLITE_H_
