#ifndef FLEETPLAN_PLANNER_PLACEMENT_FIT_H_
#define FLEETPLAN_PLANNER_PLACEMENT_FIT_H_

// "Schedulable" and "fits on this GPU": the domain rules that the planner (choosing GPUs), the
// store (refusing an over-committing commit inside its transaction) and headroom (reporting free
// bytes) all call, so the three cannot disagree (Nomad's AllocsFit, called by its bin-packer and
// its plan applier alike).

#include <cstdint>

#include "planner/placement/fleet.h"

namespace fleetplan::placement {

// A GPU can take new placements only on an active node and while healthy.
inline bool Schedulable(NodeState node_state, bool gpu_healthy) {
  return node_state == NodeState::kActive && gpu_healthy;
}
inline bool Schedulable(const Node& node, const Gpu& gpu) {
  return Schedulable(node.state, gpu.healthy);
}

// Bytes of a GPU of `memory_bytes` not promised to placements (`used_bytes`: committed plus
// unexpired reservations). Never negative: an over-promised GPU has 0 free.
inline int64_t FreeBytes(int64_t memory_bytes, int64_t used_bytes) {
  if (used_bytes <= 0) return memory_bytes > 0 ? memory_bytes : 0;
  return used_bytes >= memory_bytes ? 0 : memory_bytes - used_bytes;
}

// Whether `bytes` more fit into `free_bytes` while leaving `keep_bytes` free. Exact (no overflow
// for any non-negative inputs).
inline bool FitsOnGpu(int64_t free_bytes, int64_t bytes, int64_t keep_bytes = 0) {
  if (bytes < 0 || keep_bytes < 0 || free_bytes < keep_bytes) return false;
  return bytes <= free_bytes - keep_bytes;
}

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_FIT_H_
