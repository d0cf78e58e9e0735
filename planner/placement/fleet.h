#ifndef FLEETPLAN_PLANNER_PLACEMENT_FLEET_H_
#define FLEETPLAN_PLANNER_PLACEMENT_FLEET_H_

// Domain types of the fleet: GPU types, nodes and their GPUs, model catalog entries, placements,
// and the FleetSnapshot the planner works on. Plain values, shared by storage/ (which persists
// them) and planner/placement (which plans on them). No behaviour beyond small lookups.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fleetplan::placement {

struct GpuType {
  std::string name;          // e.g. "H100-80GB-HBM3"
  int64_t memory_bytes = 0;  // total as the driver reports it (cudaMemGetInfo)
  int64_t memory_bandwidth_bytes_per_second = 0;
  double bf16_tflops = 0;
  double cost_per_hour = 0;       // 0: unknown
  int64_t nvlink_generation = 0;  // 0: none
};

enum class NodeState : uint8_t { kActive, kCordoned, kDraining, kDown };
const char* NodeStateName(NodeState s);
// Parses "active" | "cordoned" | "draining" | "down".
std::optional<NodeState> ParseNodeState(const std::string& s);

struct Gpu {
  int64_t index = 0;
  std::string gpu_type;
  int64_t nvlink_domain = 0;  // GPUs of one node with the same domain can do TP together
  bool healthy = true;
  std::string uuid;  // optional; joins with DCGM metrics
  // Filled by snapshots: bytes held by committed placements and unexpired reservations, and the
  // fleet generation at which anything about this GPU last changed.
  int64_t committed_bytes = 0;
  int64_t reserved_bytes = 0;
  int64_t changed_generation = 0;
};

struct Node {
  std::string name;
  std::string pool;
  std::string zone;
  std::string rack;
  std::map<std::string, std::string> labels;
  NodeState state = NodeState::kActive;
  int64_t inter_node_bandwidth_bytes_per_second = 0;
  std::vector<Gpu> gpus;  // ordered by index
  int64_t version = 0;    // bumped by every update (etag)
};

struct ModelRecord {
  std::string name;
  std::string config_json;   // the original config.json text
  std::string quantization;  // override ("" = the checkpoint's own)
  // Summary the estimator derived, so listing is cheap.
  std::string model_type;
  int64_t params = 0;
  int64_t weights_bytes = 0;       // unsharded, in the checkpoint's dtype and quantization
  int64_t kv_bytes_per_token = 0;  // unsharded, model dtype
  int64_t created_unix_ms = 0;
};

// A deployment as stored: the model and how many replicas, with the planner's full specification
// (engine profile, workload, constraints) kept as JSON text the store does not interpret.
struct DeploymentRecord {
  std::string name;
  std::string model;  // catalog model name
  int64_t replicas = 1;
  std::string spec_json;  // engine profile, workload, constraints
  int64_t created_unix_ms = 0;
};

struct GpuRef {
  std::string node;
  int64_t index = 0;
  bool operator==(const GpuRef&) const = default;
  bool operator<(const GpuRef& o) const { return node != o.node ? node < o.node : index < o.index; }
};

// One rank of a placed replica: which GPU, and the bytes reserved on it (ranks differ: embeddings
// on the first pipeline stage, lm_head on the last).
struct PlacementRank {
  int64_t rank = 0;
  GpuRef gpu;
  int64_t bytes = 0;
};

enum class PlacementState : uint8_t { kReserved, kCommitted, kReleased };
const char* PlacementStateName(PlacementState s);

struct Placement {
  int64_t id = 0;  // assigned by the store
  std::string deployment;
  std::string model;
  int64_t replica = 0;
  int64_t tp = 1;
  int64_t pp = 1;
  int64_t ep = 1;
  std::vector<PlacementRank> ranks;
  PlacementState state = PlacementState::kCommitted;
  std::string request_id;
  int64_t created_unix_ms = 0;
  int64_t expires_unix_ms = 0;  // reservations only; 0 = never
};

// A consistent picture of the fleet at one generation, read in one transaction.
struct FleetSnapshot {
  int64_t generation = 0;
  std::vector<GpuType> gpu_types;  // ordered by name
  std::vector<Node> nodes;         // ordered by name

  const GpuType* FindGpuType(const std::string& name) const;
  const Node* FindNode(const std::string& name) const;
  // placement::FreeBytes of the GPU (never negative), or 0 for an unknown type.
  int64_t FreeBytes(const Gpu& gpu) const;
};

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_FLEET_H_
