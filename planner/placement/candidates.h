#ifndef FLEETPLAN_PLANNER_PLACEMENT_CANDIDATES_H_
#define FLEETPLAN_PLANNER_PLACEMENT_CANDIDATES_H_

// Parallelism candidates of a deployment on a GPU type: tensor-parallel sizes (powers of two up to
// max_tp that divide the heads), pipeline stages (only when no single NVLink domain holds a
// replica: TP inside a domain is faster than PP across domains, so PP is the fallback, not a GPU
// saver), expert parallelism (ep = tp) for MoE. Each is sized by estimator::FitVllm — the same
// function Budget, MinGpuMemoryUtilization and `estimate --emit vllm` use — and kept when its
// fullest GPU stays within (1 - min_free_ratio) of the GPU. Used by the planner and by the CLI's
// --emit (which plans one replica on a GPU type without a fleet).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "planner/estimator/estimator.h"
#include "planner/placement/fleet.h"
#include "planner/placement/plan.h"

namespace fleetplan::placement {

struct Candidate {
  const GpuType* type = nullptr;
  int64_t tp = 1, pp = 1, ep = 1;
  std::vector<int64_t> stage_bytes;  // what each GPU of a stage takes (its tp ranks are equal)
  int64_t max_rank_bytes = 0;
  int64_t gpus = 1;
  int64_t kv_tokens = 0;  // KV-cache capacity at the chosen utilization
  double util = 0;        // --gpu-memory-utilization
  std::string launch_command;
  int64_t host_bytes = 0;  // llama.cpp: the node's host memory the replica takes
};

// The model's transformer blocks: its config's, or its GGUF header's block_count (0 when absent).
int64_t ModelLayers(const DeploymentSpec& d);

// The estimator request of `d` at one parallelism on `type`.
estimator::EstimateRequest VllmRequestFor(const DeploymentSpec& d, const GpuType& type, int64_t tp,
                                          int64_t pp, int64_t ep);

// The bytes a deployment may take per GPU of `type`: (1 - min_free_ratio) of it.
int64_t AllowedBytesPerGpu(const DeploymentSpec& d, const GpuType& type);

struct TypeCandidates {
  std::vector<Candidate> fitting;      // cheapest first (GPUs, cost, bytes, pp)
  std::optional<Shortfall> shortfall;  // set when `fitting` is empty
};

// Candidates of `d` on `type` whose TP group fits an NVLink domain of `largest_domain` GPUs.
TypeCandidates CandidatesOnType(const DeploymentSpec& d, const GpuType& type,
                                int64_t largest_domain);

// Orders candidates cheapest first: fewest GPUs, then cost, bytes and stages.
void SortCandidates(std::vector<Candidate>& candidates);

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_CANDIDATES_H_
