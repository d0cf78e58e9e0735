#ifndef FLEETPLAN_PLANNER_ESTIMATOR_ESTIMATOR_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_ESTIMATOR_H_

// The memory estimator: ModelSpec + engine configuration + parallelism -> bytes per GPU rank.
//
// Engines:
//   - kVllm: vLLM V1 (>= 0.19) semantics. The KV cache takes what gpu_memory_utilization leaves
//     after weights, the profile run's activation peak and non-torch memory
//     (vllm/v1/worker/gpu_worker.py determine_available_memory); CUDA graphs come on top, out of
//     the (1 - utilization) headroom.
//   - kHfTransformers: transformers' eager PyTorch inference (prefill or generate with the
//     dynamic cache), as measured by torch.cuda.max_memory_allocated.
//   - kTraining: one optimizer step of full fine-tuning or LoRA in PyTorch, with ZeRO 0-3
//     sharding over data parallelism (DeepSpeed semantics).
//   - kSglang: SGLang's launch_server: mem_fraction_static of the memory free before the weights
//     holds weights and the KV pool; activations, CUDA graphs and the request table come out of
//     the rest (sglang_model.cc).
//   - kOpenvino: OpenVINO GenAI's LLM/VLM pipelines on one CPU or Intel GPU device: NNCF-compressed
//     weights of each IR (vision, text embeddings, language model), each compiled model's
//     intermediate buffers, and the KV cache (openvino_model.cc, openvino.h).
//   - kLlamaCpp: llama.cpp's llama-server on CUDA GPUs, from a GGUF file's header (llama_cpp.h:
//     EstimateLlamaCpp); Estimate() refuses it, a config.json does not say how a GGUF is quantized.
//
// Accounting is per GPU rank: pipeline stages differ (embeddings and the vision tower on the
// first, final norm and lm_head on the last, layers split as vLLM's get_pp_indices does); the
// tensor-parallel ranks of one stage are identical (KV heads replicated when tp > kv heads, MLA
// latent and vision tower replicated, experts split by expert parallelism).
//
// Pure functions of their arguments; thread-safe; no allocation beyond the result.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/common/names.h"
#include "planner/common/risk.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {

enum class Engine : uint8_t { kVllm, kHfTransformers, kTraining, kLlamaCpp, kSglang, kOpenvino };
// vllm | hf-transformers (alias hf) | training | llama.cpp (aliases llamacpp, llama-cpp) | sglang |
// openvino (aliases openvino-genai, ov).
const Vocabulary<Engine>& EngineNames();
inline const char* EngineName(Engine e) { return EngineNames().Name(e); }

// Compute and weight dtypes a request may ask for: bfloat16 (bf16), float16 (fp16, half),
// float32 (fp32, float) — the words config.json's torch_dtype, vLLM's --dtype and PyTorch use.
const Vocabulary<DType>& ComputeDTypeNames();

// KV-cache element type, as vLLM's --kv-cache-dtype names it: auto (the compute dtype), bfloat16,
// float16, fp8 / fp8_e4m3 / fp8_e5m2 (one byte per element).
enum class KvCacheDType : uint8_t { kAuto, kBFloat16, kFloat16, kFp8, kFp8E4M3, kFp8E5M2 };
const Vocabulary<KvCacheDType>& KvCacheDTypeNames();
// Bytes per KV element when the compute dtype is `compute`.
int64_t KvElementBytes(KvCacheDType kv, DType compute);

struct Parallelism {
  int64_t tp = 1;  // tensor parallel
  int64_t pp = 1;  // pipeline parallel
  int64_t ep = 1;  // expert parallel (MoE experts split over ep ranks instead of TP-sharded)
  int64_t dp = 1;  // data parallel (replicas; ZeRO shards over it in training)
  int64_t world() const { return tp * pp; }
};

