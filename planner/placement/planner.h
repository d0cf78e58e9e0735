#ifndef FLEETPLAN_PLANNER_PLACEMENT_PLANNER_H_
#define FLEETPLAN_PLANNER_PLACEMENT_PLANNER_H_

// The placement planner: FleetSnapshot + PlacementRequest -> Plan. Pure and deterministic: no I/O,
// no clock, no global state; the same input gives the same plan.
//
// For every deployment it enumerates candidates per allowed GPU type (candidates.h: tensor
// parallel sizes that fit one NVLink domain, pipeline stages across domains of one pool, expert
// parallelism for MoE, each sized by the estimator's FitVllm) and keeps those that fit a GPU with
// the requested headroom, cheapest first. A strategy then places every replica:
//   kPack   largest and scarcest first, best fit (BestFitScorer) onto the NVLink domains with the
//           fewest free GPUs that still fit, then re-pack passes in other orders keeping the best
//           plan (fewest unplaced, then GPUs, then cost);
//   kSpread the same candidates, worst fit (WorstFitScorer) to spread load;
//   kExact  an integer program (CBC) over exclusive, single-stage placements: optimal GPU count
//           for small problems within a solver time limit; falls back to kPack otherwise.
// The plan reports a lower bound on the GPUs any plan needs (each replica's smallest candidate,
// ignoring topology) and the gap to it, and for each replica it could not place a Shortfall:
// FAILED_PRECONDITION (cannot fit this fleet as configured) or RESOURCE_EXHAUSTED (fits when
// capacity frees).

#include "absl/status/statusor.h"
#include "planner/placement/fleet.h"
#include "planner/placement/packing_state.h"
#include "planner/placement/plan.h"

namespace fleetplan::placement {

// INVALID_ARGUMENT for a malformed request (names the deployment and field); CANCELLED when
// options.cancelled() says so.
absl::StatusOr<Plan> PlanPlacement(const FleetSnapshot& snapshot, const PlacementRequest& request,
                                   const PlannerOptions& options = {});
// The same on a PackingState already built for the snapshot (the server's live fleet state keeps
// one current, so a plan does not rebuild the fleet's index).
absl::StatusOr<Plan> PlanPlacement(const PackingState& base, const PlacementRequest& request,
                                   const PlannerOptions& options = {});

// The checks PlanPlacement runs on a request before planning (exposed so that callers which only
// validate run exactly these).
absl::Status ValidatePlacementRequest(const FleetSnapshot& snapshot,
                                      const PlacementRequest& request);

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_PLANNER_H_
