// vLLM V1 (>= 0.19) serving memory, per GPU rank.
//
//   requested  = gpu_total x gpu_memory_utilization
//   available  = requested - (weights + activation_peak + non_torch)      (KV budget)
//   page_bytes = block_size x per-token KV bytes of one layer on this rank
//   num_blocks = floor(available / (page_bytes x layers per KV-cache group))
//   kv_tokens  = floor(num_blocks / number of groups) x block_size
// (vllm/v1/worker/gpu_worker.py determine_available_memory, vllm/v1/core/kv_cache_utils.py
// get_kv_cache_config; hybrid models group layers of equal page size, see calibration README 3.3).
// CUDA graphs are captured after the KV cache is allocated and are not subtracted from the budget:
// they come out of the (1 - utilization) headroom, so they count in total_bytes.
//
// The KV a workload of N sequences of C tokens takes, the max-concurrency report and vLLM's
// start-up check are all derived from one grouping of the stage's layers (KvGroups below), as vLLM
// derives them from each KV spec's max_memory_usage_bytes (vllm/v1/kv_cache_interface.py).

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "planner/common/units.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/rank_layout.h"
#include "planner/estimator/uncertainty.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::estimator {

using internal::CeilDiv;
using internal::RankContext;

namespace {

// The chunk length of the FLA gated-delta-rule kernels (chunk_gated_delta_rule_fwd's BT = 64).
constexpr int64_t kLinearAttentionChunk = 64;

// Transient bytes per token of the profile forward in one decoder layer on this rank (the largest
// layer kind wins). vLLM runs the layer under torch.compile, which frees dead intermediates at
// once, so the peak sits in the MLP: gate_up output [T, 2I/tp] and the act-and-mul output
// [T, I/tp], next to four [T, H] tensors (residual, normed input, attention output, MLP output).
// MoE layers use the fused-MoE kernel's workspaces instead: intermediate_cache1/3 share
// [T, top_k, max(2 I_e, H)] and intermediate_cache2 is [T, top_k, I_e]
// (vllm/model_executor/layers/fused_moe/fused_moe.py), kept by the workspace manager across calls.
struct ForwardBytes {
  int64_t per_token = 0;                // freed when the forward ends
  int64_t moe_workspace_per_token = 0;  // survives into the sampler run
};

ForwardBytes LayerForwardBytes(const RankContext& c, const LayerKind& kind) {
  const Parallelism& p = c.req.parallelism;
  const int64_t h = c.spec.hidden_size;
  ForwardBytes f;
  const MlpSpec& m = kind.mlp;
  int64_t mlp = 0;
  if (m.num_experts > 0) {
    const int64_t tp_e = p.ep > 1 ? 1 : p.tp;
    const int64_t ie = CeilDiv(m.expert_intermediate_size, tp_e);
    f.moe_workspace_per_token = m.experts_per_token * (std::max(2 * ie, h) + ie) * c.a;
    const int64_t shared = CeilDiv(m.shared_intermediate_size, p.tp);
    mlp = 3 * shared * c.a;
  } else {
    const int64_t i = CeilDiv(m.intermediate_size, p.tp);
    mlp = (m.gated ? 3 : 2) * i * c.a;
  }
  int64_t mixer = 0;
  if (const AttentionSpec& a = kind.attention; a.linear_attention) {
    // A gated-delta-net layer's prefill (vllm/model_executor/models/qwen3_next.py
    // Qwen3NextGatedDeltaNet: in_proj_qkvz and in_proj_ba outputs, z kept for the gated norm,
    // the conv1d output; vllm/model_executor/layers/fla/ops/chunk.py chunk_gated_delta_rule_fwd:
    // per value head the gate cumsum and beta (fp32), the chunk's solved triangle A [T, 64], the WY
    // pair w [T, Dk] and u [T, Dv], the per-chunk states h [T / 64, Dk, Dv], v_new and the output
    // [T, Dv]) all live at once, in place of the MLP's tensors.
    const int64_t heads = CeilDiv(a.num_heads, p.tp);
    const int64_t projected = CeilDiv(a.linear_conv_dim + a.num_heads * a.v_head_dim, p.tp) +
                              2 * heads;  // q, k, v, z and b, a
    const int64_t conv = CeilDiv(a.linear_conv_dim, p.tp);
    const int64_t kernel = heads * (kLinearAttentionChunk + a.head_dim + 3 * a.v_head_dim +
                                    CeilDiv(a.head_dim * a.v_head_dim, kLinearAttentionChunk));
    mixer = (projected + conv + kernel) * c.a + heads * 2 * 4;
  }
  f.per_token = std::max(mlp, mixer) + 4 * h * c.a;
  return f;
}

// The KV-cache groups of one stage's layers on one rank. vLLM's hybrid allocator groups layers of
// one attention type (full, sliding window of a given size, linear attention's state) so that
// every group has the same number of layers (the smallest type's count); each block of the shared
// pool then holds one page (block_size tokens of one layer, or one layer's state) for each of the
// group_size layer slots (vllm/v1/core/kv_cache_utils.py _get_kv_cache_groups_uniform_page_size,
// get_kv_cache_config_from_groups). A model with one attention type is one group of all its
// layers.
//
// Linear-attention layers (qwen3_next's gated delta net) keep a state per sequence, not per token:
// a conv state [kernel - 1 + speculative tokens, conv_dim / tp] and a recurrent state
// [Hv / tp, Dv, Dk], both in the model dtype unless --mamba-cache-dtype says otherwise
// (vllm/model_executor/layers/mamba/mamba_utils.py gated_delta_net_state_shape and _dtype). One
// page must hold one layer's state, so vLLM grows the attention block to the smallest multiple of
// the kernel alignment (16 for FlashAttention) whose page is at least the state, and pads the
// state's page to the attention page (vllm/model_executor/models/config.py
// HybridAttentionMambaModelConfig, moved to vllm/platforms/interface.py _align_hybrid_block_size
// in later versions: the same arithmetic). Without prefix caching (hybrid models have it off by
// default: vllm/config/model.py is_prefix_caching_supported) a sequence takes one page per state
// layer, plus one per speculative token (MambaSpec.max_memory_usage_bytes, num_speculative_blocks).
struct KvGroups {
  int64_t block = 16;                           // tokens per block
  int64_t page_per_token = 0;                   // the largest attention layer's KV bytes per token
  int64_t group_size = 0;                       // layer slots per block
  int64_t groups = 1;                           // groups over all types
  std::map<int64_t, int64_t> layers_by_window;  // sliding window (0: full) -> layers
  int64_t state_layers = 0;                     // linear-attention layers
  int64_t state_bytes = 0;                      // one such layer's state, before padding
  int64_t state_pages = 1;                      // pages a sequence takes per state layer