// --speculative-config's method: draft_model (VllmConfig::draft), mtp (the model's own MTP layers,
// ModelSpec::mtp; vllm/model_executor/models/deepseek_mtp.py, glm4_moe_mtp.py) or ngram (prompt
// lookup: no weights and no KV, only the lookahead slots; vllm/v1/spec_decode/ngram_proposer.py),
// eagle / eagle3 (a head's config as VllmConfig::draft: vllm/v1/spec_decode/eagle.py shares the
// target's embedding, and for eagle its lm_head; models/llama_eagle.py, llama_eagle3.py).
enum class SpeculativeMethod : uint8_t { kDraftModel, kMtp, kNgram, kEagle, kEagle3 };
const Vocabulary<SpeculativeMethod>& SpeculativeMethodNames();
// eagle or eagle3: a head's config is the draft (VllmConfig::draft).
inline bool IsEagleHead(SpeculativeMethod m) {
  return m == SpeculativeMethod::kEagle || m == SpeculativeMethod::kEagle3;
}

// vLLM's engine arguments that change memory. The defaults are vLLM's own (the one place they are
// written down in fleetplan: the CLI, the server and the planner map "unset" to these).
struct VllmConfig {
  // The vLLM version whose semantics apply (vllm_version.h); empty: 0.19, the calibrated one.
  std::string version;
  // --gpu-memory-utilization; 0: the version's default (0.9; 0.92 from 0.22, vllm/config/cache.py).
  double gpu_memory_utilization = 0;
  int64_t max_model_len = 0;           // 0: the model's max_position_embeddings
  int64_t max_num_seqs = 0;            // 0: the version's default for the GPU (vllm_version.h)
  int64_t max_num_batched_tokens = 0;  // 0: the version's default for the GPU
  int64_t block_size = 16;             // --block-size (CacheConfig.block_size)
  bool enforce_eager = false;
  // Largest CUDA-graph capture size; 0: vLLM's default min(2 x max_num_seqs, 512).
  int64_t max_cudagraph_capture_size = 0;
  // Serving LoRA adapters (--enable-lora): max_loras slots of max_lora_rank pre-allocated on each
  // rank for every adapted linear layer (vllm/lora/layers create_lora_weights); max_cpu_loras
  // adapters cached in host memory (0: max_loras, vLLM's default).
  bool enable_lora = false;
  int64_t max_loras = 1;
  int64_t max_lora_rank = 16;
  int64_t max_cpu_loras = 0;
  // Speculative decoding with a draft model (--speculative-config '{"model": draft_model,
  // "num_speculative_tokens": N}'): its weights, KV for its layers and CUDA graphs share the
  // budget on every rank (vllm/v1/spec_decode, the drafter loaded before the profile run). The
  // ModelSpec must outlive the estimate; null: no draft.
  const ModelSpec* draft = nullptr;
  std::string draft_model;  // what --speculative-config names (the launch line)
  int64_t num_speculative_tokens = 0;
  // kMtp: Estimate drafts with ModelSpec::mtp (draft stays null); kNgram: no draft at all;
  // kEagle, kEagle3: `draft` is the head's config.
  SpeculativeMethod speculative_method = SpeculativeMethod::kDraftModel;
  // Offload: --cpu-offload-gb moves up to this much of each GPU's weights to host memory (read
  // over UVA); --swap-space is host memory for preempted KV blocks per GPU (V0 only; 0: V0's
  // default of 4 GiB; V1 preempts by recomputation and allocates none). GiB (2^30).
  double cpu_offload_gb = 0;
  double swap_space_gb = 0;
  // Linear-attention states (qwen3_next, vllm_model.cc KvGroups): --mamba-cache-dtype for the conv
  // state and --mamba-ssm-cache-dtype for the recurrent one (vllm/config/cache.py MambaDType:
  // auto, float32, float16, bfloat16; empty is auto: the model dtype, and the ssm one follows the
  // conv one).
  std::string mamba_cache_dtype;
  std::string mamba_ssm_cache_dtype;
};

// SGLang's --speculative-algorithm: EAGLE and EAGLE3 (a draft checkpoint of a few layers),
// NEXTN (the model's own num_nextn_predict_layers, ModelSpec::mtp; SGLang runs it as EAGLE),
// STANDALONE (a small draft model) and NGRAM (prompt lookup: no weights, no KV); none (also "").
enum class SglangSpeculative : uint8_t { kNone, kEagle, kEagle3, kNextn, kStandalone, kNgram };
const Vocabulary<SglangSpeculative>& SglangSpeculativeNames();

