#ifndef FLEETPLAN_PLANNER_ESTIMATOR_ENGINE_CONSTANTS_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_ENGINE_CONSTANTS_H_

// Engine constants: physical quantities of the software stack, shared by every model. Each says
// where it comes from. None is fitted to a model; the calibration cases (tests/data/calibration)
// check them.

#include <cstdint>

#include "planner/common/units.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::estimator {

// ---- CUDA / PyTorch --------------------------------------------------------------------------

// CUDA context and driver allocations outside PyTorch's allocator on an H100 with CUDA 12/13:
// cudaMemGetInfo used - torch reserved right after the first kernel. calibration README section 5:
// "device_used_bytes - peak_reserved_bytes ~ 0.75 GiB (CUDA context of 0.51 GiB included)", and
// vLLM's "init memory snapshot non_torch_memory" 0.51 GiB (vllm_startup.jsonl
// init_non_torch_bytes).
inline constexpr int64_t kCudaContextBytes = 522 * kMiB;

// cuBLAS workspace PyTorch allocates through its caching allocator on the first matmul of a stream
// (CUBLAS_WORKSPACE_CONFIG default ":4096:8" on sm90 = 32 MiB; torch/csrc/cuda/CUDABlas.cpp,
// getChosenWorkspaceSize). Training has two streams doing matmuls (forward and autograd), so two.
inline constexpr int64_t kCublasWorkspaceBytes = 32 * kMiB;

// PyTorch's caching allocator rounds every block up to 512 bytes
// (c10/cuda/CUDACachingAllocator.cpp, kMinBlockSize).
inline constexpr int64_t kAllocatorRoundBytes = 512;

// ---- transformers (eager attention) ----------------------------------------------------------

// Bytes held per attention-score element at the peak of transformers' eager_attention_forward:
// bf16 scores (2) + the fp32 upcast softmax materialises from them (4) + its fp32 result (4)
// (modeling_utils eager_attention_forward: softmax(..., dtype=float32).to(dtype)).
inline constexpr int64_t kEagerScoreBytes = 10;

// ---- vLLM (V1 engine, >= 0.19) ---------------------------------------------------------------

// vLLM pads the vocabulary of VocabParallelEmbedding / ParallelLMHead to a multiple of 64 before
// splitting it over TP ranks (vllm/model_executor/layers/vocab_parallel_embedding.py,
// DEFAULT_VOCAB_PADDING_SIZE).
inline constexpr int64_t kVllmVocabPadding = 64;

// Memory outside PyTorch that grows during vLLM's profile run ("non-torch forward increase"),
// measured in vLLM 0.19 startup logs on H100 (vllm_startup.jsonl, non_torch_bytes), for all models:
//   TP = 1, PP = 1: 0.24-0.26 GiB (cuBLAS/cuBLASLt handles and workspaces, Triton/flash-attn
//                   kernels' scratch)
//   PP > 1 (TP = 1): 0.07 GiB (the P2P send/recv path replaces the first-stage sampler kernels)
//   TP > 1:         2.07-2.21 GiB (NCCL communicator buffers plus vLLM's custom all-reduce IPC
//                   buffers, registered per peer)
inline constexpr int64_t kVllmNonTorchSingleGpuBytes = 256 * kMiB;
inline constexpr int64_t kVllmNonTorchPipelineBytes = 72 * kMiB;
inline constexpr int64_t kVllmNonTorchTensorParallelBytes = 2150 * kMiB;

// Memory vLLM's workers hold before the profiling snapshot, outside the KV budget, beyond the CUDA
// context: with more than one GPU per replica (TP or PP), the NCCL communicators and the custom
// all-reduce / P2P buffers set up in init_device (vllm/v1/worker/gpu_worker.py,
// init_worker_distributed_environment). vllm_startup.jsonl init_non_torch_bytes: 0.51 GiB on one
// GPU (the context), 1.43-1.53 GiB for every dense model at TP 2/4 or PP 2/4 (cases 34, 35, 56-59,
// 81, 82, 85): 0.92-1.02 GiB more; the two MoE models at TP 2 (gpt-oss-20b, Kimi-VL-A3B, cases
// 70, 71) 1.99 GiB: 0.48 GiB more again (the MoE all-to-all communicator vLLM creates for them).
// Holds for 0.19 on H100.
inline constexpr int64_t kVllmInitDistributedBytes = 1000 * kMiB;
inline constexpr int64_t kVllmInitDistributedMoeBytes = 490 * kMiB;

// vLLM's sampler during the profile run holds, per logit element of the
// [min(max_num_seqs, max_num_batched_tokens), vocab] dummy batch, beyond the logits in the model
// dtype: their fp32 copy (4), softmax probabilities (4), the exponential noise of the Gumbel-max
// sampler (4) and a byte of top-k/top-p mask: 13. With bf16 logits that is 15 B per element,
// matching the 14.8-15.5 B measured over every sampler-dominated case of vllm_startup.jsonl
// (activation_peak_bytes / (1024 x vocab)); the fp32 run (case 52) gives 17.
inline constexpr int64_t kVllmSamplerFp32BytesPerLogit = 13;
// V0's profile run samples with top_p=0.99, top_k=vocab-1 "to reflect the accurate memory usage"
// (vllm/worker/model_runner.py profile_run), which takes the sorting path of
// vllm/model_executor/layers/sampler.py _apply_top_k_top_p. At its peak, per logit element beyond
// the logits in the model dtype: the fp32 logits (4), logits_sort (4), logits_idx (int64, 8),
// probs_sort (4), probs_sum (4), the top-k and top-p masks (1 + 1) and the re-sorted logits
// (4): 30. Holds for V0 (<= 0.7 as the default engine, V0 to 0.10).
inline constexpr int64_t kVllmV0SamplerFp32BytesPerLogit = 30;