  int64_t BlockBytes() const { return block * page_per_token * group_size; }

  // Tokens a layer of `window` keeps for a sequence of `tokens`: everything for full attention;
  // for a sliding window at most window - 1 + max_num_batched_tokens, plus one block for the
  // window's unaligned start (vllm/v1/kv_cache_interface.py SlidingWindowSpec).
  struct Kept {
    int64_t tokens;
    int64_t extra_blocks;
  };
  static Kept KeptTokens(int64_t window, int64_t tokens, int64_t batched) {
    if (window <= 0) return {tokens, 0};
    return {std::min(tokens, window - 1 + batched), 1};
  }

  // Blocks of the shared pool one sequence of `tokens` takes, summed over groups.
  int64_t BlocksPerSequence(int64_t tokens, int64_t batched) const {
    int64_t blocks = CeilDiv(state_layers, group_size) * state_pages;
    for (const auto& [window, count] : layers_by_window) {
      const Kept kept = KeptTokens(window, tokens, batched);
      blocks += CeilDiv(count, group_size) * (CeilDiv(kept.tokens, block) + kept.extra_blocks);
    }
    return blocks;
  }

  // vLLM's start-up need for one sequence of `tokens`: each layer's max_memory_usage_bytes.
  int64_t MaxMemoryUsageBytes(int64_t tokens, int64_t batched) const {
    int64_t bytes = state_layers * state_pages * block * page_per_token;
    for (const auto& [window, count] : layers_by_window) {
      const Kept kept = KeptTokens(window, tokens, batched);
      bytes += count * (CeilDiv(kept.tokens, block) + kept.extra_blocks) * block * page_per_token;
    }
    return bytes;
  }