// SGLang's server arguments that change memory (python/sglang/srt/server_args.py). 0: SGLang's
// default, which depends on the GPU's memory and the parallelism (sglang_model.cc).
struct SglangConfig {
  double mem_fraction_static = 0;    // --mem-fraction-static
  int64_t context_length = 0;        // --context-length (0: max_position_embeddings)
  int64_t chunked_prefill_size = 0;  // --chunked-prefill-size
  int64_t cuda_graph_max_bs = 0;     // --cuda-graph-max-bs
  int64_t max_running_requests = 0;  // --max-running-requests (0: from the pool's size)
  int64_t page_size = 1;             // --page-size
  bool disable_cuda_graph = false;   // --disable-cuda-graph
  // --enable-lora: LoRAMemoryPool's buffers for max_loras_per_batch adapters of max_lora_rank on
  // the normalized target modules (python/sglang/srt/lora/mem_pool.py, utils.py
  // get_normalized_target_modules): q_proj/k_proj/v_proj/qkv_proj, o_proj,
  // gate_proj/up_proj/gate_up_proj, down_proj; empty or "all": those four.
  bool enable_lora = false;
  int64_t max_loras_per_batch = 8;  // --max-loras-per-batch (SGLang's default)
  int64_t max_lora_rank = 0;        // --max-lora-rank (required: no adapters to infer it from)
  std::vector<std::string> lora_target_modules;  // --lora-target-modules
  // --max-loaded-loras: adapters each rank's process keeps whole in host memory (lora_manager.py
  // loads every adapter's tensors on the CPU); 0: unbounded, not counted.
  int64_t max_loaded_loras = 0;
  // The SGLang release whose semantics apply ("0.5.10", "v0.5.11"); empty: 0.5.10. They differ
  // only for a speculative draft: up to 0.5.10 the draft is loaded after the target's KV pool is
  // sized and must fit a flat reserve; later releases count it before (sglang_model.cc).
  std::string version;
  // Speculative decoding. EAGLE, EAGLE3 and STANDALONE need the draft checkpoint's config
  // (`draft`, which must outlive the estimate; `draft_model` is what
  // --speculative-draft-model-path names); NEXTN drafts with ModelSpec::mtp. 0: SGLang's
  // defaults (3 steps, top-k 1, 4 draft tokens), written out in the launch line.
  SglangSpeculative speculative_algorithm = SglangSpeculative::kNone;
  const ModelSpec* draft = nullptr;
  std::string draft_model;
  int64_t speculative_num_steps = 0;         // --speculative-num-steps
  int64_t speculative_eagle_topk = 0;        // --speculative-eagle-topk
  int64_t speculative_num_draft_tokens = 0;  // --speculative-num-draft-tokens
  // Hybrid SWA models (gpt-oss): a sliding layer's tokens over a full layer's
  // (--swa-full-tokens-ratio; 0: 0.8), or one full-size pool (--disable-hybrid-swa-memory).
  double swa_full_tokens_ratio = 0;
  bool disable_hybrid_swa_memory = false;
  // --enable-piecewise-cuda-graph (prefill graphs at piecewise_cuda_graph_max_tokens' capture
  // sizes; 0: chunked_prefill_size, MLA models 2048) and --piecewise-cuda-graph-max-tokens.
  bool enable_piecewise_cuda_graph = false;
  int64_t piecewise_cuda_graph_max_tokens = 0;
  // Hybrid linear-attention models (qwen3_next): the mamba state pool (sglang_model.cc).
  int64_t max_mamba_cache_size = 0;    // --max-mamba-cache-size (0: from the ratio below)
  double mamba_full_memory_ratio = 0;  // --mamba-full-memory-ratio (0: SGLang's 0.9)
  std::string mamba_ssm_dtype;         // --mamba-ssm-dtype: float32 (empty) or bfloat16
  // --disable-radix-cache: no prefix sharing; a running request then holds one state, not three.
  bool disable_radix_cache = false;
};

