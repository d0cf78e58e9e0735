#ifndef FLEETPLAN_STORAGE_SCHEMA_H_
#define FLEETPLAN_STORAGE_SCHEMA_H_

// The schema: an ordered list of migrations per dialect (entry i upgrades version i to i + 1; the
// version is SQLite's PRAGMA user_version or PostgreSQL's fleetplan_schema table), applied in one
// write transaction by MigrateDatabase. Never edit a migration that has shipped; append one to
// both lists.

#include <cstdint>

#include "absl/status/statusor.h"
#include "storage/sql.h"

namespace fleetplan::storage {

// Schema version this build writes.
int64_t CurrentSchemaVersion();

// Applies connection settings and migrations to `db` up to `target_version` (tests use a lower
// target to build databases at every older version). Refuses a database newer than this build
// (FAILED_PRECONDITION). Returns the resulting version.
absl::StatusOr<int64_t> MigrateDatabase(Database& db, int64_t target_version);

// Per-connection settings (WAL, synchronous, foreign keys, busy timeout) for connections opened
// on an already migrated database (the store's read connection).
absl::Status ConfigureConnection(Database& db);

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_SCHEMA_H_
