#ifndef FLEETPLAN_STORAGE_PLACEMENT_STORE_H_
#define FLEETPLAN_STORAGE_PLACEMENT_STORE_H_

// PlacementStore: the narrow interface the server uses to read and change fleetplan's state (GPU
// inventory, model catalog, placements). Domain structs in and out (planner/placement/fleet.h),
// never protos. Implementation: SqlStore (storage/sql_store.h), on a file or ":memory:".
//
// Error codes (DESIGN.md): INVALID_ARGUMENT malformed input (names the field and value), NOT_FOUND,
// ALREADY_EXISTS, FAILED_PRECONDITION (refused in the current state, e.g. deleting a node that
// holds committed placements), ABORTED (optimistic concurrency: a stale etag, or a commit whose
// GPUs changed since the snapshot or would be over-committed: re-read and retry). A failed call
// writes nothing.
//
// Thread safety: implementations are safe to call from many threads at once.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "planner/placement/fleet.h"

namespace fleetplan::storage {

using placement::DeploymentRecord;
using placement::FleetSnapshot;
using placement::GpuType;
using placement::ModelRecord;
using placement::Node;
using placement::NodeState;
using placement::Placement;

struct NodeFilter {
  std::string pool;      // empty: any
  std::string zone;      // empty: any
  std::string gpu_type;  // empty: any; else nodes with at least one GPU of this type
  std::map<std::string, std::string> labels;  // all must match
};

struct NodePage {
  std::vector<Node> nodes;
  std::string next_page_token;  // empty: last page
};

// What ImportNodes did with one node of the batch.
struct NodeImportResult {
  enum class Outcome : uint8_t { kCreated, kUpdated, kUnchanged };
  std::string name;
  Outcome outcome = Outcome::kCreated;
};

// What changed in the fleet since a generation a reader holds (LoadChanges): the nodes to re-read,
// whole, or the whole fleet when that is cheaper or the GPU types changed.
struct FleetChanges {
  int64_t generation = 0;           // the fleet generation these rows are at
  int64_t as_of_unix_ms = 0;        // usage counts the reservations unexpired at this time
  int64_t next_expiry_unix_ms = 0;  // the earliest later reservation expiry (0: none)
  bool full = false;                // snapshot.nodes is the whole fleet
  // gpu_types: all, always. nodes: every node (full), or the changed ones that exist, by name.
  FleetSnapshot snapshot;
  std::vector<std::string> removed;  // changed nodes that no longer exist (not full), by name
};

struct CommitRequest {
  std::string request_id;           // idempotency key: a retry returns the first result
  int64_t snapshot_generation = 0;  // the generation the plan was made from
  std::vector<Placement> placements;
  // 0: commit. > 0: reserve for this long; reservations stop counting once expired.
  int64_t reserve_ttl_ms = 0;
  // Deployment records written in the same transaction (created, or updated to this spec): a
  // refused commit leaves none behind.
  std::vector<DeploymentRecord> deployments;
};

struct CommitResult {
  std::vector<int64_t> placement_ids;  // in request order
  int64_t generation = 0;              // fleet generation after the commit
  bool replayed = false;               // true when this request_id was seen before
};

// Options of a write. validate_only runs the whole write — validation, existence and reference
// checks inside the transaction — and rolls it back, so it refuses exactly what the write would.
struct WriteOptions {
  bool validate_only = false;
};

struct PlacementFilter {
  std::string deployment;  // empty: any
  std::string model;       // empty: any
  bool include_released = false;
  int64_t after_id = 0;  // only placements with a larger id (the previous page's last)
  int64_t limit = 0;     // at most this many (0: all)
};

class PlacementStore {
 public:
  virtual ~PlacementStore() = default;

  virtual int64_t SchemaVersion() const = 0;
  // Bumped by every change that affects capacity.
  virtual absl::StatusOr<int64_t> FleetGeneration() = 0;
  // The store's clock (Unix ms): what reservation expiry is measured against.
  virtual int64_t NowUnixMs() = 0;