// llama.cpp's flash-attention switch (-fa): auto lets the backend decide (on for CUDA when the
// head sizes have kernels), on, off.
enum class FlashAttn : uint8_t { kAuto, kOn, kOff };
const Vocabulary<FlashAttn>& FlashAttnNames();

// llama-server's arguments that change memory, with its defaults (common/common.h common_params,
// tools/server/server.cpp): the one place fleetplan writes them down.
struct LlamaCppConfig {
  int64_t n_ctx = 0;        // -c; 0: the model's context_length (or slots x the workload's context)
  int64_t n_parallel = 0;   // -np; 0: the workload's concurrency, else llama-server's auto (4
                            // slots sharing one unified KV cache)
  bool kv_unified = false;  // --kv-unified: one KV cache all slots share (auto -np sets it)
  int64_t n_batch = 2048;   // -b
  int64_t n_ubatch = 512;   // -ub: the tokens of the worst-case graph the compute buffer holds
  std::string cache_type_k = "f16";  // -ctk
  std::string cache_type_v = "f16";  // -ctv (a quantized V needs flash attention)
  FlashAttn flash_attn = FlashAttn::kAuto;
  int64_t n_gpu_layers = -1;         // -ngl; -1: auto (--fit picks), > block_count: all
  std::vector<double> tensor_split;  // -ts, one weight per GPU; empty: by free memory
  int64_t n_cpu_moe = 0;             // --n-cpu-moe: the first N layers' experts stay on the CPU
  bool fit = true;                   // --fit (on by default): keep a margin free on each GPU
  int64_t fit_margin_bytes = int64_t{1} << 30;  // --fit-target (1024 MiB, common/common.h)
  bool swa_full = false;                        // --swa-full
  // Ollama on top of llama.cpp: its defaults where they differ (llama_cpp.h), and its launch line.
  bool ollama = false;
  // From a config.json (no GGUF): the file type the model is converted to (gguf_convert.h: f16,
  // q8_0, q4_K_M ...); required there, unused with a GGUF.
  std::string file_type;
  // A vision-language model's mmproj: the image clip's compute buffer is sized for (none: clip's
  // warm-up image).
  int64_t images = 0;
  int64_t image_height = 0;
  int64_t image_width = 0;
};

// OpenVINO GenAI (openvino.h has the rules). The device the pipeline runs on: one x86 CPU (the
// host's memory) or one Intel GPU.
enum class OvDevice : uint8_t { kCpu, kGpu };
const Vocabulary<OvDevice>& OvDeviceNames();  // cpu | gpu
// NNCF weight compression as optimum-cli export openvino --weight-format names it (fp16, fp32 keep
// the weights; int8 is int8_asym channel-wise; int4 is int4_asym unless --sym).
enum class OvWeightFormat : uint8_t { kFp32, kFp16, kInt8Asym, kInt8Sym, kInt4Asym, kInt4Sym };
const Vocabulary<OvWeightFormat>& OvWeightFormatNames();
// KV-cache element precision (the plugin's KV_CACHE_PRECISION): u8 and u4 store a scale and a zero
// point per group of each token's head; f16, bf16, f32 store plain elements.
enum class OvKvPrecision : uint8_t { kDefault, kU8, kU4, kF16, kBf16, kF32 };
const Vocabulary<OvKvPrecision>& OvKvPrecisionNames();
// Inference precision of activations (INFERENCE_PRECISION_HINT): the CPU plugin's default is bf16
// on CPUs with AMX or AVX512-BF16 and f32 elsewhere; the GPU plugin's is f16.
enum class OvInferencePrecision : uint8_t { kDefault, kF32, kBf16, kF16 };
const Vocabulary<OvInferencePrecision>& OvInferencePrecisionNames();

