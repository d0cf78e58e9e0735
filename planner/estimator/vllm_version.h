#ifndef FLEETPLAN_PLANNER_ESTIMATOR_VLLM_VERSION_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_VLLM_VERSION_H_

// vLLM version profiles: what changed across vLLM versions in how it sizes its KV cache, read from
// each version's source (the engine file and function named in each field). One profile per
// range of versions; the estimator's vLLM model (vllm_model.cc) asks the profile, never the
// version number.
//
//   profiling   how the KV budget is reckoned after the profile run
//     kTorchPeakOnly       total x utilization - torch's allocated peak: memory outside PyTorch
//                          (NCCL, the CUDA context) is not counted and comes on top
//                          (vllm/worker/worker.py profile_num_available_blocks, <= 0.2.3; PR
//                          #2031 added the non-torch check)
//     kWholeDevicePeak     total x utilization - (torch peak + everything on the device outside
//                          torch after the run, the CUDA context included): V0 0.2.4-0.6.3
//                          (worker.py determine_num_available_blocks) and V1 0.8.x
//                          (vllm/v1/worker/gpu_worker.py determine_available_memory,
//                          "non_torch_allocations = total_allocated_bytes - torch_allocated_bytes")
//     kSnapshotIncrease    total x utilization - (weights + torch peak increase + non-torch
//                          increase since the snapshot taken at worker start): the CUDA context and
//                          the communicators created before it stay outside the budget. V0 0.6.4+
//                          (vllm/utils.py memory_profiling), V1 0.9+ (gpu_worker.py with
//                          MemorySnapshot / memory_profiling): the model calibrated at 0.19.
//   scheduler   the defaults of max_num_batched_tokens / max_num_seqs when unset
//     V0: 256 sequences; without chunked prefill (the default when max_model_len <= 32768)
//         max(max_model_len, 2048) tokens, else 2048 (vllm/config.py SchedulerConfig,
//         _DEFAULT_MAX_NUM_BATCHED_TOKENS; vllm/engine/arg_utils.py enables chunked prefill by
//         default above 32K)
//     V1 < 0.9: 2048 tokens and 256 sequences for the API server on every GPU
//         (arg_utils.py _set_default_args_v1)
//     V1 >= 0.9: 8192 tokens and 1024 sequences on GPUs of >= 70 GiB that are not A100s (PR
//         #17885 excluded the A100), else 2048 and 256 (arg_utils.py get_batch_defaults)
//   CUDA graphs  captured after the KV cache, outside the budget, in every version. Batch sizes:
//         V0 1, 2, 4, 8 ... 256 (worker/model_runner.py _BATCH_SIZES_TO_CAPTURE), V1 1, 2, 4,
//         8 ... 512 (compilation config cudagraph_capture_sizes)
//   default gpu_memory_utilization  0.9; 0.92 from 0.22 (vllm/config/cache.py of that version)
//
// Only 0.19 is in the calibration files (tests/data/calibration); other versions are modelled from
// their source and their band is widened (uncertainty.h).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fleetplan::estimator {

struct VllmVersion {
  int64_t major = 0;
  int64_t minor = 19;
  int64_t patch = 0;
  bool operator<(const VllmVersion& o) const {
    if (major != o.major) return major < o.major;
    if (minor != o.minor) return minor < o.minor;
    return patch < o.patch;
  }
  bool AtLeast(int64_t ma, int64_t mi, int64_t pa = 0) const {
    return !(*this < VllmVersion{ma, mi, pa});
  }
  std::string ToString() const;
};

// "0.19", "0.19.1", "v0.6.3.post1", "0.11.0rc2", "0.10.1+cu128" -> the release it belongs to.
// Empty -> the calibrated default (0.19.0). INVALID_ARGUMENT naming `field` and the text
// otherwise.
absl::StatusOr<VllmVersion> ParseVllmVersion(absl::string_view field, absl::string_view text);

enum class VllmProfiling : uint8_t { kTorchPeakOnly, kWholeDevicePeak, kSnapshotIncrease };

struct VllmProfile {
  VllmVersion version;
  bool v1 = true;  // the V1 engine (0.8+) or V0
  VllmProfiling profiling = VllmProfiling::kSnapshotIncrease;
  bool large_gpu_batch_defaults = true;  // V1 >= 0.9: 8192 / 1024 on >= 70 GiB non-A100 GPUs
  int64_t max_cudagraph_batch = 512;     // the largest default capture size
  double default_utilization = 0.9;
  // The calibration files hold this version's semantics: bands stay calibrated.
  bool calibrated = true;
  std::string Describe() const;  // "vLLM 0.7.3 (V0, ...)" for notes
};

// The profile of `version`. V0 for versions before 0.8 (V1 became the default engine in 0.8).
VllmProfile VllmProfileFor(const VllmVersion& version);

// The scheduler's defaults for an unset --max-num-seqs / --max-num-batched-tokens (see
// "scheduler" above) on a GPU of `gpu_bytes` named `gpu_name` ("" when unknown: no A100 rule).
struct VllmBatchDefaults {
  int64_t max_num_seqs = 0;
  int64_t max_num_batched_tokens = 0;
};
// `encoder_only`: a bidirectional pooling model (BERT) on V1, served without chunked prefill
// (engine_constants.h kVllmEncoderOnlyFromMinor).
VllmBatchDefaults VllmSchedulerDefaults(const VllmProfile& profile, int64_t gpu_bytes,
                                        absl::string_view gpu_name, int64_t max_model_len,
                                        bool encoder_only = false);

// The utilization a request runs at: `given` when positive, else the version's default.
inline double EffectiveUtilization(double given, const VllmProfile& profile) {
  return given > 0 ? given : profile.default_utilization;
}

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_VLLM_VERSION_H_
