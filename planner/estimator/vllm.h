#ifndef FLEETPLAN_PLANNER_ESTIMATOR_VLLM_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_VLLM_H_

// The vLLM questions that several rooms ask, answered once here (DESIGN.md "One rule, one place"):
//   - FitVllm: what a replica takes to hold a workload (request.concurrency sequences of
//     request.context_tokens), and the --gpu-memory-utilization that realises it. The planner's
//     candidates, the Budget matrix, MinGpuMemoryUtilization and `fleetplan estimate --emit vllm`
//     all call it, so they cannot disagree.
//   - VllmServeCommand: the `vllm serve ...` line for such a replica, the one builder of it (the
//     planner's launch lines and --emit print it byte for byte the same), every interpolated value
//     shell-quoted.
// Pure, thread-safe.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {

// The largest --gpu-memory-utilization FitVllm chooses: 1.0 would leave nothing for the CUDA
// context and CUDA graphs, which vLLM keeps outside the budget.
inline constexpr int64_t kVllmMaxUtilizationHundredths = 99;

enum class Utilization : uint8_t {
  kSmallest,  // choose the smallest utilization (in hundredths, rounded up) holding the workload
  kAsGiven,   // honour request.vllm.gpu_memory_utilization; refuse when it does not hold it
};

struct VllmFit {
  bool fits = false;
  std::string reason;  // why not, when !fits
  double gpu_memory_utilization = 0;
  // The replica at that utilization, with max_model_len resolved (see FitVllm). Each stage's
  // total_bytes is what one of its GPUs takes; workload_kv_bytes is the workload's share of the
  // KV pool, kv_cache_tokens the pool's capacity.
  MemoryEstimate estimate;
  EstimateRequest request;  // the request that estimate answers (utilization and length set)
};

// `request.engine` must be kVllm; concurrency 0 counts as one sequence. When the request leaves
// vllm.max_model_len unset and gives context_tokens, the replica is sized (and launched) with
// max_model_len = context_tokens: vLLM otherwise reserves the model's full context for its
// start-up check. INVALID_ARGUMENT for a malformed request; a workload that cannot fit is
// fits=false with vLLM's reason, not an error.
absl::StatusOr<VllmFit> FitVllm(const ModelSpec& spec, const EstimateRequest& request,
                                Utilization mode = Utilization::kSmallest);

// `vllm serve MODEL [--tensor-parallel-size N] [--pipeline-parallel-size N]
//  [--enable-expert-parallel] --gpu-memory-utilization U --max-model-len L [--kv-cache-dtype D]
//  [--dtype D] [--max-num-seqs N] [--max-num-batched-tokens N] [--block-size N] [--enforce-eager]`
// for `fit` (flags equal to vLLM's defaults are left out). `model` is what vLLM loads: a model
// directory or a Hugging Face id.
std::string VllmServeCommand(absl::string_view model, const VllmFit& fit);

// POSIX shell quoting: a word of only safe characters stays as it is, anything else is put in
// single quotes with embedded single quotes escaped, so a pasted line never runs what a name
// smuggles in ("q7;touch${IFS}pwned" stays one argument).
std::string ShellQuote(absl::string_view word);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_VLLM_H_