struct OpenvinoConfig {
  OvDevice device = OvDevice::kCpu;
  // Unset: the model folder's quantization (openvino_config.json) when read, else fp16 (what
  // optimum-cli exports without --weight-format).
  bool weight_format_set = false;
  OvWeightFormat weight_format = OvWeightFormat::kFp16;
  int64_t group_size = 128;  // int4 groups (--group-size; -1: channel-wise)
  double ratio = 1.0;        // --ratio: share of the language model's layers in int4, rest int8
  // NNCF's default (all_layers=False): with int4, the lm_head stays int8; vision and embedding
  // models are int8 whenever the language model is compressed (optimum-intel's VLM export).
  bool all_layers = false;
  OvKvPrecision kv_precision = OvKvPrecision::kDefault;  // default: CPU u8, GPU f16
  int64_t kv_group_size = 0;  // KEY/VALUE_CACHE_GROUP_SIZE; 0: one group per head
  OvInferencePrecision inference_precision = OvInferencePrecision::kDefault;
  bool amx = false;  // the CPU has AMX or AVX512-BF16 (CPU default precision bf16)
  // Continuous batching (SchedulerConfig, the LLM serving path and OpenVINO Model Server):
  // cache_size GB of KV blocks, or num_kv_blocks; both 0 with continuous_batching: the cache grows
  // on demand (a memory risk). Without continuous batching the pipeline is stateful and the KV
  // lives in the model's state, as long as the sequence.
  bool continuous_batching = false;
  double cache_size_gb = 0;
  int64_t num_kv_blocks = 0;
  // The request: images of height x width pixels (a VLM), text tokens, generated tokens.
  int64_t images = 0;
  int64_t image_height = 0;
  int64_t image_width = 0;
  int64_t prompt_tokens = 512;
  int64_t new_tokens = 64;
  // Continuous batching's scheduler (SchedulerConfig): tokens per step (prefill is split into
  // chunks of these with dynamic_split_fuse, its default) and sequences per step.
  int64_t max_num_batched_tokens = 256;
  int64_t max_num_seqs = 256;
  // The language model's prefill length when known (the reference study gives it); 0: the prompt
  // tokens plus the images' tokens.
  int64_t llm_tokens = 0;
};

struct HfConfig {
  bool eager_attention = false;  // attn_implementation "eager" (else "sdpa")
  bool generate = false;         // model.generate (else one prefill forward)
  bool all_logits = false;       // logits_to_keep=0: [B, S, V] logits (prefill only)
  int64_t batch = 1;
  int64_t prompt_tokens = 512;
  int64_t new_tokens = 64;  // generate only
  // Vision-language: images per sequence and their size. With vision_tower_only, the estimate is
  // of the vision encoder alone (its weights and one forward over batch x images images).
  int64_t images = 0;
  int64_t image_height = 0;
  int64_t image_width = 0;
  bool vision_tower_only = false;
};

enum class Optimizer : uint8_t { kAdamW, kSgd, kAdamW8bit };
// adamw | sgd | adamw-8bit.
const Vocabulary<Optimizer>& OptimizerNames();

struct TrainingConfig {
  Optimizer optimizer = Optimizer::kAdamW;
  DType param_dtype = DType::kBFloat16;  // dtype the parameters live in
  bool autocast_bf16 = false;            // mixed precision: fp32 params, bf16 compute
  bool gradient_checkpointing = false;
  int64_t lora_rank = 0;  // > 0: LoRA on a frozen base
  // LoRA target module names (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj);
  // empty: all of them.
  std::vector<std::string> lora_targets;
  DType lora_dtype = DType::kFloat32;  // peft upcasts adapters to fp32 by default
  int zero_stage = 0;                  // 0..3, sharded over Parallelism::dp
  int64_t batch = 1;                   // micro-batch per GPU
  int64_t seq_tokens = 2048;
};

struct EstimateRequest {
  Engine engine = Engine::kVllm;
  Parallelism parallelism;
  // Compute/weight dtype; kFloat32 keeps an fp32 checkpoint in fp32. Default: the checkpoint's
  // torch_dtype, except that vLLM runs fp32 checkpoints in bf16 as vLLM's dtype="auto" does.
  bool dtype_set = false;
  DType dtype = DType::kBFloat16;
  KvCacheDType kv_cache_dtype = KvCacheDType::kAuto;
  int64_t gpu_memory_bytes = 0;  // the GPU's total memory as the driver reports it
  // The GPU's product name when known ("A100-80GB", "NVIDIA A100-SXM4-80GB"): vLLM's scheduler
  // defaults depend on it (no large defaults on A100s).
  std::string gpu_name;
  VllmConfig vllm;
  SglangConfig sglang;
  HfConfig hf;
  TrainingConfig training;
  // llama.cpp: parallelism.pp is the number of GPUs the layers split over (-sm layer, its
  // default); tp must be 1.
  LlamaCppConfig llama_cpp;
  OpenvinoConfig openvino;
  // Workload a serving replica must hold: `concurrency` sequences of `context_tokens` each.
  int64_t concurrency = 0;
  int64_t context_tokens = 0;
};

