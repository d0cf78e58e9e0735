#ifndef FLEETPLAN_STORAGE_SQLITE_STORE_H_
#define FLEETPLAN_STORAGE_SQLITE_STORE_H_

// SqliteStore: PlacementStore on an embedded SQLite file (the zero-setup default).
//
// Open() applies, in one transaction, every migration the file has not seen yet (schema version
// in PRAGMA user_version) and refuses a file written by a newer fleetplan with
// FAILED_PRECONDITION. A SqliteStore that exists is open and migrated (factory, not Init()).
//
// Thread safety: all methods may be called concurrently; one connection guarded by a mutex.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "storage/placement_store.h"
#include "storage/sqlite.h"

namespace fleetplan::storage {

struct StoreOptions {
  // Path of the database file; created when missing. ":memory:" gives a private in-memory store.
  std::string path = "fleetplan.db";
  // How long a writer waits for another connection's lock before failing with UNAVAILABLE.
  std::chrono::milliseconds busy_timeout = std::chrono::milliseconds(5000);
};

// Schema version this build writes. Migrations()[i] upgrades version i to i + 1.
int64_t CurrentSchemaVersion();

class SqliteStore final : public PlacementStore {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const StoreOptions& options);

  int64_t SchemaVersion() const override { return schema_version_; }
  absl::StatusOr<int64_t> FleetGeneration() override;

  const std::string& path() const { return path_; }

 private:
  SqliteStore(std::unique_ptr<Database> db, int64_t schema_version, std::string path)
      : db_(std::move(db)), schema_version_(schema_version), path_(std::move(path)) {}

  absl::Mutex mu_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
  const int64_t schema_version_;
  const std::string path_;
};

// Applies connection settings and migrations to `db` up to `target_version` (tests use a lower
// target to build databases at every older version). Returns the resulting version.
absl::StatusOr<int64_t> MigrateDatabase(Database& db, int64_t target_version);

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_SQLITE_STORE_H_