  // ---- GPU types
  virtual absl::Status CreateGpuType(const GpuType& type, const WriteOptions& options) = 0;
  absl::Status CreateGpuType(const GpuType& type) { return CreateGpuType(type, {}); }
  virtual absl::StatusOr<GpuType> GetGpuType(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<GpuType>> ListGpuTypes() = 0;
  // FAILED_PRECONDITION while GPUs of this type exist.
  virtual absl::Status DeleteGpuType(const std::string& name) = 0;

  // ---- Nodes and their GPUs
  virtual absl::StatusOr<Node> CreateNode(const Node& node, const WriteOptions& options) = 0;
  absl::StatusOr<Node> CreateNode(const Node& node) { return CreateNode(node, {}); }
  virtual absl::StatusOr<Node> GetNode(const std::string& name) = 0;
  // Ordered by name; page_token is the last name of the previous page.
  virtual absl::StatusOr<NodePage> ListNodes(const NodeFilter& filter, int64_t page_size,
                                             const std::string& page_token) = 0;
  // Creates or replaces (by name) every node of `nodes` in one transaction: all of them or none.
  // A node whose inventory is already what it says is left as is (unchanged). The rules are
  // CreateNode's and UpdateNode's (without the version check): an invalid node, an unknown GPU
  // type, a GPU UUID held twice, or a change to a GPU holding placements refuses the whole batch
  // with every problem named (INVALID_ARGUMENT, or FAILED_PRECONDITION for placements).
  // validate_only runs it all and writes nothing. Results are in request order.
  virtual absl::StatusOr<std::vector<NodeImportResult>> ImportNodes(
      const std::vector<Node>& nodes, const WriteOptions& options) = 0;
  // Replaces the node's attributes and GPUs when `expected_version` matches (ABORTED otherwise).
  // GPUs that hold placements cannot be removed or change type (FAILED_PRECONDITION).
  virtual absl::StatusOr<Node> UpdateNode(const Node& node, int64_t expected_version) = 0;
  // Draining or taking down a node that holds committed placements is FAILED_PRECONDITION
  // naming them, unless `force`.
  virtual absl::StatusOr<Node> SetNodeState(const std::string& name, NodeState state,
                                            bool force) = 0;
  // FAILED_PRECONDITION naming the placements when it holds any, unless `force` (which releases
  // them).
  virtual absl::Status DeleteNode(const std::string& name, bool force) = 0;

  // ---- Model catalog
  virtual absl::Status CreateModel(const ModelRecord& model, const WriteOptions& options) = 0;
  absl::Status CreateModel(const ModelRecord& model) { return CreateModel(model, {}); }
  virtual absl::StatusOr<ModelRecord> GetModel(const std::string& name) = 0;
  // Without config_json, for cheap listing.
  virtual absl::StatusOr<std::vector<ModelRecord>> ListModels() = 0;
  // FAILED_PRECONDITION while placements of the model are committed or reserved.
  virtual absl::Status DeleteModel(const std::string& name) = 0;

  // ---- Deployments
  // NOT_FOUND when the model is not in the catalog.
  virtual absl::Status CreateDeployment(const DeploymentRecord& deployment) = 0;
  virtual absl::StatusOr<DeploymentRecord> GetDeployment(const std::string& name) = 0;
  virtual absl::StatusOr<std::vector<DeploymentRecord>> ListDeployments() = 0;
  // FAILED_PRECONDITION while the deployment has committed or reserved placements.
  virtual absl::Status DeleteDeployment(const std::string& name) = 0;

  // ---- Placements
  // Atomic: all placements are stored or none. ABORTED when a GPU it touches changed after
  // snapshot_generation, is not schedulable (node not active, GPU unhealthy), or would be
  // over-committed. Idempotent by request_id.
  virtual absl::StatusOr<CommitResult> CommitPlacements(const CommitRequest& request) = 0;
  // Turns the unexpired reservations made by `reservation_request_id` into committed placements,
  // writing `deployments` in the same transaction. ABORTED when one expired or its node stopped
  // being schedulable since. Idempotent.
  virtual absl::StatusOr<CommitResult> CommitReservation(
      const std::string& reservation_request_id,
      const std::vector<DeploymentRecord>& deployments) = 0;
  // Idempotent: releasing a released placement returns it unchanged.
  virtual absl::StatusOr<Placement> ReleasePlacement(int64_t id) = 0;
  virtual absl::StatusOr<Placement> GetPlacement(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<Placement>> ListPlacements(const PlacementFilter& filter) = 0;

  // ---- Change notifications
  // Calls `on_change`, on another thread, soon after any writer (this server, another replica, a
  // tool) moved the fleet generation, where the database can push that (PostgreSQL's
  // LISTEN/NOTIFY). Returns an id for Unsubscribe, or 0 when there is no push (SQLite): the caller
  // polls FleetGeneration, which it must do anyway as the fallback. `on_change` must be quick.
  virtual int64_t SubscribeToChanges(std::function<void()> on_change) {
    (void)on_change;
    return 0;
  }
  // After it returns, the callback of `id` is not running and will not be called again.
  virtual void Unsubscribe(int64_t id) { (void)id; }

  // ---- Snapshot
  // All GPU types, nodes and GPUs with their committed and reserved bytes, in one read
  // transaction.
  virtual absl::StatusOr<FleetSnapshot> LoadSnapshot() = 0;
  // In one read transaction: the nodes written since `since_generation` (or at it: see the v5
  // migration) and those whose reservations expired after `since_unix_ms`, or the whole fleet
  // (full) when since_generation <= 0, the GPU types changed or more nodes changed than
  // re-reading one by one is worth.
  virtual absl::StatusOr<FleetChanges> LoadChanges(int64_t since_generation,
                                                   int64_t since_unix_ms) = 0;
};

}  // namespace fleetplan::storage

#endif  // FLEETPLAN_STORAGE_PLACEMENT_STORE_H_
