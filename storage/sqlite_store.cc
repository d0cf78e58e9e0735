#include "storage/sqlite_store.h"

#include "absl/strings/string_view.h"
#include <vector>

#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"

namespace fleetplan::storage {
namespace {

// Ordered list of migrations. Entry i upgrades a database from user_version i to i + 1. Never edit
// a migration that has shipped; append a new one.
const std::vector<absl::string_view>& Migrations() {
  static const auto* const kMigrations = new std::vector<absl::string_view>{
      // v1: fleet metadata (the fleet generation counter).
      R"sql(
        CREATE TABLE fleet_meta (
          key   TEXT PRIMARY KEY NOT NULL,
          value INTEGER NOT NULL
        ) STRICT;
        INSERT INTO fleet_meta (key, value) VALUES ('generation', 0);
      )sql",
  };
  return *kMigrations;
}

constexpr absl::string_view kSelectGeneration =
    "SELECT value FROM fleet_meta WHERE key = 'generation'";

absl::Status ConfigureConnection(Database& db) {
  // WAL: readers never block the writer and a crash never leaves a torn page in the main file.
  // synchronous=FULL: in WAL mode NORMAL is safe against a process crash but may lose the last
  // commits on power loss; a committed placement is a promise to a scheduler, so we pay one fsync
  // per commit for it. foreign_keys is off by default in SQLite and must be set per connection.
  RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(db.Exec("PRAGMA foreign_keys=ON"));
  return absl::OkStatus();
}

}  // namespace

int64_t CurrentSchemaVersion() { return static_cast<int64_t>(Migrations().size()); }

absl::StatusOr<int64_t> MigrateDatabase(Database& db, int64_t target_version) {
  RETURN_IF_ERROR(ConfigureConnection(db));
  ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db, Transaction::Mode::kWrite));
  ASSIGN_OR_RETURN(int64_t version, db.PragmaInt("user_version"));
  if (version > CurrentSchemaVersion()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database \"", db.path(), "\" has schema version ", version,
        ", newer than this fleetplan's ", CurrentSchemaVersion(), "; upgrade fleetplan"));
  }
  if (version < 0) {
    return absl::DataLossError(
        absl::StrCat("database \"", db.path(), "\" has invalid schema version ", version));
  }
  for (int64_t v = version; v < target_version; ++v) {
    absl::Status status = db.Exec(Migrations()[static_cast<size_t>(v)]);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat("migration to schema version ", v + 1, " failed: ", status.message()));
    }
  }
  const int64_t result = std::max(version, target_version);
  RETURN_IF_ERROR(db.Exec(absl::StrCat("PRAGMA user_version=", result)));
  RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const StoreOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("store path must not be empty");
  if (options.busy_timeout.count() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("busy_timeout=", options.busy_timeout.count(), "ms must be >= 0"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(options.path));
  RETURN_IF_ERROR(SqliteStatus(
      sqlite3_busy_timeout(db->raw(), static_cast<int>(options.busy_timeout.count())), db->raw(),
      "busy_timeout"));
  ASSIGN_OR_RETURN(int64_t version, MigrateDatabase(*db, CurrentSchemaVersion()));
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(db), version, options.path));
}

absl::StatusOr<int64_t> SqliteStore::FleetGeneration() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Statement stmt, db_->Prepare(kSelectGeneration));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::DataLossError("fleet_meta has no generation row");
  return stmt.ColumnInt(0);
}

}  // namespace fleetplan::storage
