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
#include <functional>
#include <memory>
#include <string>
#include <vector>

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
  // Wall clock in Unix milliseconds (reservation expiry, timestamps). Null: the system clock.
  std::function<int64_t()> now_unix_ms;
};

// Schema version this build writes. Migrations()[i] upgrades version i to i + 1.
int64_t CurrentSchemaVersion();

class SqliteStore final : public PlacementStore {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const StoreOptions& options);

  int64_t SchemaVersion() const override { return schema_version_; }
  absl::StatusOr<int64_t> FleetGeneration() override;

  absl::Status CreateGpuType(const GpuType& type) override;
  absl::StatusOr<GpuType> GetGpuType(const std::string& name) override;
  absl::StatusOr<std::vector<GpuType>> ListGpuTypes() override;
  absl::Status DeleteGpuType(const std::string& name) override;

  absl::StatusOr<Node> CreateNode(const Node& node) override;
  absl::StatusOr<Node> GetNode(const std::string& name) override;
  absl::StatusOr<NodePage> ListNodes(const NodeFilter& filter, int64_t page_size,
                                     const std::string& page_token) override;
  absl::StatusOr<Node> UpdateNode(const Node& node, int64_t expected_version) override;
  absl::StatusOr<Node> SetNodeState(const std::string& name, NodeState state, bool force) override;
  absl::Status DeleteNode(const std::string& name, bool force) override;

  absl::Status CreateModel(const ModelRecord& model) override;
  absl::StatusOr<ModelRecord> GetModel(const std::string& name) override;
  absl::StatusOr<std::vector<ModelRecord>> ListModels() override;
  absl::Status DeleteModel(const std::string& name) override;

  absl::Status CreateDeployment(const DeploymentRecord& deployment) override;
  absl::StatusOr<DeploymentRecord> GetDeployment(const std::string& name) override;
  absl::StatusOr<std::vector<DeploymentRecord>> ListDeployments() override;
  absl::Status DeleteDeployment(const std::string& name) override;

  absl::StatusOr<CommitResult> CommitPlacements(const CommitRequest& request) override;
  absl::StatusOr<CommitResult> CommitReservation(const std::string& reservation_request_id) override;
  absl::StatusOr<Placement> ReleasePlacement(int64_t id) override;
  absl::StatusOr<Placement> GetPlacement(int64_t id) override;
  absl::StatusOr<std::vector<Placement>> ListPlacements(const PlacementFilter& filter) override;

  absl::StatusOr<FleetSnapshot> LoadSnapshot() override;

  const std::string& path() const { return path_; }
  // PRAGMA integrity_check: OK or DATA_LOSS with SQLite's report.
  absl::Status CheckIntegrity();

 private:
  SqliteStore(std::unique_ptr<Database> db, int64_t schema_version, std::string path,
              std::function<int64_t()> clock)
      : db_(std::move(db)), schema_version_(schema_version), path_(std::move(path)),
        clock_(std::move(clock)) {}

  int64_t Now() const { return clock_(); }

  absl::Mutex mu_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
  const int64_t schema_version_;
  const std::string path_;
  const std::function<int64_t()> clock_;
};

// Applies connection settings and migrations to `db` up to `target_version` (tests use a lower
// target to build databases at every older version). Returns the resulting version.
absl::StatusOr<int64_t> MigrateDatabase(Database& db, int64_t target_version);

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_SQLITE_STORE_H_