  int64_t AttentionLayers() const {
    int64_t n = 0;
    for (const auto& [window, count] : layers_by_window) n += count;
    return n;
  }
};

// The kernel block alignment of the attention backend vLLM picks for a hybrid model's attention
// layers: FlashAttention's multiple of 16 (its get_supported_kernel_block_sizes), or the block
// size asked for when that is larger (_align_hybrid_block_size takes the max of the two).
constexpr int64_t kVllmHybridBlockAlignment = 16;

// Bytes per element of a --mamba-cache-dtype / --mamba-ssm-cache-dtype value (ValidateRequest
// checked it); auto (or empty) is `fallback`.
int64_t MambaDTypeBytes(const std::string& dtype, int64_t fallback) {
  if (dtype == "float32") return 4;
  if (dtype == "float16" || dtype == "bfloat16") return 2;
  return fallback;
}

// One linear-attention layer's state on this rank (see KvGroups): conv rows of kernel - 1 plus the
// speculative tokens in --mamba-cache-dtype (auto: the model dtype), the recurrent state
// [Hv / tp, Dv, Dk] in --mamba-ssm-cache-dtype (auto: the conv state's; mamba_utils.py
// MambaStateDtypeCalculator).
int64_t VllmLinearStateBytes(const RankContext& c, const AttentionSpec& a, int64_t speculative) {
  const int64_t conv_elem = MambaDTypeBytes(c.req.vllm.mamba_cache_dtype, c.a);
  return internal::LinearStateBytes(a, c.req.parallelism.tp, a.linear_conv_kernel - 1 + speculative,
                                    conv_elem,
                                    MambaDTypeBytes(c.req.vllm.mamba_ssm_cache_dtype, conv_elem));
}

KvGroups GroupKvLayers(const RankContext& c, int64_t first, int64_t last, int64_t block,
                       int64_t speculative) {
  KvGroups g;
  g.block = block;
  // The attention page and the state are the model's (every stage aligns to the same block).
  int64_t model_page_per_token = 0;
  for (int64_t l = 0; l < c.spec.num_layers; ++l) {
    const AttentionSpec& a = c.spec.attention(static_cast<int>(l));
    if (a.linear_attention) {
      g.state_bytes = std::max(g.state_bytes, VllmLinearStateBytes(c, a, speculative));
    } else {
      model_page_per_token = std::max(model_page_per_token, internal::LayerKvBytesPerToken(c, a));
    }
  }
  for (int64_t l = first; l < last; ++l) {
    const AttentionSpec& a = c.spec.attention(static_cast<int>(l));
    if (a.linear_attention) {
      ++g.state_layers;
    } else {
      g.layers_by_window[a.sliding_window] += 1;
      g.page_per_token = std::max(g.page_per_token, internal::LayerKvBytesPerToken(c, a));
    }
  }
  if (g.state_bytes > 0 && model_page_per_token > 0) {
    g.page_per_token = model_page_per_token;
    const int64_t align = std::max(kVllmHybridBlockAlignment, block);
    g.block = std::max(block, align * CeilDiv(g.state_bytes, align * model_page_per_token));
    g.state_pages = 1 + speculative;
  }
  std::vector<int64_t> counts;
  for (const auto& [window, count] : g.layers_by_window) counts.push_back(count);
  if (g.state_layers > 0) counts.push_back(g.state_layers);
  g.group_size = last - first;
  if (counts.size() > 1) {
    for (int64_t count : counts) g.group_size = std::min(g.group_size, count);
    g.groups = 0;
    for (int64_t count : counts) g.groups += CeilDiv(count, g.group_size);
  }
  return g;
}

int64_t CudaGraphBytes(const RankContext& c, const VllmProfile& profile, int64_t layers,
                       int64_t max_num_seqs) {
  const VllmConfig& v = c.req.vllm;
  if (v.enforce_eager) return 0;
  int64_t max_size = v.max_cudagraph_capture_size;
  if (max_size == 0) {
    // V1: min(2 x max_num_seqs, 512); V0 captured up to max_num_seqs, at most 256.
    max_size = profile.v1 ? std::min<int64_t>(2 * max_num_seqs, profile.max_cudagraph_batch)
                          : std::min<int64_t>(max_num_seqs, profile.max_cudagraph_batch);
  }
  // Capture sizes: 1, 2, 4, then every multiple of 8 up to max_size.
  int64_t sizes = max_size / 8;
  for (int64_t small : {1, 2, 4}) sizes += small <= max_size ? 1 : 0;
  return internal::CudaGraphBytesForSizes(layers, sizes);
}

}  // namespace

