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
        // SGLang's layers are vLLM's (VocabParallelEmbedding padding and all).
        vllm(r.engine == Engine::kVllm || r.engine == Engine::kSglang) {}
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

// What a speculative draft shares with its target, as both engines build it: a whole draft model
// shares nothing; an EAGLE head (llama_eagle.py in vLLM and SGLang) takes the target's embedding
// and lm_head and adds fc, Linear(2 x hidden, hidden) with its bias; an EAGLE3 head
// (llama_eagle3.py) takes the embedding, keeps its own lm_head (counted at vocab_size, an upper
// bound of draft_vocab_size) and adds fc, Linear(3 x hidden, hidden), and a midlayer qkv_proj
// reading 2 x hidden; MTP layers run by SGLang's EAGLE worker (NEXTN) take both embedding and
// head (eagle_worker.py set_embed_and_head).
enum class DraftHead : uint8_t { kWholeModel, kEagle, kEagle3, kSharedEmbeddingAndHead };
// The draft's weights on one rank (`draft` is the draft's own context; pp = 1).
int64_t DraftWeights(const RankContext& draft, DraftHead head);

// KV bytes of one token in one layer on one rank (K and V; MLA: the latent).
int64_t LayerKvBytesPerToken(const RankContext& c, const AttentionSpec& a);

int64_t CeilDiv(int64_t a, int64_t b);

// The projections a LoRA slot adapts (the engines' normalized module names).
struct LoraTargets {
  bool qkv_proj = true, o_proj = true, gate_up_proj = true, down_proj = true;
};

// LoRA slots on one rank for layers [first, last): per slot and adapted layer, lora_a
// [rank, in] and lora_b [out, rank] in the model dtype (qkv_proj's lora_a stacked three high,
// gate_up_proj's two), the sharded side split as the base layer is (column-parallel qkv_proj and
// gate_up_proj split lora_b, row-parallel o_proj and down_proj lora_a), times `slots`. vLLM:
// vllm/lora/layers/column_parallel_linear.py, row_parallel_linear.py create_lora_weights (every
// target); SGLang: python/sglang/srt/lora/mem_pool.py get_lora_A_shape / get_lora_B_shape (the
// same shapes, its target modules only). Routed experts are not adapted (counted 0).
int64_t LoraSlotBytes(const RankContext& c, int64_t first, int64_t last, int64_t slots,
                      int64_t rank, const LoraTargets& targets = {});

// One linear-attention layer's state (qwen3_next's gated delta net) on a rank of `tp`: a conv state
// of `conv_rows` x conv_dim / tp elements of `conv_elem` bytes and a recurrent state
// [Hv / tp, Dk, Dv] of `ssm_elem` bytes. The engines differ only in the rows and dtypes:
// transformers keeps the kernel's taps, vLLM and SGLang kernel - 1 (plus vLLM's speculative
// tokens).
inline int64_t LinearStateBytes(const AttentionSpec& a, int64_t tp, int64_t conv_rows,
                                int64_t conv_elem, int64_t ssm_elem) {
  return conv_rows * CeilDiv(a.linear_conv_dim, tp) * conv_elem +
         CeilDiv(a.num_heads, tp) * a.head_dim * a.v_head_dim * ssm_elem;
}

// Host memory of the LoRA adapters the engine keeps loaded on the CPU: each of the tp ranks'
// processes holds `adapters` whole adapters (vLLM: WorkerLoRAManager loads each with
// LoRAModel.from_local_checkpoint(device="cpu") into a cache of max_cpu_loras; SGLang: LoRAAdapter
// initialize_weights, up to --max-loaded-loras), a whole adapter taken as tp times one slot on a
// rank (`slot_bytes`; replicated lora_a rows count tp times: an over-estimate) in the model dtype.
inline int64_t LoraHostBytes(int64_t slot_bytes, int64_t adapters, int64_t tp) {
  return slot_bytes * tp * adapters * tp;
}

// Serving engines built on vLLM's layers (vllm_model.cc; SGLang shares them): the transient peak
// of one forward of `tokens` tokens over layers [first, last) on one rank and, on the last stage,
// of the sampler over `sampler_rows` rows of logits at `sampler_bytes_per_logit` fp32 scratch.
int64_t ServingForwardPeak(const RankContext& c, int64_t first, int64_t last, bool last_stage,
                           int64_t tokens, int64_t sampler_rows, int64_t sampler_bytes_per_logit);
// Decode CUDA graphs of `layers` layers captured at `capture_sizes` batch sizes (the per-size cost
// measured on vLLM, engine_constants.h).
int64_t CudaGraphBytesForSizes(int64_t layers, int64_t capture_sizes);

}  // namespace fleetplan::estimator::internal

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_RANK_LAYOUT_H_
