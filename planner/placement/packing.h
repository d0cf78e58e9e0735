#ifndef FLEETPLAN_PLANNER_PLACEMENT_PACKING_H_
#define FLEETPLAN_PLANNER_PLACEMENT_PACKING_H_

// Internal to the planner: the replicas to place (Work), putting one replica on chosen GPUs
// (Apply), the greedy strategy (Pack, with a DomainScorer: best fit for pack, worst fit for
// spread) and the exact one (Exact, CBC), and the plan's totals (Finish).

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/placement/candidates.h"
#include "planner/placement/packing_state.h"
#include "planner/placement/plan.h"
#include "planner/placement/scorer.h"

namespace fleetplan::placement::internal {

struct Work {
  const DeploymentSpec* d = nullptr;
  int64_t replica = 0;
  const std::vector<Candidate>* candidates = nullptr;  // cheapest first
  const std::vector<Shortfall>* why_none = nullptr;    // when candidates is empty
};

// Domains (and the GPUs in each) for the stages of one replica.
struct Choice {
  std::vector<std::pair<size_t, std::vector<int64_t>>> stages;  // domain id, GPU positions
};

// Finds domains for every pipeline stage of `c` (pp > 1: distinct domains of one pool).
bool FindPlace(const PackingState& st, const DeploymentSpec& d, const Candidate& c,
               const DomainScorer& scorer, Choice* out);

// Records the replica on the chosen GPUs and describes it.
ReplicaPlacement Apply(PackingState& st, const DeploymentSpec& d, int64_t replica,
                       const Candidate& c, const Choice& ch);

// Why a replica with candidates found no room now.
Shortfall CapacityShortfall(const PackingState& st, const DeploymentSpec& d,
                            const std::vector<Candidate>& candidates);

Unplaced NotPlaced(const PackingState& st, const Work& w);

// Greedy packing of `order` onto a copy of `base`; CANCELLED when `cancelled` (may be empty) says
// so.
absl::StatusOr<Plan> Pack(const PackingState& base, const std::vector<Work>& order,
                          const DomainScorer& scorer, const std::function<bool()>& cancelled);

// The exact integer program (CBC) over exclusive single-stage placements. Returns nullopt-like
// `fallback` when the problem is outside what it handles (shared GPUs, too many variables, no
// solution in the time limit).
absl::StatusOr<Plan> Exact(const PackingState& base, const std::vector<Work>& work,
                           const PlannerOptions& o, bool* fallback);

// Sorts the plan and fills GPUs, cost, lower bound and gap.
Plan Finish(Plan plan, const std::vector<Work>& work, const FleetSnapshot& s);

// Fewer unplaced, then fewer GPUs, then cheaper.
bool Better(const Plan& a, const Plan& b);

}  // namespace fleetplan::placement::internal

#endif  // FLEETPLAN_PLANNER_PLACEMENT_PACKING_H_
