#ifndef FLEETPLAN_PLANNER_ESTIMATOR_SGLANG_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_SGLANG_H_

// SGLang (engine=sglang): the defaults its server derives from the GPU, and the launch line that
// realises an estimate. The memory model is sglang_model.cc (Estimate with Engine::kSglang).

#include <cstdint>
#include <string>

#include "planner/estimator/estimator.h"

namespace fleetplan::estimator {

// What SGLang runs with for `config` on a GPU of `gpu_memory_bytes` at parallelism `p`
// (server_args.py _handle_gpu_memory_settings and _generate_cuda_graph_batch_sizes).
struct SglangResolved {
  double mem_fraction_static = 0;
  int64_t chunked_prefill_size = 0;
  int64_t cuda_graph_max_bs = 0;
  int64_t capture_sizes = 0;  // decode CUDA-graph batch sizes captured
  // --enable-piecewise-cuda-graph: the prefill token counts captured (0 without).
  int64_t piecewise_sizes = 0;
  // --max-running-requests as given, or 48 when speculating (_handle_speculative_decoding, every
  // algorithm); 0: SGLang sizes it from the KV pool.
  int64_t max_running_requests = 0;
  // Speculative decoding (0 without): --speculative-num-steps, -eagle-topk, -num-draft-tokens.
  int64_t num_steps = 0;
  int64_t eagle_topk = 0;
  int64_t num_draft_tokens = 0;
};

// Whether config.version counts a speculative draft before the target's KV pool is sized: after
// 0.5.10 (PRs #23862 and #28855: no flat reserve; the draft's weights are loaded first and the
// pool's cell grows by the draft's layers). Up to 0.5.10 the draft is loaded after the pool and
// lives in a flat reserve (+2 GiB EAGLE, +6 GiB STANDALONE) of mem_fraction_static's remainder.
bool SglangBudgetsDraft(const SglangConfig& config);

// An EAGLE, EAGLE3, NEXTN or STANDALONE draft (NGRAM and none have no draft model).
bool SglangHasDraftModel(SglangSpeculative algorithm);
// `model`: a vision-language model's tower lowers the default fraction (server_args.py
// adjust_mem_fraction_for_vlm) and MLA caps the piecewise graphs' default tokens; null: a text
// model without MLA.
SglangResolved ResolveSglang(const SglangConfig& config, int64_t gpu_memory_bytes,
                             const Parallelism& p, const ModelSpec* model = nullptr);

// `python -m sglang.launch_server --model-path MODEL --tp N --mem-fraction-static F
// --context-length L ...`: the fraction is written out even when it is SGLang's default, so the
// line runs what was estimated on any GPU.
std::string SglangLaunchCommand(const std::string& model, const EstimateRequest& request,
                                const MemoryEstimate& estimate);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_SGLANG_H_
