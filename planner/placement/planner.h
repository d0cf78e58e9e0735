#ifndef FLEETPLAN_PLANNER_PLACEMENT_PLANNER_H_
#define FLEETPLAN_PLANNER_PLACEMENT_PLANNER_H_

// The placement planner: FleetSnapshot + PlacementRequest -> Plan. Pure and deterministic: no I/O,
// no clock, no global state; the same input gives the same plan.
//
// For every deployment it enumerates candidates per allowed GPU type — tensor parallel sizes that
// divide the attention heads and fit one NVLink domain, pipeline stages across domains of one
// pool, expert parallelism for MoE — asks the estimator for each rank's bytes (vLLM, with the KV
// cache holding `concurrency` sequences of `context_tokens`), and keeps those that fit a GPU with
// the requested headroom, cheapest first. A strategy then places every replica of every deployment:
//   kPack   largest and scarcest first, best fit onto the NVLink domains with the fewest free GPUs
//           that still fit (limits fragmentation), then re-pack passes in other orders keeping the
//           best plan (fewest unplaced, then GPUs, then cost);
//   kSpread the same candidates, worst fit (the emptiest domains) to spread load;
//   kExact  an integer program (CBC) over exclusive, single-stage placements: optimal GPU count
//           for small problems within a solver time limit; falls back to kPack otherwise.
// The plan reports a lower bound on the GPUs any plan needs (each replica's smallest candidate,
// ignoring topology) and the gap to it, and for each replica it could not place the reason, with
// FAILED_PRECONDITION (no candidate fits this fleet even empty) or RESOURCE_EXHAUSTED (fits when
// capacity frees).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/model_spec.h"
#include "planner/placement/fleet.h"
#include "planner/placement/headroom.h"

namespace fleetplan::placement {

enum class Spread : uint8_t { kNone, kNodes, kZones };

struct DeploymentSpec {
  std::string name;
  std::string model;                              // catalog name (for reports)
  const estimator::ModelSpec* spec = nullptr;     // resolved by the caller; must outlive the call
  estimator::VllmConfig vllm;                     // engine profile (max_model_len, batched tokens ...)
  bool kv_fp8 = false;
  int64_t concurrency = 1;     // sequences the replica's KV cache must hold at once
  int64_t context_tokens = 0;  // tokens per sequence; 0: max_model_len
  int64_t replicas = 1;
  std::vector<std::string> gpu_types;  // allowed; empty: any
  std::vector<std::string> pools;      // allowed; empty: any
  std::vector<std::string> zones;      // allowed; empty: any
  bool shared = false;                 // share GPUs with other instances by memory
  Spread spread = Spread::kNone;       // replicas on distinct nodes / zones
  double min_free_ratio = 0.05;        // keep at least this share of each GPU free
  int64_t max_tp = 8;
  int64_t max_pp = 4;
};

struct PlacementRequest {
  std::vector<DeploymentSpec> deployments;
};

enum class Strategy : uint8_t { kPack, kSpread, kExact };

struct PlannerOptions {
  Strategy strategy = Strategy::kPack;
  // kPack re-pack passes (each an extra full packing in another order: smallest first, scarcest
  // first, request order). A pass budget, not a clock: the planner reads no clock.
  int64_t improvement_passes = 3;
  // kExact: largest problem (replicas x candidates x domains variables) handed to CBC, and its
  // time limit (CBC's own clock).
  int64_t exact_max_variables = 20000;
  double exact_time_limit_seconds = 10;
};

struct ReplicaPlacement {
  std::string deployment;
  std::string model;
  int64_t replica = 0;
  std::string gpu_type;
  int64_t tp = 1, pp = 1, ep = 1;
  std::vector<PlacementRank> ranks;  // rank = stage * tp + tp_rank
  int64_t kv_cache_tokens = 0;       // what the replica's KV cache holds at its utilization
  double gpu_memory_utilization = 0; // for --gpu-memory-utilization
  RiskLevel risk = RiskLevel::kLow;
  std::string launch_command;        // vllm serve <model> --tensor-parallel-size ...
  std::vector<std::string> cuda_visible_devices;  // per node, "node:0,1,2,3"
};

struct Unplaced {
  std::string deployment;
  int64_t replica = 0;
  bool retryable = false;  // true: RESOURCE_EXHAUSTED (capacity); false: FAILED_PRECONDITION
  std::string reason;
};

struct Plan {
  int64_t snapshot_generation = 0;
  std::vector<ReplicaPlacement> replicas;
  std::vector<Unplaced> unplaced;
  int64_t gpus_used = 0;
  double cost_per_hour = 0;
  int64_t lower_bound_gpus = 0;  // over the placed replicas
  double gap = 0;                // gpus_used / lower_bound_gpus - 1
  std::string strategy_used;     // "pack", "spread", "exact" (or "pack (exact fallback)")
  bool exact_optimal = false;
};

// INVALID_ARGUMENT for a malformed request (names the deployment and field).
absl::StatusOr<Plan> PlanPlacement(const FleetSnapshot& snapshot, const PlacementRequest& request,
                                   const PlannerOptions& options = {});

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_PLANNER_H_
