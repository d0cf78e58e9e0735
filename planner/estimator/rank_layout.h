#ifndef FLEETPLAN_PLANNER_ESTIMATOR_RANK_LAYOUT_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_RANK_LAYOUT_H_

// Internal to the estimator: what one GPU rank holds of a model under a given parallelism and
// dtype (weights, KV bytes per token, layer range), shared by the engine models
// (vllm_model.cc, hf_model.cc, training_model.cc).

#include <cstdint>
#include <utility>

#include "planner/estimator/estimator.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator::internal {

struct RankContext {
  const ModelSpec& spec;
  const EstimateRequest& req;
  DType dtype;      // compute dtype and dtype of unquantized weights
  int64_t a;        // bytes per activation element
  int64_t kv_elem;  // bytes per KV-cache element
  bool vllm;        // vLLM's layout details (vocab padding, rope cache, tied lm_head per stage)

  RankContext(const ModelSpec& s, const EstimateRequest& r, DType d)
      : spec(s),
        req(r),
        dtype(d),
        a(DTypeBytes(d)),
        kv_elem(KvElementBytes(r.kv_cache_dtype, d)),
        vllm(r.engine == Engine::kVllm) {}
};

// The compute dtype a request runs in.
DType ResolveDType(const ModelSpec& spec, const EstimateRequest& req);

// [first, last) layers of pipeline stage `stage` (vLLM's get_pp_indices).
std::pair<int64_t, int64_t> StageLayers(int64_t layers, int64_t pp, int64_t stage);

// A pipeline stage's StageMemory with its layer range filled and the CUDA context on its GPU.
StageMemory NewStage(const ModelSpec& spec, int64_t pp, int64_t stage);

// Bytes of tensor `t` on one rank.
int64_t RankTensorBytes(const RankContext& c, const Tensor& t);

// Weights of one rank of `stage` holding layers [first, last).
int64_t StageWeights(const RankContext& c, int64_t stage, int64_t first, int64_t last);

// KV bytes of one token in one layer on one rank (K and V; MLA: the latent).
int64_t LayerKvBytesPerToken(const RankContext& c, const AttentionSpec& a);

int64_t CeilDiv(int64_t a, int64_t b);

}  // namespace fleetplan::estimator::internal

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_RANK_LAYOUT_H_