namespace internal {

int64_t ServingForwardPeak(const RankContext& c, int64_t first, int64_t last, bool last_stage,
                           int64_t tokens, int64_t sampler_rows, int64_t sampler_bytes_per_logit) {
  const ModelSpec& spec = c.spec;
  const int64_t h = spec.hidden_size;
  ForwardBytes fwd;
  for (int64_t l = first; l < last; ++l) {
    ForwardBytes f = LayerForwardBytes(
        c, spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of[static_cast<size_t>(l)])]);
    fwd.per_token = std::max(fwd.per_token, f.per_token);
    fwd.moe_workspace_per_token = std::max(fwd.moe_workspace_per_token, f.moe_workspace_per_token);
  }
  // The fused-MoE Triton path keeps its workspace cached across calls; MXFP4 experts run through
  // triton_kernels' matmul_ogs, which allocates per call (freed before the sampler runs).
  const bool workspace_persists = spec.quant.method != QuantSpec::Method::kMxfp4;
  const int64_t moe_workspace = tokens * fwd.moe_workspace_per_token;
  const int64_t kept_workspace = workspace_persists ? moe_workspace : 0;
  int64_t activation = tokens * fwd.per_token + moe_workspace;
  if (!last_stage) {
    // Intermediate tensors (hidden states and residual) handed to the next stage.
    return activation + 2 * tokens * h * c.a;
  }
  // The sampler: logits gathered over TP, so not split by it.
  int64_t sampler = sampler_rows * spec.vocab_size * (c.a + sampler_bytes_per_logit) +
                    tokens * h * c.a + kept_workspace;
  if (spec.vision && c.req.parallelism.pp == 1) {
    // The encoder dummy run's outputs (one embedding per scheduled token) stay cached.
    sampler += tokens * h * c.a;
  }
  return std::max(activation, sampler);
}

int64_t CudaGraphBytesForSizes(int64_t layers, int64_t capture_sizes) {
  const int64_t per_layer = kVllmCudaGraphPerLayerBytes * capture_sizes / kVllmDefaultCaptureSizes;
  return kVllmCudaGraphBaseBytes + layers * per_layer;
}

}  // namespace internal

