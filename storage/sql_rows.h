#ifndef FLEETPLAN_STORAGE_SQL_ROWS_H_
#define FLEETPLAN_STORAGE_SQL_ROWS_H_

// Internal to SqlStore: the SQL every repository shares (one definition of an "active"
// placement), row readers, and small helpers. SQL lives beside the code that binds it; only what
// two files need is here.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "planner/common/status_macros.h"
#include "planner/placement/fleet.h"
#include "storage/sqlite.h"

namespace fleetplan::storage::internal {

// An active placement holds GPU memory: committed, or reserved and not yet expired. `alias` is the
// placements table's alias in the query; ?1 is bound to now (Unix ms) in every query using it.
std::string ActivePredicate(absl::string_view alias);
// The same for a placement's rank (placement_gpus row, alias `rank`) joined with its placement:
// the rank of a released placement is marked released (schema v6), so the queries of what a GPU
// holds read only live ranks through the partial index, not the GPU's whole history.
std::string ActiveRankPredicate(absl::string_view rank, absl::string_view placement);

// Reads every remaining row of `stmt` with `read`.
template <typename Read>
auto ReadRows(Statement& stmt, Read read) -> absl::StatusOr<std::vector<decltype(read(stmt))>> {
  std::vector<decltype(read(stmt))> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(read(stmt));
  }
  return out;
}

// The one row of a single-row query, read with `read`; `missing` when there is none.
template <typename Read>
auto ReadOne(Statement& stmt, Read read, const absl::Status& missing)
    -> absl::StatusOr<decltype(read(stmt))> {
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return missing;
  return read(stmt);
}

placement::GpuType ReadGpuType(const Statement& s);
placement::Node ReadNode(const Statement& s);  // without GPUs
placement::Gpu ReadGpu(const Statement& s);
placement::DeploymentRecord ReadDeployment(const Statement& s);
placement::ModelRecord ReadModel(const Statement& s);

inline constexpr absl::string_view kSelectGpuTypes =
    "SELECT name, memory_bytes, memory_bandwidth_bytes_per_second, bf16_tflops, cost_per_hour, "
    "nvlink_generation FROM gpu_types ORDER BY name";
inline constexpr absl::string_view kNodeColumns =
    "name, pool, zone, rack, labels_json, state, inter_node_bandwidth_bytes_per_second, version";
inline constexpr absl::string_view kGpuColumns =
    "node, idx, gpu_type, nvlink_domain, healthy, uuid, changed_generation";

// Appends each row of a GPU query (kGpuColumns, ordered by node then index) to its node in
// `nodes` (ordered by name). With every_node_listed, a GPU of a node not in `nodes` is DATA_LOSS;
// otherwise it is skipped (a range query over a subset).
absl::Status AttachGpus(Statement& gpus, std::vector<placement::Node>& nodes,
                        bool every_node_listed);

// Fills committed/reserved bytes of `nodes`' GPUs from a usage query's rows (node, idx, state,
// sum), both ordered by node then index.
absl::Status FillUsage(Statement& usage, std::vector<placement::Node>& nodes);

// Usage rows (node, idx, state, bytes) of active placements on nodes in [?2, ?3] (?1 = now).
const std::string& UsageOfNodeRangeSql();

// Fills `nodes` (sorted by name, consecutive in the table's order between their first and last
// names) with their GPUs and usage: two range queries, not one per node.
absl::Status FillGpusAndUsage(Database& db, int64_t now, std::vector<placement::Node>& nodes);

absl::StatusOr<placement::Node> ReadNodeWithGpus(Database& db, const std::string& name,
                                                 int64_t now);

// Active placement ids (?1 = now, ?2 = key) selected by `sql`.
absl::StatusOr<std::vector<int64_t>> ActiveIds(Database& db, absl::string_view sql, int64_t now,
                                               const std::string& key);

// Placements with their ranks, in id order: `sql` selects placement rows (kPlacementColumns) and
// `ranks_sql` their ranks (placement_id, rank, node, idx, bytes) ordered by placement_id, rank,
// both with the same bound parameters applied by `bind`.
absl::StatusOr<std::vector<placement::Placement>> ReadPlacements(
    Database& db, absl::string_view sql, absl::string_view ranks_sql,
    const std::function<void(Statement&)>& bind);
absl::StatusOr<placement::Placement> ReadPlacement(Database& db, int64_t id);

inline constexpr absl::string_view kPlacementColumns =
    "p.id, p.deployment, p.model, p.replica, p.tp, p.pp, p.ep, p.state, p.request_id, "
    "p.created_unix_ms, p.expires_unix_ms";

// fleet_meta's 'clock_floor_ms': the latest wall-clock time a write saw (SqlStore::Now).
inline constexpr absl::string_view kSelectClockFloor =
    "SELECT value FROM fleet_meta WHERE key = 'clock_floor_ms'";
// Raises the stored clock floor to ?1 (creating the row on first use).
absl::Status RaiseClockFloor(Database& db, int64_t now);

std::string IdList(const std::vector<int64_t>& ids);
absl::StatusOr<int64_t> BumpGeneration(Database& db);
absl::StatusOr<int64_t> CurrentGeneration(Database& db);
absl::Status ReleaseIds(Database& db, const std::vector<int64_t>& ids, int64_t now);
absl::Status TouchGpus(Database& db, const std::vector<placement::GpuRef>& gpus,
                       int64_t generation);
std::string LabelsJson(const std::map<std::string, std::string>& labels);

}  // namespace fleetplan::storage::internal

#endif  // FLEETPLAN_STORAGE_SQL_ROWS_H_
