#ifndef FLEETPLAN_PLANNER_PLACEMENT_HEADROOM_H_
#define FLEETPLAN_PLANNER_PLACEMENT_HEADROOM_H_

// Fleet headroom from a snapshot: per GPU, node, pool, GPU type and the whole fleet, the total,
// reserved, committed and free bytes, the headroom ratio, a memory-risk level, fully free GPUs, and
// the largest wholly free NVLink domain (what decides whether a tp=8 replica still fits).
// Pure; used by the HeadroomService and the Prometheus exporter alike.

#include <cstdint>
#include <string>
#include <vector>

#include "planner/common/risk.h"
#include "planner/placement/fleet.h"

namespace fleetplan::placement {

// Risk is planner/common/risk.h's RiskOfUse of the bytes promised on a GPU; aggregates take the
// worst of their GPUs.

struct Headroom {
  std::string key;
  int64_t total_bytes = 0;
  int64_t reserved_bytes = 0;
  int64_t committed_bytes = 0;
  int64_t free_bytes = 0;
  double headroom_ratio = 0;
  Risk risk = Risk::kLow;
  int64_t gpus = 0;
  int64_t free_gpus = 0;
  int64_t largest_free_nvlink_domain = 0;
};

struct GpuHeadroom {
  std::string node;
  int64_t index = 0;
  std::string pool;
  std::string gpu_type;
  std::string uuid;
  Headroom headroom;
};

struct FleetHeadroom {
  int64_t generation = 0;
  Headroom fleet;
  std::vector<Headroom> pools;      // by name
  std::vector<Headroom> gpu_types;  // by name
  std::vector<Headroom> nodes;      // by name
  std::vector<GpuHeadroom> gpus;    // by node, index (when requested)
};

// One GPU's headroom, the unit every aggregate sums (key "node/index"; `type` null for a type the
// fleet does not define: no memory). largest_free_nvlink_domain is 1 for a wholly free GPU.
Headroom GpuHeadroomOf(const Node& node, const Gpu& gpu, const GpuType* type);

// headroom_ratio from the bytes.
void FinishHeadroom(Headroom& h);

// Nodes that are cordoned, draining or down offer no free capacity (their free bytes count as 0,
// their GPUs are not free); unhealthy GPUs likewise (placement::Schedulable, FreeBytes). Sums
// saturate at INT64_MAX rather than overflow.
FleetHeadroom ComputeHeadroom(const FleetSnapshot& snapshot, bool include_gpus);

// Headroom as it would be once `ranks` (a plan's placements) are reserved on top of `snapshot`.
FleetHeadroom HeadroomAfter(FleetSnapshot snapshot, const std::vector<PlacementRank>& ranks,
                            bool include_gpus);

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_HEADROOM_H_