// One pipeline stage; its tp ranks are identical.
struct StageMemory {
  int64_t pp_stage = 0;
  int64_t first_layer = 0;
  int64_t num_layers = 0;
  int64_t weights_bytes = 0;
  int64_t kv_cache_bytes = 0;         // vLLM: the KV pool allocated; HF: the cache at the peak
  int64_t activation_peak_bytes = 0;  // transient tensors at the peak (vLLM: profile-run peak)
  int64_t cuda_context_bytes = 0;
  int64_t engine_overhead_bytes = 0;  // vLLM non-torch (NCCL, workspaces); HF: cuBLAS + inputs
  int64_t cuda_graph_bytes = 0;
  int64_t gradient_bytes = 0;
  int64_t optimizer_bytes = 0;
  int64_t fragmentation_bytes = 0;  // caching-allocator reserve beyond allocated
  int64_t total_bytes = 0;          // everything above: the point estimate of the GPU's use
  // The uncertainty band around total_bytes (uncertainty.h): the GPU's real use lies in
  // [low_bytes, high_bytes] with the confidence of the calibration files, wider outside them.
  // high_bytes is what the planner reserves.
  int64_t low_bytes = 0;
  int64_t high_bytes = 0;
  // What torch.cuda.max_memory_allocated would show (no context, no fragmentation).
  int64_t torch_peak_allocated_bytes = 0;
  // vLLM: KV-cache capacity on this rank.
  int64_t available_kv_cache_bytes = 0;
  int64_t num_gpu_blocks = 0;
  int64_t kv_cache_tokens = 0;
  // vLLM: the KV pool's low end, when the memory outside it takes the high end of its band.
  int64_t available_kv_cache_low_bytes = 0;
  int64_t kv_cache_tokens_low = 0;
  int64_t kv_cache_bytes_per_token = 0;  // this rank's share of one token's KV
  // vLLM's paged KV cache on this rank: bytes of one block across the layers that share it, the
  // blocks one sequence of the request's context takes (sliding-window layers keep at most their
  // window), and the KV bytes the request's workload (concurrency x context) takes.
  int64_t kv_block_bytes = 0;
  int64_t kv_blocks_per_sequence = 0;
  int64_t workload_kv_bytes = 0;
};

struct MemoryEstimate {
  Engine engine = Engine::kVllm;
  Parallelism parallelism;
  std::vector<StageMemory> stages;  // one per pipeline stage
  int64_t gpu_memory_bytes = 0;
  int64_t max_total_bytes = 0;  // the fullest rank (point estimate)
  int64_t max_high_bytes = 0;   // the fullest rank's high end: what must fit
  // The high end fits every GPU (and, for vLLM, the workload fits the KV pool's low end).
  bool fits = false;
  int64_t headroom_bytes = 0;  // gpu_memory_bytes - max_high_bytes (negative: over)
  double headroom_ratio = 0;
  Risk risk =
      Risk::kHigh;  // RiskOfUse(max_high_bytes, gpu_memory_bytes); high when it does not fit
  // vLLM: the replica's token capacity (the smallest stage's) and what it means for the workload.
  int64_t kv_cache_tokens = 0;
  int64_t max_concurrency = 0;      // at context_tokens (or max_model_len)
  int64_t kv_cache_tokens_low = 0;  // the low end of the band (what a plan counts on)
  int64_t max_concurrency_low = 0;
  int64_t max_model_len = 0;
  double mem_fraction_static = 0;  // SGLang: the fraction it runs at (given, or its default rule)
  // Host (CPU) memory the replica takes besides its GPUs: weights and KV of layers left on the CPU,
  // host compute and output buffers (llama.cpp). Never checked against a GPU.
  int64_t host_bytes = 0;
  // OpenVINO: the pipeline's models (vision encoder, text embeddings, language model), each with
  // its weights and the intermediate buffers its compiled model keeps.
  struct PipelinePart {
    std::string name;
    int64_t weights_bytes = 0;
    int64_t temp_bytes = 0;
  };
  std::vector<PipelinePart> pipeline_parts;
  std::string reason;  // why it does not fit, when it does not
  std::vector<std::string> notes;
  // The config had memory-relevant fields no family builder read, or an unknown model_type
  // (ModelSpec::unverified): these numbers are not to be trusted.
  bool unverified = false;
  // A bidirectional encoder (ModelSpec::encoder_only): no KV cache; max_concurrency is the prompts
  // of the context one forward takes (vLLM), more queue.
  bool encoder_only = false;

