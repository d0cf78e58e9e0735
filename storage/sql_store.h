#ifndef FLEETPLAN_STORAGE_SQL_STORE_H_
#define FLEETPLAN_STORAGE_SQL_STORE_H_

// SqlStore: PlacementStore on SQL: an embedded SQLite file (the zero-setup default) or a
// PostgreSQL database shared by several fleetpland replicas (StoreOptions::path a postgresql://
// URI). Both run the same repositories, validation and commit checks through the SQL layer of
// storage/sql.h; only the schema's spelling and the backend differ. On PostgreSQL a commit's
// checks and writes hold the database-wide writers' lock (storage/postgres.h), so replicas can
// never double-book a GPU between them, and the schema refuses committed bytes beyond a GPU's
// memory even if a server were wrong.
//
// Open() applies, in one transaction, every migration the database has not seen yet and refuses
// one written by a newer fleetplan with FAILED_PRECONDITION. A SqlStore that exists is open and
// migrated (factory, not Init()).
//
// Thread safety: all methods may be called concurrently. Writes go through one connection guarded
// by a mutex; reads use a second connection with its own mutex (SQLite's WAL and PostgreSQL's
// snapshots let it read a consistent state while a commit is being written), so a metrics scrape
// or a listing does not queue behind commits. An in-memory SQLite store has one connection.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "planner/common/mutex.h"
#include "storage/placement_store.h"
#include "storage/postgres_listener.h"
#include "storage/schema.h"
#include "storage/sql.h"

namespace fleetplan::storage {

struct StoreOptions {
  // Path of the SQLite database file, created when missing; ":memory:" gives a private in-memory
  // store. Or a PostgreSQL connection URI (postgresql://user@host:port/db?..., libpq's syntax,
  // including several hosts with target_session_attrs=read-write for failover at connect time).
  std::string path = "fleetplan.db";
  // How long a writer waits for another connection's lock before failing with UNAVAILABLE
  // (PostgreSQL: the session's lock_timeout).
  std::chrono::milliseconds busy_timeout = std::chrono::milliseconds(5000);
  // Wall clock in Unix milliseconds (reservation expiry, timestamps). Null: the system clock.
  // Reservations expire at a wall-clock instant stored with them (so every process on the database
  // agrees). The store never lets its clock run backwards: it uses the latest time any write saw
  // (kept in the database), so a clock stepped back neither revives an expired reservation nor
  // extends one; a clock stepped forward expires reservations early (they are short-lived hints
  // that CommitPlan re-checks).
  std::function<int64_t()> now_unix_ms;
  // Caps the database file (PRAGMA max_page_count); 0: no cap beyond the disk. Writes past it fail
  // with RESOURCE_EXHAUSTED and write nothing, like a full disk.
  int64_t max_database_bytes = 0;
};

class SqlStore final : public PlacementStore {
 public:
  static absl::StatusOr<std::unique_ptr<SqlStore>> Open(const StoreOptions& options);

  int64_t SchemaVersion() const override { return schema_version_; }
  absl::StatusOr<int64_t> FleetGeneration() override;
  int64_t NowUnixMs() override { return Now(); }

  using PlacementStore::CreateGpuType;
  using PlacementStore::CreateModel;
  using PlacementStore::CreateNode;

  absl::Status CreateGpuType(const GpuType& type, const WriteOptions& options) override;
  absl::StatusOr<GpuType> GetGpuType(const std::string& name) override;
  absl::StatusOr<std::vector<GpuType>> ListGpuTypes() override;
  absl::Status DeleteGpuType(const std::string& name) override;

  absl::StatusOr<Node> CreateNode(const Node& node, const WriteOptions& options) override;
  absl::StatusOr<Node> GetNode(const std::string& name) override;
  absl::StatusOr<NodePage> ListNodes(const NodeFilter& filter, int64_t page_size,
                                     const std::string& page_token) override;
  absl::StatusOr<std::vector<NodeImportResult>> ImportNodes(const std::vector<Node>& nodes,
                                                            const WriteOptions& options) override;
  absl::StatusOr<Node> UpdateNode(const Node& node, int64_t expected_version) override;
  absl::StatusOr<Node> SetNodeState(const std::string& name, NodeState state, bool force) override;
  absl::Status DeleteNode(const std::string& name, bool force) override;

  absl::Status CreateModel(const ModelRecord& model, const WriteOptions& options) override;
  absl::StatusOr<ModelRecord> GetModel(const std::string& name) override;
  absl::StatusOr<std::vector<ModelRecord>> ListModels() override;
  absl::Status DeleteModel(const std::string& name) override;

  absl::Status CreateDeployment(const DeploymentRecord& deployment) override;
  absl::StatusOr<DeploymentRecord> GetDeployment(const std::string& name) override;
  absl::StatusOr<std::vector<DeploymentRecord>> ListDeployments() override;
  absl::Status DeleteDeployment(const std::string& name) override;

  absl::StatusOr<CommitResult> CommitPlacements(const CommitRequest& request) override;
  absl::StatusOr<CommitResult> CommitReservation(
      const std::string& reservation_request_id,
      const std::vector<DeploymentRecord>& deployments) override;
  absl::StatusOr<Placement> ReleasePlacement(int64_t id) override;
  absl::StatusOr<Placement> GetPlacement(int64_t id) override;
  absl::StatusOr<std::vector<Placement>> ListPlacements(const PlacementFilter& filter) override;

