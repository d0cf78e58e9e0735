#ifndef FLEETPLAN_CLIENTS_VLLM_LOG_H_
#define FLEETPLAN_CLIENTS_VLLM_LOG_H_

// Reads a vLLM startup log into a calibration case (../shared/calibration/README.md, vllm cases),
// for `fleetplan validate --vllm-log`: what users' own runs measured, on their GPUs and vLLM
// versions. The lines it reads, as vLLM prints them (format strings in vLLM's source):
//   version   "vLLM API server version X"; "Initializing a V1 LLM engine (vX) with config: ..."
//             (V1); "Initializing an LLM engine (vX) with config: ..." (V0) -- vllm/engine/
//             llm_engine.py, vllm/v1/engine/core.py; the config's dtype, max_seq_len,
//             tensor_parallel_size, pipeline_parallel_size, quantization, enforce_eager,
//             kv_cache_dtype; "non-default args: {...}" (0.9+ entrypoints)
//   weights   "Loading model weights took X GB" (V0 <= 0.7, GiB despite the unit), "Model loading
//             took X GiB" (model_runner.py / v1 gpu_model_runner.py)
//   profile   V0 0.6: "Memory profiling results: total_gpu_memory=XGiB initial_memory_usage=...
//             peak_torch_memory=... non_torch_memory=... kv_cache_size=...
//             gpu_memory_utilization=U" V0 0.7 - V1 0.9 (worker.py / gpu_worker.py): "the current
//             vLLM instance can use total_gpu_memory (XGiB) x gpu_memory_utilization (U) = YGiB"
//             and "model weights take XGiB; non_torch_memory takes XGiB; PyTorch activation peak
//             memory takes XGiB; the rest of the memory reserved for KV Cache is XGiB." V1 0.10+
//             (gpu_worker.py, vllm/utils MemoryProfilingResult): "Initial free memory: X GiB;
//             Requested memory: U (util), Y GiB", "Total non KV cache memory: XGiB; torch peak
//             memory increase: XGiB; non-torch forward increase memory: XGiB; weights memory:
//             XGiB." (DEBUG) and "Available KV cache memory: X GiB"
//   capacity  "# GPU blocks: N" / "# CUDA blocks: N" / "# cuda blocks: N" (V0 executor),
//             "GPU KV cache size: N tokens" (v1/core/kv_cache_utils.py), "Maximum concurrency for
//             N tokens per request: Xx"
//   graphs    "Graph capturing finished in N secs, took X GiB"
//   failure   "No available memory for the cache blocks", "larger than the maximum number of
//             tokens that can be stored in KV cache"
// With several workers (tensor parallelism) the first value of each is kept (rank 0's). Pure;
// never throws.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace fleetplan::cli {

struct VllmLog {
  std::string version;     // "" when not printed
  std::string generation;  // "V0" | "V1" | ""
  // Inputs (as printed; absent when the log does not say).
  std::map<std::string, std::string> config;  // dtype, quantization, kv_cache_dtype ...
  std::optional<int64_t> tp, pp, max_model_len, max_num_seqs, max_num_batched_tokens, block_size;
  std::optional<double> gpu_memory_utilization;
  std::optional<bool> enforce_eager;
  std::optional<int64_t> gpu_total_bytes;
  // Measured, bytes (GiB x 2^30) or counts.
  std::map<std::string, int64_t> measured;
  int64_t precision_bytes = 0;  // half a unit of the coarsest printed GiB digit
  bool failed = false;          // vLLM refused to start (and said why)
  std::string failure;
  std::vector<std::string> notes;
};

// INVALID_ARGUMENT naming the line for a line that starts a known format but does not finish it
// (a truncated or garbled log), or naming what is missing when the log has no memory lines at all.
absl::StatusOr<VllmLog> ParseVllmLog(const std::string& text, const std::string& source);

struct CaseInputs {
  std::string case_id;
  std::string model_path;                  // as the case file will refer to it
  std::string gpu;                         // GPU name for the case
  std::optional<int64_t> gpu_total_bytes;  // when the log does not print it
  std::string gpu_total_source;
  std::string source;  // where the log came from
};

// The calibration case (one JSON object) for `log`: INVALID_ARGUMENT naming the input the log
// lacks (the GPU total, gpu_memory_utilization, max_model_len) when nothing supplies it.
absl::StatusOr<nlohmann::json> CaseFromLog(const VllmLog& log, const CaseInputs& in);

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_VLLM_LOG_H_
