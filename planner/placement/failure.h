#ifndef FLEETPLAN_PLANNER_PLACEMENT_FAILURE_H_
#define FLEETPLAN_PLANNER_PLACEMENT_FAILURE_H_

// What-if planning: "what happens if these nodes, or this zone, fail?" and "where would this
// node's placements go if I drain it?". Pure, like the planner: the caller hands in the snapshot,
// the active placements and, per displaced deployment, the spec it was planned with.
//
// The failed nodes are taken down in a copy of the snapshot; every active placement with a rank on
// one of them is displaced; the displaced replicas of each deployment are re-planned (its stored
// spec, as many replicas as were displaced) onto what remains, with the surviving replicas of the
// same deployments counted for spread constraints. Nothing is written.

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/placement/fleet.h"
#include "planner/placement/plan.h"

namespace fleetplan::placement {

struct FailureScenario {
  std::vector<std::string> nodes;  // by name
  std::vector<std::string> zones;  // every node of the zone
};

struct FailureImpact {
  std::vector<std::string> failed_nodes;  // sorted
  std::vector<Placement> displaced;       // by id
  // Where the displaced replicas would go; replica numbers are the displaced placements' own.
  Plan replan;
  // Displaced replicas whose deployment has no spec (not re-planned; counted as not absorbed).
  std::vector<std::string> without_spec;
  int64_t absorbed = 0;  // displaced replicas the replan places
  // absorbed / displaced; 1 when nothing is displaced.
  double absorbed_ratio() const;
};

// NOT_FOUND for a node or zone the snapshot does not have; INVALID_ARGUMENT for an empty scenario.
// `active`: the store's active placements (committed and unexpired reservations). `specs`: by
// deployment name, resolved (DeploymentSpec::spec set); their `replicas` is ignored.
absl::StatusOr<FailureImpact> SimulateFailure(const FleetSnapshot& snapshot,
                                              const FailureScenario& scenario,
                                              const std::vector<Placement>& active,
                                              const std::map<std::string, DeploymentSpec>& specs,
                                              const PlannerOptions& options = {});

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_FAILURE_H_