  int64_t SubscribeToChanges(std::function<void()> on_change) override;
  void Unsubscribe(int64_t id) override;

  absl::StatusOr<FleetSnapshot> LoadSnapshot() override;
  absl::StatusOr<FleetChanges> LoadChanges(int64_t since_generation,
                                           int64_t since_unix_ms) override;

  const std::string& path() const { return path_; }
  // PRAGMA integrity_check: OK or DATA_LOSS with SQLite's report.
  absl::Status CheckIntegrity();
  // Changes the database size cap at run time (StoreOptions::max_database_bytes; 0 lifts it).
  absl::Status SetMaxDatabaseBytes(int64_t bytes);
  // Group commit counters: transactions committed by InWriteGroup, and the writes they held.
  int64_t group_batches() const { return group_batches_.load(); }
  int64_t group_writes() const { return group_writes_.load(); }

 private:
  SqlStore(std::unique_ptr<Database> db, std::vector<std::unique_ptr<Database>> readers,
              int64_t schema_version, std::string path, std::function<int64_t()> clock)
      : dialect_(db->dialect()),
        db_(std::move(db)),
        readers_(std::move(readers)),
        schema_version_(schema_version),
        path_(std::move(path)),
        clock_(std::move(clock)) {}

  // The wall clock, never earlier than the latest time a write saw (see StoreOptions).
  int64_t Now();

  // Group commit: runs `write` (which uses db_ and begins its own Transaction) inside one write
  // transaction shared with the writes other threads submit meanwhile, and returns once that
  // transaction is durable: `write`'s own status, or the shared COMMIT's failure. Each write is a
  // savepoint, so a refused one rolls back alone; the batch costs one fsync instead of one per
  // write, and no answer is given before its write is on disk. Batches form naturally: writes
  // that arrive while a batch commits make the next one (no waiting window).
  absl::Status InWriteGroup(std::function<absl::Status()> write);
  absl::StatusOr<CommitResult> CommitPlacementsLocked(const CommitRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CommitResult> CommitReservationLocked(
      const std::string& reservation_request_id, const std::vector<DeploymentRecord>& deployments)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Placement> ReleasePlacementLocked(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The whole fleet at `now`, inside a read transaction the caller holds on `db`.
  static absl::StatusOr<FleetSnapshot> ReadSnapshot(Database& db, int64_t now);

  // A read connection held for one call: an idle one of the pool (waiting while all are busy), or
  // the write connection of an in-memory store, locked. Given back when the lease goes.
  class ReadLease {
   public:
    ReadLease(SqlStore* store, Database* db, bool write_connection)
        : store_(store), db_(db), write_connection_(write_connection) {}
    ReadLease(const ReadLease&) = delete;
    ReadLease& operator=(const ReadLease&) = delete;
    ~ReadLease() { store_->Release(db_, write_connection_); }
    Database& db() const { return *db_; }

   private:
    SqlStore* store_;
    Database* db_;
    bool write_connection_;
  };
  ReadLease AcquireRead() ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void Release(Database* db, bool write_connection) ABSL_NO_THREAD_SAFETY_ANALYSIS;

  const Dialect dialect_;
  // PostgreSQL: the target with its password (the listener's), and the subscribers it calls.
  std::string conninfo_;
  Mutex subscribers_mu_;
  std::map<int64_t, std::function<void()>> subscribers_ ABSL_GUARDED_BY(subscribers_mu_);
  int64_t next_subscriber_ ABSL_GUARDED_BY(subscribers_mu_) = 0;
  std::unique_ptr<PostgresListener> listener_ ABSL_GUARDED_BY(subscribers_mu_);
  Mutex mu_;
  std::unique_ptr<Database> db_ ABSL_GUARDED_BY(mu_);
  // The group commit's queue (InWriteGroup).
  struct GroupWrite {
    std::function<absl::Status()> write;
    absl::Status status;
    bool done = false;
  };
  Mutex group_mu_;
  absl::CondVar group_changed_;  // a batch finished, or leadership was given up
  std::vector<GroupWrite*> group_queue_ ABSL_GUARDED_BY(group_mu_);
  bool group_leading_ ABSL_GUARDED_BY(group_mu_) = false;
  std::atomic<int64_t> group_batches_{0}, group_writes_{0};
  // The read connections (empty for ":memory:", whose reads use db_ under mu_): one for a
  // SQLite file (WAL readers never wait for the writer), several for PostgreSQL, so that
  // concurrent plans and listings of one replica do not queue behind each other's reads.
  const std::vector<std::unique_ptr<Database>> readers_;
  Mutex pool_mu_;
  absl::CondVar pool_freed_;
  std::vector<Database*> idle_readers_ ABSL_GUARDED_BY(pool_mu_);
  const int64_t schema_version_;
  const std::string path_;
  const std::function<int64_t()> clock_;
  std::atomic<int64_t> clock_floor_{0};  // the latest time seen, in this process and the database
};

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_SQL_STORE_H_