absl::Status EstimateVllm(const RankContext& c, MemoryEstimate& out) {
  const ModelSpec& spec = c.spec;
  const EstimateRequest& req = c.req;
  const VllmConfig& v = req.vllm;
  const Parallelism& p = req.parallelism;
  const VllmProfile profile = VllmProfileFor(ParseVllmVersion("vllm.version", v.version).value());
  const int64_t max_model_len =
      v.max_model_len > 0 ? v.max_model_len : spec.max_position_embeddings;
  // A bidirectional encoder (BERT) runs on the pooling runner: no KV cache (its encoder-only
  // attention layers get no cache spec: v1 gpu_model_runner.py
  // may_add_encoder_only_layers_to_kv_cache_config, and kv_cache_utils.py skips the memory check
  // for an empty spec), no sampler, and whole prompts per batch.
  const bool encoder = spec.encoder_only;
  const VllmBatchDefaults defaults =
      VllmSchedulerDefaults(profile, req.gpu_memory_bytes, req.gpu_name, max_model_len, encoder);
  const int64_t max_seqs = v.max_num_seqs > 0 ? v.max_num_seqs : defaults.max_num_seqs;
  const int64_t batched =
      v.max_num_batched_tokens > 0 ? v.max_num_batched_tokens : defaults.max_num_batched_tokens;
  const int64_t block = v.block_size;
  out.max_model_len = max_model_len;
  const int64_t requested =
      static_cast<int64_t>(std::floor(static_cast<double>(req.gpu_memory_bytes) *
                                      EffectiveUtilization(v.gpu_memory_utilization, profile)));
  const int64_t non_torch = VllmNonTorchBytes(p.tp, p.pp);
  const int64_t num_reqs = std::min(max_seqs, batched);
  const Margins margins = StageMargins(spec, req);

  int64_t replica_tokens = -1;
  int64_t replica_concurrency = -1;
  int64_t replica_tokens_low = -1;
  int64_t replica_concurrency_low = -1;
  const int64_t context = req.context_tokens > 0 ? req.context_tokens : max_model_len;
  int64_t lora_bytes = 0;
  // A draft model (speculative decoding) on the one stage (ValidateRequest: pp = 1), sharded as
  // the target is: its weights, KV per token, profile forward and decode graphs.
  std::optional<RankContext> draft;
  if (v.draft != nullptr) draft.emplace(*v.draft, req, internal::ResolveDType(*v.draft, req));
  int64_t draft_kv_per_token = 0, draft_weights = 0;
  if (draft) {
    draft_weights = internal::DraftWeights(
        *draft, v.speculative_method == SpeculativeMethod::kEagle ? internal::DraftHead::kEagle
                : v.speculative_method == SpeculativeMethod::kEagle3
                    ? internal::DraftHead::kEagle3
                    : internal::DraftHead::kWholeModel);
    for (int64_t l = 0; l < v.draft->num_layers; ++l) {
      draft_kv_per_token +=
          internal::LayerKvBytesPerToken(*draft, v.draft->attention(static_cast<int>(l)));
    }
  }
  for (int64_t stage = 0; stage < p.pp; ++stage) {
    StageMemory s = internal::NewStage(spec, p.pp, stage);
    const int64_t first = s.first_layer, last = s.first_layer + s.num_layers;
    // LoRA slots are allocated with the model, before the profile: vLLM counts them as weights.
    const int64_t lora = c.req.vllm.enable_lora
                             ? internal::LoraSlotBytes(c, first, last, c.req.vllm.max_loras,
                                                       c.req.vllm.max_lora_rank)
                             : 0;
    s.weights_bytes = internal::StageWeights(c, stage, first, last) + lora;
    s.weights_bytes += draft_weights;
    if (v.cpu_offload_gb > 0) {
      // vllm/model_executor/models/utils.py maybe_offload_to_cpu: parameters move to pinned host
      // memory until cpu_offload_gb is used up (per GPU).
      const int64_t offload = std::min(
          s.weights_bytes, static_cast<int64_t>(v.cpu_offload_gb * static_cast<double>(kGiB)));
      s.weights_bytes -= offload;
      out.host_bytes += offload * p.tp;
    }
    lora_bytes = std::max(lora_bytes, lora);
    s.engine_overhead_bytes = non_torch;
    // Communicators set up before the profiling snapshot: outside the budget, like the context.
    s.cuda_context_bytes += InitDistributedBytes(p.world(), spec.is_moe());

    // Profile run: a forward of `batched` tokens, then (last stage) the sampler on num_reqs rows.
    const int64_t per_logit =
        profile.v1 ? kVllmSamplerFp32BytesPerLogit : kVllmV0SamplerFp32BytesPerLogit;
    // A pooling model's dummy run pools the hidden states instead of sampling (_dummy_pooler_run).
    int64_t activation = internal::ServingForwardPeak(c, first, last, stage == p.pp - 1, batched,
                                                      encoder ? 0 : num_reqs, per_logit);
    if (draft) {
      // The drafter's dummy run follows the target's; the peak is the larger of the two.
      activation =
          std::max(activation, internal::ServingForwardPeak(*draft, 0, v.draft->num_layers, true,
                                                            batched, num_reqs, per_logit));
    }
    s.activation_peak_bytes = activation;
    // What the version's profiling subtracts from the budget besides weights and the profile peak
    // (vllm_version.h): the non-torch increase (0.6.4+ / V1 0.9+), everything outside torch on the
    // device, context and communicators included (V0 0.2.4-0.6.3, V1 0.8), or nothing (<= 0.2.3:
    // it then comes on top of the budget).
    int64_t outside_torch = non_torch;
    if (profile.profiling == VllmProfiling::kWholeDevicePeak) {
      outside_torch += s.cuda_context_bytes;
    } else if (profile.profiling == VllmProfiling::kTorchPeakOnly) {
      outside_torch = 0;
    }
    s.available_kv_cache_bytes = requested - s.weights_bytes - activation - outside_torch;
    if (draft && !profile.v1) {
      // V0's profiler did not see the draft (vllm PR #14067): the pool takes its memory too.
      s.available_kv_cache_bytes += draft_weights;
    }

    // Speculation allocates lookahead slots for the proposed tokens (the scheduler's
    // num_lookahead_tokens), whatever proposes them; a linear-attention state keeps one more page
    // and conv row for each.
    const bool speculating = draft || v.speculative_method == SpeculativeMethod::kNgram;
    const int64_t speculative = speculating ? v.num_speculative_tokens : 0;
    KvGroups groups = GroupKvLayers(c, first, last, block, speculative);
    if (groups.state_layers > 0 && stage == 0) {
      // vLLM's own log lines (HybridAttentionMambaModelConfig), so a user can check them.
      const int64_t page = groups.block * groups.page_per_token;
      out.notes.push_back(absl::StrCat(
          "linear-attention layers keep a ", groups.state_bytes,
          "-byte state per layer and sequence on each rank",
          groups.state_pages > 1
              ? absl::StrCat(" (", groups.state_pages, " pages with the speculative tokens)")
              : "",
          ": vLLM sets the attention block size to ", groups.block,
          " tokens so that one page holds it and pads the state's page by ",
          absl::StrFormat("%.2f", 100.0 * static_cast<double>(page - groups.state_bytes) /
                                      static_cast<double>(groups.state_bytes)),
          "%; the pool's ", groups.groups, " groups of ", groups.group_size,
          " layers give each sequence a page per state layer group besides its attention blocks"));
    }
    if (draft) {
      // The drafter's layers join the pool as layers of one more group member each: one block
      // holds block_size tokens of every target and draft layer (all full attention, checked by
      // ValidateRequest), and every sequence keeps num_speculative_tokens lookahead slots.
      groups.page_per_token = (groups.page_per_token * s.num_layers + draft_kv_per_token);
      groups.group_size = 1;
      groups.layers_by_window = {{0, 1}};
    }
    s.kv_cache_bytes_per_token =
        draft ? groups.page_per_token : groups.page_per_token * groups.AttentionLayers();
    s.kv_block_bytes = groups.BlockBytes();
    if (s.available_kv_cache_bytes > 0 && s.kv_block_bytes > 0) {
      s.num_gpu_blocks = s.available_kv_cache_bytes / s.kv_block_bytes;
      s.kv_cache_tokens = s.num_gpu_blocks / groups.groups * groups.block;
      s.kv_cache_bytes = s.num_gpu_blocks * s.kv_block_bytes;
    }
    // The pool's low end: what the budget leaves when the rest takes the high end of its band.
    s.available_kv_cache_low_bytes = s.available_kv_cache_bytes - VllmNonKvMarginBytes(margins, s);
    int64_t blocks_low = 0;
    if (s.available_kv_cache_low_bytes > 0 && s.kv_block_bytes > 0) {
      blocks_low = s.available_kv_cache_low_bytes / s.kv_block_bytes;
      s.kv_cache_tokens_low = blocks_low / groups.groups * groups.block;
    }
    s.kv_blocks_per_sequence = groups.BlocksPerSequence(context + speculative, batched);
    s.workload_kv_bytes = req.concurrency * s.kv_blocks_per_sequence * s.kv_block_bytes;
    int64_t concurrency =
        s.kv_blocks_per_sequence > 0 ? s.num_gpu_blocks / s.kv_blocks_per_sequence : 0;
    int64_t concurrency_low =
        s.kv_blocks_per_sequence > 0 ? blocks_low / s.kv_blocks_per_sequence : 0;
    if (encoder) {
      // Nothing is held between forwards: one forward embeds up to max_num_seqs prompts of
      // `context` tokens within max_num_batched_tokens; more requests queue, they do not OOM.
      s.kv_blocks_per_sequence = 0;
      s.workload_kv_bytes = 0;
      concurrency = concurrency_low = std::min(max_seqs, batched / std::max<int64_t>(context, 1));
    }
    // vLLM refuses to start when one sequence of max_model_len does not fit the KV budget
    // (vllm/v1/core/kv_cache_utils.py check_enough_kv_cache_memory: the layers'
    // max_memory_usage_bytes summed against the available memory). Checked at the pool's low
    // end: a start that fails anywhere in the band is not a plan.
    const int64_t startup_need = groups.MaxMemoryUsageBytes(max_model_len, batched);
    if (out.reason.empty() && s.available_kv_cache_low_bytes > 0 &&
        startup_need > s.available_kv_cache_low_bytes) {
      out.reason = absl::StrCat(
          "stage ", stage, ": one sequence of max_model_len=", max_model_len, " needs ",
          BytesToGiB(startup_need), " GiB of KV cache, more than the ",
          BytesToGiB(s.available_kv_cache_low_bytes), " GiB available at the low end of the band (",
          BytesToGiB(s.available_kv_cache_bytes),
          " GiB at the estimate; vLLM refuses to start: raise gpu_memory_utilization or lower "
          "max_model_len)");
    }

    s.cuda_graph_bytes = CudaGraphBytes(c, profile, s.num_layers, max_seqs);
    if (draft && s.cuda_graph_bytes > 0) {
      // The drafter's graphs share the capture pool: its layers' share, not a second base.
      s.cuda_graph_bytes +=
          CudaGraphBytes(*draft, profile, v.draft->num_layers, max_seqs) - kVllmCudaGraphBaseBytes;
    }
    s.total_bytes = s.cuda_context_bytes + s.weights_bytes + s.kv_cache_bytes +
                    s.activation_peak_bytes + s.engine_overhead_bytes + s.cuda_graph_bytes;
    s.torch_peak_allocated_bytes = s.weights_bytes + s.kv_cache_bytes + s.activation_peak_bytes;
    replica_tokens =
        replica_tokens < 0 ? s.kv_cache_tokens : std::min(replica_tokens, s.kv_cache_tokens);
    replica_concurrency =
        replica_concurrency < 0 ? concurrency : std::min(replica_concurrency, concurrency);
    replica_tokens_low = replica_tokens_low < 0
                             ? s.kv_cache_tokens_low
                             : std::min(replica_tokens_low, s.kv_cache_tokens_low);
    replica_concurrency_low = replica_concurrency_low < 0
                                  ? concurrency_low
                                  : std::min(replica_concurrency_low, concurrency_low);

    if (out.reason.empty() && s.available_kv_cache_low_bytes <= 0 && !encoder) {
      out.reason = absl::StrCat(
          "stage ", stage, ": weights ", BytesToGiB(s.weights_bytes), " GiB + activations ",
          BytesToGiB(activation), " GiB + non-torch ", BytesToGiB(non_torch), " GiB (",
          BytesToGiB(s.available_kv_cache_bytes - s.available_kv_cache_low_bytes),
          " GiB more at the high end of their band) exceed gpu_memory_utilization x GPU = ",
          BytesToGiB(requested), " GiB; no memory is left for the KV cache");
    }
    out.stages.push_back(s);
  }
  if (!profile.v1) {
    // V0's CacheEngine allocates swap_space GiB of CPU blocks per GPU (default 4).
    const double swap = v.swap_space_gb > 0 ? v.swap_space_gb : 4.0;
    out.host_bytes += static_cast<int64_t>(swap * static_cast<double>(kGiB)) * p.world();
  }
  if (v.cpu_offload_gb > 0) {
    out.notes.push_back(absl::StrCat(
        "--cpu-offload-gb ", v.cpu_offload_gb,
        ": those weights live in host memory (host_bytes) and cross PCIe on every forward"));
  }
  if (v.speculative_method == SpeculativeMethod::kNgram) {
    out.notes.push_back(
        absl::StrCat("speculative decoding by n-gram prompt lookup: no weights and "
                     "no KV, only ",
                     v.num_speculative_tokens, " lookahead slots per sequence"));
  }
  if (draft) {
    out.notes.push_back(absl::StrCat(
        "speculative decoding: the ",
        v.speculative_method == SpeculativeMethod::kMtp
            ? "model's MTP layers"
            : absl::StrCat(v.speculative_method == SpeculativeMethod::kDraftModel ? "draft " : "",
                           v.speculative_method == SpeculativeMethod::kEagle    ? "EAGLE head "
                           : v.speculative_method == SpeculativeMethod::kEagle3 ? "EAGLE3 head "
                                                                                : "",
                           v.draft_model.empty() ? "model" : v.draft_model),
        " (", v.draft->num_layers, " layers) adds ", BytesToGiB(draft_weights), " GiB of weights",
        v.speculative_method == SpeculativeMethod::kEagle    ? " (embedding and lm_head shared)"
        : v.speculative_method == SpeculativeMethod::kEagle3 ? " (embedding shared)"
                                                             : "",
        " and ", draft_kv_per_token, " KV bytes per token on each rank",
        profile.v1 ? ""
                   : "; V0's profiler does not count the draft (vllm PR #14067), so the KV "
                     "cache also takes its memory and the GPU overflows by it"));
  }
  if (v.enable_lora) {
    // Each rank's CPU cache keeps up to max_cpu_loras whole adapters.
    const int64_t cpu_loras = v.max_cpu_loras > 0 ? v.max_cpu_loras : v.max_loras;
    out.host_bytes += internal::LoraHostBytes(lora_bytes / v.max_loras, cpu_loras, p.tp);
    out.notes.push_back(
        absl::StrCat("LoRA: ", v.max_loras, " slot(s) of rank ", v.max_lora_rank, " take ",
                     BytesToGiB(lora_bytes),
                     " GiB of the fullest rank's weights (the KV cache gives them up); "
                     "routed experts, embeddings and lm_head are not adapted in this count"));
  }
  out.kv_cache_tokens = std::max<int64_t>(replica_tokens, 0);
  out.max_concurrency = std::max<int64_t>(replica_concurrency, 0);
  out.kv_cache_tokens_low = std::max<int64_t>(replica_tokens_low, 0);
  out.max_concurrency_low = std::max<int64_t>(replica_concurrency_low, 0);
  if (encoder) {
    out.notes.push_back(absl::StrCat(
        "encoder-only model on vLLM's pooling runner: no KV cache; each forward takes up to ",
        out.max_concurrency, " prompts of ", context, " tokens (max_num_batched_tokens ", batched,
        ", max_num_seqs ", max_seqs, ")",
        req.concurrency > out.max_concurrency
            ? absl::StrCat("; the other ", req.concurrency - out.max_concurrency,
                           " of the workload's ", req.concurrency,
                           " requests queue for later forwards (latency, not memory)")
            : ""));
    return absl::OkStatus();
  }
  if (out.reason.empty() && out.max_concurrency_low < 1) {
    out.reason = absl::StrCat("the KV cache holds ", out.kv_cache_tokens_low,
                              " tokens at the low end of its band (", out.kv_cache_tokens,
                              " at the estimate), less than one sequence of ", context, " tokens");
  }
  if (out.reason.empty() && req.concurrency > out.max_concurrency_low) {
    out.reason = absl::StrCat("the KV cache holds ", out.max_concurrency_low, " sequences of ",
                              context, " tokens at the low end of its band (", out.max_concurrency,
                              " at the estimate); the workload needs ", req.concurrency);
  }
  return absl::OkStatus();
}

}  // namespace fleetplan::estimator