// vLLM's MXFP4 MoE kernels on Hopper pad each expert's hidden and per-rank intermediate dims to
// multiples of 256 (vllm/model_executor/layers/quantization/mxfp4.py, weight creation for the
// triton_kernels / Marlin backends).
inline constexpr int64_t kVllmMxfp4Alignment = 256;

// vLLM's KV-cache block size in tokens (--block-size default).
inline constexpr int64_t kVllmDefaultBlockSize = 16;

// vLLM's scheduler defaults for the OpenAI server (vllm/engine/arg_utils.py get_batch_defaults,
// 0.9+): on GPUs with >= 70 GiB that are not A100s, max_num_batched_tokens 8192 and max_num_seqs
// 1024; otherwise (and in V1 before 0.9, and V0's 256 sequences) 2048 and 256. Which version uses
// which: vllm_version.h.
inline constexpr int64_t kVllmLargeGpuBytes = 70 * kGiB;
inline constexpr int64_t kVllmDefaultBatchedTokensLarge = 8192;
inline constexpr int64_t kVllmDefaultMaxSeqsLarge = 1024;
inline constexpr int64_t kVllmDefaultBatchedTokensSmall = 2048;
inline constexpr int64_t kVllmDefaultMaxSeqsSmall = 256;
// V0 turned chunked prefill on by default only for max_model_len above 32K
// (vllm/engine/arg_utils.py create_engine_config, 0.5-0.10); without it a batch holds a whole
// prompt: max(max_model_len, 2048) tokens (vllm/config.py SchedulerConfig).
inline constexpr int64_t kVllmV0ChunkedPrefillAboveTokens = 32768;
// Pooling models whose pooler needs the whole prompt (a bidirectional encoder: CLS or mean
// pooling, is_causal false) run without chunked prefill (vllm/engine/arg_utils.py
// _set_default_args: incremental prefill only for LAST pooling of a causal model). V1 then sets an
// unset max_num_batched_tokens to max_model_len and max_num_seqs to at most that
// (_set_default_args, read at 0.11). Modelled from 0.11, when every model runs on V1 (V0 and its
// encoder-decoder models went in 0.10.2, registry.py _PREVIOUSLY_SUPPORTED_MODELS; V1 gained
// encoder-only attention without a KV cache in PR #21270, mid-0.10): older versions are refused,
// V0's cache engine is not modelled for encoders.
inline constexpr int kVllmEncoderOnlyFromMinor = 11;

// vLLM serves qwen3_next's gated-delta-net layers from 0.10.2, the release that added
// Qwen3NextForCausalLM (on V1's hybrid KV-cache manager); the block alignment and state padding it
// uses (vllm/model_executor/models/config.py HybridAttentionMambaModelConfig) hold through the
// versions read (0.11, 0.19 and later, where vllm/platforms/interface.py
// _align_hybrid_block_size keeps the same arithmetic).
inline constexpr VllmVersion kVllmLinearAttentionFrom{0, 10, 2};
// SGLang's state pool for them is modelled as read at 0.5.10 (the default release here):
// model_runner's _handle_max_mamba_cache splitting the pool by mamba_full_memory_ratio and
// _calculate_mamba_ratio's three states per running request with the radix cache
// (MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO, the no_buffer strategy); earlier releases, whose
// state pool rules were not read, are refused.
inline constexpr VllmVersion kSglangLinearAttentionFrom{0, 5, 10};
// mamba_full_memory_ratio's default (server_args.py) and the states a running request holds with
// and without the radix cache (_calculate_mamba_ratio).
inline constexpr double kSglangMambaFullMemoryRatio = 0.9;
inline constexpr int64_t kSglangMambaStatesPerRequest = 3;

// CUDA-graph memory of vLLM's piecewise capture with the default 67 capture sizes (1, 2, 4, then
// multiples of 8 up to 512): a fixed pool plus a part per decoder layer on the rank (each layer
// contributes graph nodes and its piece's static buffers to every captured size). Read off
// vllm_startup.jsonl cuda_graph_bytes: Llama-3.1-8B at PP 1/2/4 (32/16/8 layers: 0.91/0.65/0.51
// GiB) gives the slope and intercept; other models agree within about 25 %. Scaled by the number
// of capture sizes when max_cudagraph_capture_size differs. Not part of the KV budget in 0.19.
inline constexpr int64_t kVllmCudaGraphBaseBytes = 384 * kMiB;
// SGLang's non-torch memory per piecewise (prefill) CUDA-graph capture size, as its default
// fraction reserves it (python/sglang/srt/server_args.py _handle_gpu_memory_settings: "+=
// len(self.piecewise_cuda_graph_tokens) * 8", MiB; read at the 0.5.10 source).
inline constexpr int64_t kSglangPiecewiseGraphMiB = 8;
inline constexpr int64_t kVllmCudaGraphPerLayerBytes = 18 * kMiB;
inline constexpr int64_t kVllmDefaultCaptureSizes = 67;

// The two rules above as one place for every engine on vLLM's stack (vLLM, SGLang): the
// non-torch bytes a serving rank holds, and the communicators created at init when a replica
// spans more than one GPU.
inline constexpr int64_t VllmNonTorchBytes(int64_t tp, int64_t pp) {
  return tp > 1   ? kVllmNonTorchTensorParallelBytes
         : pp > 1 ? kVllmNonTorchPipelineBytes
                  : kVllmNonTorchSingleGpuBytes;
}
inline constexpr int64_t InitDistributedBytes(int64_t world, bool moe) {
  return world > 1 ? kVllmInitDistributedBytes + (moe ? kVllmInitDistributedMoeBytes : 0) : 0;
}

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_ENGINE_CONSTANTS_H_
