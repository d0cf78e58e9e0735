#ifndef FLEETPLAN_PLANNER_PLACEMENT_RECOMMEND_H_
#define FLEETPLAN_PLANNER_PLACEMENT_RECOMMEND_H_

// "What hardware does this model need?" before there is a fleet: the cheapest vLLM configurations
// (GPU type x tp x pp x ep) that hold a workload, over a list of GPU types (the built-in table or
// a fleet's types), with why fewer GPUs do not do. Every configuration is a planner candidate
// (candidates.h: the same FitVllm sizing, the same headroom policy), so what `fleetplan recommend`
// lists is exactly what `fleetplan plan` would place on a node of that type. Pure.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "planner/placement/candidates.h"

namespace fleetplan::placement {

struct Configuration {
  Candidate candidate;       // candidate.type points into the caller's `types`
  double cost_per_hour = 0;  // candidate.gpus x the type's cost; 0 when the type's is unknown
};

struct TypeVerdict {
  std::string gpu_type;
  // Nothing fits this type (up to gpus_per_node GPUs in a domain, max_pp stages): why.
  std::optional<Shortfall> none_fits;
  // The best fits on `fewest` GPUs; `fewer` GPUs (fewest / 2, tp only) do not, because of this.
  int64_t fewest = 0;
  int64_t fewer = 0;
  std::optional<Shortfall> why_not_fewer;
};

struct Recommendation {
  // Ranked: known cost first (cheapest per hour), then fewest GPUs, smallest GPU, fewest stages.
  std::vector<Configuration> configurations;
  std::vector<TypeVerdict> types;  // in `types` order
};

// The GPU types a recommendation considers, the one rule for the Recommend RPC and
// `fleetplan recommend`: `registered` (the fleet's, with their costs), or the built-in table
// (planner/estimator/gpu_catalog.h) when `builtin` is asked or none are registered (a note says
// so); narrowed to `only` (each once, in any order); sorted by name. NOT_FOUND names
// `field`[i], the value and the types known, for a name of `only` that is not among them.
absl::StatusOr<std::vector<GpuType>> RecommendGpuTypes(std::vector<GpuType> registered,
                                                       bool builtin,
                                                       const std::vector<std::string>& only,
                                                       absl::string_view field,
                                                       std::vector<std::string>* notes);

// `per_type`: at most this many configurations of each type (its cheapest). `types` must outlive
// the result.
Recommendation Recommend(const DeploymentSpec& d, const std::vector<GpuType>& types,
                         int64_t gpus_per_node, size_t per_type = 3);

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_RECOMMEND_H_
