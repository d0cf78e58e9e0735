#ifndef FLEETPLAN_PLANNER_PLACEMENT_FILTERS_H_
#define FLEETPLAN_PLANNER_PLACEMENT_FILTERS_H_

// The constraints every strategy applies, as small shared functions: allowed GPU types, pools and
// zones, spread over nodes or zones, and which GPUs of a domain can take a rank (exclusive: wholly
// free; shared: enough free memory left above the headroom policy).

#include <cstdint>
#include <string>
#include <vector>

#include "planner/placement/packing_state.h"
#include "planner/placement/plan.h"

namespace fleetplan::placement {

// True when `allowed` is empty or holds `value`.
bool Allowed(const std::vector<std::string>& allowed, const std::string& value);

// The node is in an allowed pool and zone of `d`.
bool NodeAllowed(const DeploymentSpec& d, const Node& n);

// Placing another replica of `d` on `n` keeps its spread.
bool SpreadAllows(const PackingState& st, const DeploymentSpec& d, const Node& n);

// Bytes of a GPU of `type` that `d` leaves free (its min_free_ratio).
int64_t KeepBytes(const DeploymentSpec& d, const GpuType& type);

// How many GPUs of `dom` can take a rank of `bytes` for `d`, and their free bytes in all
// (EligibleGpus without building the list).
struct Eligibility {
  int64_t count = 0;
  int64_t free_bytes = 0;
};
Eligibility CountEligible(const PackingState& st, const DomainState& dom, const DeploymentSpec& d,
                          int64_t bytes);

// Positions (in node.gpus) of the GPUs of `dom` that can take a rank of `bytes` for `d`.
std::vector<int64_t> EligibleGpus(const PackingState& st, const DomainState& dom,
                                  const DeploymentSpec& d, int64_t bytes);

// Per GPU type, over the nodes `d` may use: the size of the largest NVLink domain (all its GPUs,
// busy or not).
std::map<std::string, int64_t> LargestDomains(const PackingState& st, const DeploymentSpec& d);

// The most NVLink domains of at least `tp` GPUs of `type` in any one pool `d` may use (a pipeline's
// stages live in distinct domains of one pool).
int64_t MostDomainsInOnePool(const PackingState& st, const DeploymentSpec& d, const GpuType& type,
                             int64_t tp);

// Distinct nodes (or zones) `d` may use that have a domain of at least `tp` GPUs of `type`.
int64_t SpreadTargets(const PackingState& st, const DeploymentSpec& d, const GpuType& type,
                      int64_t tp);

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_FILTERS_H_