  // Why the band is wider than the calibrated one (outside the calibration files).
  std::vector<std::string> band_widened;

  // Per-rank high ends in rank order (rank = stage * tp + tp_rank): what the planner reserves.
  std::vector<int64_t> BytesPerRank() const;
};

// Validates `request` against `spec` (parallelism divides heads, sizes positive ...) and returns
// the estimate. INVALID_ARGUMENT names the offending field and value.
absl::StatusOr<MemoryEstimate> Estimate(const ModelSpec& spec, const EstimateRequest& request);

// What a catalog lists about a model: unsharded weights in the checkpoint's dtype and
// quantization (no engine extras), and one token's KV bytes in the model dtype.
struct ModelSummary {
  int64_t params = 0;
  int64_t weights_bytes = 0;
  int64_t kv_bytes_per_token = 0;
};
ModelSummary SummarizeModel(const ModelSpec& spec);

// Language-model tokens one image of height x width pixels becomes, per the family's processor:
//   fixed        Gemma-3 256 (pooled); LLaVA-1.5 576 (+1 with the "full" feature strategy)
//   merged       Qwen2-VL / Qwen2.5-VL: resized to multiples of patch x merge (28 px) within
//                [56^2, 28^2 x 16384] pixels, then (h/14)(w/14)/4; Kimi-VL: at most 4096 patches,
//                padded to 28 px, then merged 2x2
//   llava-next   the base image plus the best grid of tiles from image_grid_pinpoints, unpadded to
//   the
//                image's aspect ratio, with a newline token per feature row (transformers'
//                get_anyres_image_grid_shape / unpad_image)
// Zero for a model without a vision tower; a non-positive side means the tower's native image_size.
//   tiles        InternVL: tiles x per-tile tokens (ImageTiles)
//   slices       MiniCPM-V: (1 + slices) x (query_num + 2) + a newline between rows of slices
//   hd-crops     Phi-3-vision: (crops + 1) x 144 + 1 + (crop rows + 1) x 12
int64_t ImageTokens(const ModelSpec& spec, int64_t height, int64_t width);
// Tiles an image of height x width becomes (TokenRule::kTiles, InternVL's dynamic_preprocess: the
// grid of at most max_tiles image_size tiles whose aspect ratio is closest to the image's, the
// larger grid on a tie when the image covers more than half of it, plus the thumbnail when cut);
// for MiniCPM-V (kSlices) the resized image plus its slices; for Phi-3-vision (kHdCrops) the
// 336-px crops plus the global view; 1 for other rules.
int64_t ImageTiles(const ModelSpec& spec, int64_t height, int64_t width);

// What the vision encoder runs over for `images` images of height x width, for every engine:
// batch x tokens per pass (patches, with the class token where the tower has one; MiniCPM-V's
// slices are padded to the largest).
struct VisionPasses {
  int64_t batch = 0;
  int64_t tokens = 0;
};
VisionPasses VisionTowerPasses(const ModelSpec& spec, int64_t images, int64_t height,
                               int64_t width);

// The KV bytes one token takes on one rank of `stage` (all its layers), for inverse queries.
int64_t KvBytesPerToken(const ModelSpec& spec, const EstimateRequest& request, int64_t stage);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_ESTIMATOR_H_
