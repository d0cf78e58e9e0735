#ifndef FLEETPLAN_PLANNER_PLACEMENT_HEADROOM_INDEX_H_
#define FLEETPLAN_PLANNER_PLACEMENT_HEADROOM_INDEX_H_

// Fleet, pool and GPU-type headroom kept as sums that a changed node updates in O(its GPUs), so the
// server's live fleet state answers "headroom after this plan" for what the plan touches without
// walking the fleet (PlanPlacement's default headroom view).
//
// Every field of placement::Headroom is a sum over GPUs (bytes, GPU counts) or follows from sums:
// the risk is the worst level with a GPU at it (a count per level), the largest wholly free NVLink
// domain is the largest size with a domain at it (a count per size). So a node's contribution can
// be subtracted and its new one added. Per-GPU numbers come from GpuHeadroomOf, the function
// ComputeHeadroom uses, so the two cannot disagree (a test compares them on random fleets).
// Values; not thread-safe to modify, safe to read from many threads.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/numeric/int128.h"
#include "planner/placement/fleet.h"
#include "planner/placement/headroom.h"

namespace fleetplan::placement {

class HeadroomIndex {
 public:
  HeadroomIndex() = default;
  explicit HeadroomIndex(const FleetSnapshot& snapshot);

  // Replaces `before`'s contribution with `after`'s (either may be null: a node added or
  // removed). `types` are the snapshot's GPU types (unchanged since the index was built).
  void Replace(const Node* before, const Node* after, const std::vector<GpuType>& types);

  Headroom Fleet() const;
  // Every pool and GPU type with GPUs, by name.
  std::vector<Headroom> Pools() const;
  std::vector<Headroom> Types() const;
  // Zeroes (with the key) for a pool or type with no GPUs.
  Headroom Pool(const std::string& name) const;
  Headroom Type(const std::string& name) const;

 private:
  struct Sums {
    absl::int128 total = 0, reserved = 0, committed = 0, free = 0;
    int64_t gpus = 0, free_gpus = 0;
    std::array<int64_t, 3> gpus_by_risk{};    // by Risk
    std::map<int64_t, int64_t> free_domains;  // wholly free GPUs in a domain -> domains
    void Add(const Sums& o, int sign);
    Headroom ToHeadroom(const std::string& key) const;
  };
  // One node's contribution to the fleet, its pool, and each GPU type it has.
  struct NodeSums {
    Sums all;
    std::map<std::string, Sums> by_type;
  };
  static NodeSums Contribution(const Node& node, const std::vector<GpuType>& types);
  void Apply(const Node& node, const NodeSums& c, int sign);

  Sums fleet_;
  std::map<std::string, Sums> pools_, types_;
};

// Headroom once `ranks` are reserved on top of `snapshot`, for what they touch only: the fleet,
// the pools, GPU types and nodes of their GPUs (FleetHeadroom with no per-GPU rows; nodes, pools
// and types ordered by name). `index` is HeadroomIndex(snapshot). Equal, entry for entry, to the
// same entries of HeadroomAfter.
FleetHeadroom TouchedHeadroomAfter(const FleetSnapshot& snapshot, const HeadroomIndex& index,
                                   const std::vector<PlacementRank>& ranks);

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_HEADROOM_INDEX_H_
