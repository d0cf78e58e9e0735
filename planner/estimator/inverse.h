#ifndef FLEETPLAN_PLANNER_ESTIMATOR_INVERSE_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_INVERSE_H_

// Inverse questions on top of Estimate():
//   - MaxConcurrency: how many sequences of C tokens one replica holds (vLLM: KV blocks; HF: the
//     largest batch whose peak fits the GPU).
//   - MaxContext: the longest context at which N sequences still fit.
//   - Budget: per-GPU bytes needed for each (context, concurrency) pair, like S1/VME's budget
//     matrix, with whether it fits.
//   - MinGpuMemoryUtilization: the smallest vLLM --gpu-memory-utilization that holds a workload.
// Pure, thread-safe.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {

absl::StatusOr<int64_t> MaxConcurrency(const ModelSpec& spec, const EstimateRequest& request,
                                       int64_t context_tokens);

// Returns 0 when not even one token per sequence fits.
absl::StatusOr<int64_t> MaxContext(const ModelSpec& spec, const EstimateRequest& request,
                                   int64_t concurrency);

struct BudgetCell {
  int64_t context_tokens = 0;
  int64_t concurrency = 0;
  int64_t bytes_per_gpu = 0;  // the fullest rank's need
  bool fits = false;
};

// Row-major: contexts outer, concurrencies inner.
absl::StatusOr<std::vector<BudgetCell>> Budget(const ModelSpec& spec,
                                               const EstimateRequest& request,
                                               const std::vector<int64_t>& contexts,
                                               const std::vector<int64_t>& concurrencies);

// vLLM only: the smallest utilization (two decimals, rounded up) whose KV budget holds
// `concurrency` sequences of `context_tokens`, or FAILED_PRECONDITION when none does.
absl::StatusOr<double> MinGpuMemoryUtilization(const ModelSpec& spec,
                                               const EstimateRequest& request,
                                               int64_t context_tokens, int64_t concurrency);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_INVERSE_H_
