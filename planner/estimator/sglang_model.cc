// SGLang's launch_server serving memory, per GPU rank (python/sglang/srt, 0.4.x-0.5.x):
//
//   defaults   server_args.py _handle_gpu_memory_settings, from the GPU's memory in MiB:
//              chunked_prefill_size 2048 (< 35 GiB), 4096 (< 60), 8192 (< 160), else 16384;
//              cuda_graph_max_bs 8 (< 20 GiB), 24/80 (< 35, tp < 4 / >= 4), 32/160 (< 60),
//              256/512 (< 160), else 512; reserved = 512 + 1.5 x max(chunked, 2048) +
//              2 x cuda_graph_max_bs + tp x pp / 8 x 1024 MiB, at least 10 GiB above 60 GiB;
//              mem_fraction_static = round((gpu - reserved) / gpu, 3); with
//              --enable-piecewise-cuda-graph (opt-in up to the version read here) 8 MiB more per
//              prefill capture size, before the 10 GiB floor, kept after the pool as non-torch
//              graph memory.
//   KV pool    model_runner profile_max_num_token: rest = free after the weights - free before
//              them x (1 - mem_fraction_static), i.e. free x fraction - weights; tokens = rest /
//              cell, cell = the stage's layers' KV bytes per token on this rank (MLA: the
//              latent), rounded down to --page-size.
//   LoRA       --enable-lora: lora/mem_pool.py LoRAMemoryPool buffers (A [slots, rank x stacked,
//              in], B [slots, out, rank] per layer and target module, sharded as the base layer),
//              allocated by init_lora_manager before init_memory_pool: counted with the weights.
//   requests   init_memory_pool: max_running_requests = min(max(tokens / context_len x 512,
//              2048), 4096) unless given; ReqToTokenPool int32 [max_running + 1, context_len + 4].
//   speculate  --speculative-algorithm: EAGLE/EAGLE3 heads and NEXTN (the MTP layers) share the
//              target's embedding and lm_head (eagle_worker.py); STANDALONE is a whole model.
//              Up to 0.5.10 the fraction keeps 2 GiB (6 GiB STANDALONE) more and the draft is
//              loaded after the target's pool (draft_runner_cache_size: a pool of as many tokens);
//              after it (PRs #23862, #28855) the draft's weights come first and the cell grows by
//              draft layers / target layers. max_running_requests falls to 48 unless given.
//   hybrid SWA gpt-oss (model_config.py is_hybrid_swa_model): set_num_tokens_hybrid_swa splits
//              L x tokens so a sliding layer holds swa_full_tokens_ratio (0.8) of a full one's.
//   transient  a chunked-prefill forward with vLLM's layer model (SGLang runs vLLM's layers) and
//              the sampler on a decode batch of the workload's sequences (else cuda_graph_max_bs
//              of them; at most max_running); decode CUDA graphs at SGLang's capture sizes
//              (_generate_cuda_graph_batch_sizes) at the per-size cost measured on vLLM; vLLM's
//              measured non-torch memory (NCCL, custom all-reduce).
//
// The free memory before the weights is the GPU less the CUDA context and, at TP/PP > 1, the
// communicators created at init (engine_constants.h). Everything past the pool comes out of the
// (1 - fraction) reserve: what must fit is the total.

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/gpu_catalog.h"
#include "planner/estimator/rank_layout.h"
#include "planner/estimator/sglang.h"
#include "planner/estimator/uncertainty.h"
#include "planner/estimator/vllm.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::estimator {

using internal::RankContext;

bool SglangHasDraftModel(SglangSpeculative algorithm) {
  return algorithm != SglangSpeculative::kNone && algorithm != SglangSpeculative::kNgram;
}

bool SglangBudgetsDraft(const SglangConfig& g) {
  if (g.version.empty()) return false;  // 0.5.10
  const absl::StatusOr<VllmVersion> v = ParseVllmVersion("sglang.version", g.version);
  return v.ok() && v->AtLeast(0, 5, 11);
}

SglangResolved ResolveSglang(const SglangConfig& g, int64_t gpu_memory_bytes, const Parallelism& p,
                             const ModelSpec* model) {
  SglangResolved r;
  const VisionSpec* vision = model != nullptr && model->vision ? &*model->vision : nullptr;
  const double gpu_mib = static_cast<double>(gpu_memory_bytes) / static_cast<double>(kMiB);
  struct Row {
    double below_gib;
    int64_t chunked, graph_bs_small_tp, graph_bs_large_tp;
  };
  static constexpr Row kRows[] = {{20, 2048, 8, 8},      {35, 2048, 24, 80},
                                  {60, 4096, 32, 160},   {90, 8192, 256, 512},
                                  {160, 8192, 256, 512}, {1e30, 16384, 512, 512}};
  for (const Row& row : kRows) {
    if (gpu_mib < row.below_gib * 1024) {
      r.chunked_prefill_size = row.chunked;
      r.cuda_graph_max_bs = p.tp < 4 ? row.graph_bs_small_tp : row.graph_bs_large_tp;
      break;
    }
  }
  if (g.chunked_prefill_size > 0) r.chunked_prefill_size = g.chunked_prefill_size;
  if (g.cuda_graph_max_bs > 0) r.cuda_graph_max_bs = g.cuda_graph_max_bs;
  if (g.enable_piecewise_cuda_graph) {
    // piecewise_cuda_graph_max_tokens: the chunked-prefill size, 2048 on an MLA backend (PR
    // #15927); _generate_piecewise_cuda_graph_tokens: range(4, 33, 4) + range(48, 257, 16) +
    // range(288, 513, 32) + range(576, 1025, 64) + range(1280, 4097, 256) + range(4608, max + 1,
    // 512).
    bool mla = false;
    if (model != nullptr) {
      for (const LayerKind& k : model->layer_kinds) mla |= k.attention.mla;
    }
    const int64_t max_tokens = g.piecewise_cuda_graph_max_tokens > 0
                                   ? g.piecewise_cuda_graph_max_tokens
                               : mla ? 2048
                                     : r.chunked_prefill_size;
    static constexpr int64_t kRanges[][3] = {
        {4, 33, 4}, {48, 257, 16}, {288, 513, 32}, {576, 1025, 64}, {1280, 4097, 256}};
    for (const auto& [from, to, step] : kRanges) {
      for (int64_t t = from; t < to; t += step) r.piecewise_sizes += t <= max_tokens ? 1 : 0;
    }
    for (int64_t t = 4608; t <= max_tokens; t += 512) ++r.piecewise_sizes;
  }
  const bool drafted = SglangHasDraftModel(g.speculative_algorithm);
  if (g.mem_fraction_static > 0) {
    r.mem_fraction_static = g.mem_fraction_static;
  } else {
    double reserved =
        512 + static_cast<double>(std::max<int64_t>(r.chunked_prefill_size, 2048)) * 1.5;
    reserved += static_cast<double>(r.cuda_graph_max_bs) * 2;
    reserved += static_cast<double>(p.tp * p.pp) / 8 * 1024;
    // "Only ... the memory overhead for Non-Torch Memory" of the piecewise graphs.
    reserved += static_cast<double>(r.piecewise_sizes * kSglangPiecewiseGraphMiB);
    if (gpu_mib > 60 * 1024) reserved = std::max(reserved, 10.0 * 1024);
    // Up to 0.5.10, after the floor: "standalone draft model and cuda graphs" 6 GiB, "eagle draft
    // models and cuda graphs" 2 GiB (removed by PR #23862, which budgets the draft instead).
    if (drafted && !SglangBudgetsDraft(g)) {
      reserved += g.speculative_algorithm == SglangSpeculative::kStandalone ? 6 * 1024 : 2 * 1024;
    }
    r.mem_fraction_static = std::round((gpu_mib - reserved) / gpu_mib * 1000) / 1000;
    if (vision != nullptr && vision->in_vision_config) {
      // adjust_mem_fraction_for_vlm (a multimodal model's vision_config): x 0.95, and 0.1 less per
      // doubling of the tower's num_hidden_layers x hidden_size^2 over ViT-L/14's 24 x 1024^2
      // (getattr defaults 24 and 1024), the factor kept in [0.8, 1.05]. Not rounded.
      const double layers = vision->config_num_hidden_layers > 0
                                ? static_cast<double>(vision->config_num_hidden_layers)
                                : 24;
      const double hidden =
          vision->config_hidden_size > 0 ? static_cast<double>(vision->config_hidden_size) : 1024;
      const double ratio = layers * hidden * hidden / (24.0 * 1024 * 1024);
      r.mem_fraction_static *= 0.95 * std::clamp(1.0 - 0.1 * (ratio - 1.0), 0.8, 1.05);
    }
  }
  r.max_running_requests = g.max_running_requests;
  if (g.speculative_algorithm != SglangSpeculative::kNone) {
    // The numbers when none are given (3 steps, top-k 1, 4 tokens; the launch line writes them, so
    // SGLang's per-architecture auto-choice does not apply). _handle_speculative_decoding resets an
    // unset --max-running-requests to 48 for every algorithm, NGRAM too, and with top-k 1 sets the
    // draft tokens of a drafted algorithm to steps + 1.
    r.num_steps = g.speculative_num_steps > 0 ? g.speculative_num_steps : 3;
    r.eagle_topk = g.speculative_eagle_topk > 0 ? g.speculative_eagle_topk : 1;
    r.num_draft_tokens = g.speculative_num_draft_tokens > 0 ? g.speculative_num_draft_tokens : 4;
    if (drafted && r.eagle_topk == 1) r.num_draft_tokens = r.num_steps + 1;
    if (r.max_running_requests == 0) r.max_running_requests = 48;
  }
  // [1, 2, 4, 8, 12] + range(16, 257, 8) + range(272, 512, 16) + range(512, max_bs + 1, 32);
  // cuda_graph_runner.py get_batch_sizes_to_capture adds the request table's size and one less
  // when the list passes it, and keeps none above it.
  const int64_t table = r.max_running_requests > 0 ? r.max_running_requests : r.cuda_graph_max_bs;
  // Speculating (_generate_cuda_graph_batch_sizes' "less padding for smaller batch sizes"):
  // range(1, 9) + range(10, 33, 2) + range(40, 65, 4) + range(72, 257, 8) + range(272, max_bs + 1,
  // 16).
  std::vector<int64_t> sizes;
  auto add = [&](int64_t from, int64_t to, int64_t step) {
    for (int64_t bs = from; bs < to; bs += step) sizes.push_back(bs);
  };
  if (g.speculative_algorithm == SglangSpeculative::kNone) {
    sizes = {1, 2, 4, 8, 12};
    add(16, 257, 8);
    add(272, 512, 16);
    add(512, r.cuda_graph_max_bs + 1, 32);
  } else {
    add(1, 9, 1);
    add(10, 33, 2);
    add(40, 65, 4);
    add(72, 257, 8);
    add(272, r.cuda_graph_max_bs + 1, 16);
  }
  if (table < r.cuda_graph_max_bs) {
    sizes.push_back(table - 1);
    sizes.push_back(table);
  }
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  r.capture_sizes = std::count_if(sizes.begin(), sizes.end(), [&](int64_t bs) {
    return bs >= 1 && bs <= table && bs <= r.cuda_graph_max_bs;
  });
  return r;
}

std::string SglangLaunchCommand(const std::string& model, const EstimateRequest& request,
                                const MemoryEstimate& estimate) {
  const SglangResolved r =
      ResolveSglang(request.sglang, request.gpu_memory_bytes, request.parallelism);
  std::string line = absl::StrCat("python -m sglang.launch_server --model-path ",
                                  ShellQuote(model.empty() ? "MODEL" : model));
  if (request.parallelism.tp > 1) absl::StrAppend(&line, " --tp ", request.parallelism.tp);
  if (request.parallelism.pp > 1) absl::StrAppend(&line, " --pp-size ", request.parallelism.pp);
  if (request.parallelism.ep > 1) absl::StrAppend(&line, " --ep-size ", request.parallelism.ep);
  // The estimate's fraction: it knows the model (a vision tower lowers the default).
  const double fraction =
      estimate.mem_fraction_static > 0 ? estimate.mem_fraction_static : r.mem_fraction_static;
  absl::StrAppend(&line, " --mem-fraction-static ", fraction, " --context-length ",
                  estimate.max_model_len);
  if (request.sglang.chunked_prefill_size > 0) {
    absl::StrAppend(&line, " --chunked-prefill-size ", request.sglang.chunked_prefill_size);
  }
  if (request.sglang.cuda_graph_max_bs > 0) {
    absl::StrAppend(&line, " --cuda-graph-max-bs ", request.sglang.cuda_graph_max_bs);
  }
  if (request.sglang.max_running_requests > 0) {
    absl::StrAppend(&line, " --max-running-requests ", request.sglang.max_running_requests);
  }
  if (request.sglang.page_size != 1)
    absl::StrAppend(&line, " --page-size ", request.sglang.page_size);
  if (request.kv_cache_dtype != KvCacheDType::kAuto) {
    absl::StrAppend(&line, " --kv-cache-dtype ", KvCacheDTypeNames().Name(request.kv_cache_dtype));
  }
  if (request.sglang.disable_cuda_graph) absl::StrAppend(&line, " --disable-cuda-graph");
  if (request.sglang.enable_piecewise_cuda_graph) {
    absl::StrAppend(&line, " --enable-piecewise-cuda-graph");
    if (request.sglang.piecewise_cuda_graph_max_tokens > 0) {
      absl::StrAppend(&line, " --piecewise-cuda-graph-max-tokens ",
                      request.sglang.piecewise_cuda_graph_max_tokens);
    }
  }
  if (request.sglang.disable_hybrid_swa_memory) {
    absl::StrAppend(&line, " --disable-hybrid-swa-memory");
  } else if (request.sglang.swa_full_tokens_ratio > 0) {
    absl::StrAppend(&line, " --swa-full-tokens-ratio ", request.sglang.swa_full_tokens_ratio);
  }
  const SglangConfig& g = request.sglang;
  if (g.max_mamba_cache_size > 0) {
    absl::StrAppend(&line, " --max-mamba-cache-size ", g.max_mamba_cache_size);
  }
  if (g.mamba_full_memory_ratio > 0) {
    absl::StrAppend(&line, " --mamba-full-memory-ratio ", g.mamba_full_memory_ratio);
  }
  if (!g.mamba_ssm_dtype.empty()) {
    absl::StrAppend(&line, " --mamba-ssm-dtype ", ShellQuote(g.mamba_ssm_dtype));
  }
  if (g.disable_radix_cache) absl::StrAppend(&line, " --disable-radix-cache");
  if (g.speculative_algorithm != SglangSpeculative::kNone) {
    // Every speculative number written out: SGLang's auto-choice depends on the architecture.
    absl::StrAppend(&line, " --speculative-algorithm ",
                    SglangSpeculativeNames().Name(g.speculative_algorithm));
    if (g.speculative_algorithm != SglangSpeculative::kNextn &&
        SglangHasDraftModel(g.speculative_algorithm)) {
      absl::StrAppend(&line, " --speculative-draft-model-path ",
                      ShellQuote(g.draft_model.empty() ? "DRAFT_MODEL" : g.draft_model));
    }
    absl::StrAppend(&line, " --speculative-num-steps ", r.num_steps, " --speculative-eagle-topk ",
                    r.eagle_topk, " --speculative-num-draft-tokens ", r.num_draft_tokens);
  }
  if (request.sglang.enable_lora) {
    if (request.sglang.max_loaded_loras > 0) {
      absl::StrAppend(&line, " --max-loaded-loras ", request.sglang.max_loaded_loras);
    }
    absl::StrAppend(&line, " --enable-lora --max-loras-per-batch ",
                    request.sglang.max_loras_per_batch, " --max-lora-rank ",
                    request.sglang.max_lora_rank, " --lora-target-modules ",
                    request.sglang.lora_target_modules.empty()
                        ? std::string("all")
                        : absl::StrJoin(request.sglang.lora_target_modules, " "));
  }
  return line;
}

namespace {

// --lora-target-modules as mem_pool.py sizes them: utils.py get_normalized_target_modules maps
// q/k/v_proj to qkv_proj and gate/up_proj to gate_up_proj; "all" (or none given) is the four.
absl::StatusOr<internal::LoraTargets> SglangLoraTargets(const SglangConfig& g) {
  if (g.lora_target_modules.empty()) return internal::LoraTargets{};
  internal::LoraTargets t{false, false, false, false};
  for (const std::string& name : g.lora_target_modules) {
    if (name == "all") return internal::LoraTargets{};
    if (name == "q_proj" || name == "k_proj" || name == "v_proj" || name == "qkv_proj") {
      t.qkv_proj = true;
    } else if (name == "o_proj") {
      t.o_proj = true;
    } else if (name == "gate_proj" || name == "up_proj" || name == "gate_up_proj") {
      t.gate_up_proj = true;
    } else if (name == "down_proj") {
      t.down_proj = true;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("sglang.lora_target_modules: \"", name,
                       "\" is not modelled (q_proj k_proj v_proj qkv_proj o_proj gate_proj up_proj "
                       "gate_up_proj down_proj all; embed_tokens and lm_head adapters are not)"));
    }
  }
  return t;
}

// model_config.py is_hybrid_swa_model: the architectures whose sliding-window layers get a pool
// of their own (SWAKVPool), of the ones fleetplan parses; gemma-2/3 are not among them and keep
// one full-size pool. gpt-oss's sliding layers, and Llama 4's chunked ones in its
// ForConditionalGeneration wrapper (get_hybrid_layer_ids: every layer but each fourth; the
// text-only Llama4ForCausalLM is not listed), the chunk standing for the window.
// --disable-hybrid-swa-memory turns it off, and so does server_args.py
// _handle_model_specific_adjustments for gpt-oss on an SM100 GPU (B200, B300, GB200, GB300: the
// trtllm_mha backend has no SWA index translation), which the GPU's name tells.
bool Sm100Gpu(const std::string& gpu_name) {
  const std::string n = NormalizedGpuName(gpu_name);
  for (const char* p : {"b200", "b300", "gb200", "gb300", "b100"}) {
    if (absl::StartsWith(n, p)) return true;
  }
  return false;
}

// The window a layer keeps in SGLang's SWA pool: its sliding window or Llama 4's chunk (0: full).
int64_t SglangSwaWindow(const ModelSpec& spec, int64_t layer) {
  const AttentionSpec& a = spec.attention(static_cast<int>(layer));
  return a.sliding_window > 0 ? a.sliding_window : a.attention_chunk;
}

bool SglangHybridSwa(const ModelSpec& spec, const EstimateRequest& req) {
  if (req.sglang.disable_hybrid_swa_memory) return false;
  if (spec.model_type == "gpt_oss") {
    if (Sm100Gpu(req.gpu_name)) return false;
  } else if (spec.wrapper_type != "llama4") {
    return false;
  }
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    if (SglangSwaWindow(spec, l) > 0) return true;
  }
  return false;
}

}  // namespace

absl::Status EstimateSglang(const RankContext& c, MemoryEstimate& out) {
  const ModelSpec& spec = c.spec;
  const EstimateRequest& req = c.req;
  const SglangConfig& g = req.sglang;
  const Parallelism& p = req.parallelism;
  const SglangResolved r = ResolveSglang(g, req.gpu_memory_bytes, p, &spec);
  out.mem_fraction_static = r.mem_fraction_static;
  const int64_t context_len =
      g.context_length > 0 ? g.context_length : spec.max_position_embeddings;
  out.max_model_len = context_len;
  const Margins margins = StageMargins(spec, req);
  const int64_t non_torch = VllmNonTorchBytes(p.tp, p.pp);
  internal::LoraTargets lora_targets;
  if (g.enable_lora) {
    ASSIGN_OR_RETURN(lora_targets, SglangLoraTargets(g));
    // mem_pool.py gives routed experts 4-D per-expert buffers and MLA its own projections: not
    // modelled, so refused rather than under-counted.
    for (const LayerKind& k : spec.layer_kinds) {
      if (k.mlp.num_experts > 0 && (lora_targets.gate_up_proj || lora_targets.down_proj)) {
        return absl::InvalidArgumentError(
            "sglang.enable_lora on a mixture-of-experts model: SGLang's per-expert LoRA buffers "
            "are not modelled (target attention only: --lora-target-modules q_proj,k_proj,v_proj,"
            "o_proj)");
      }
      if (k.attention.mla && (lora_targets.qkv_proj || lora_targets.o_proj)) {
        return absl::InvalidArgumentError(
            "sglang.enable_lora on an MLA model: SGLang's LoRA buffers for its latent "
            "projections are not modelled");
      }
    }
  }
  int64_t lora_bytes = 0;
  // Hybrid SWA (set_num_tokens_hybrid_swa): the pool is profiled as if every layer were full, then
  // its L x tokens are split so a sliding layer holds swa_full_tokens_ratio of a full layer's.
  const bool hybrid = SglangHybridSwa(spec, req);
  const double swa_ratio = g.swa_full_tokens_ratio > 0 ? g.swa_full_tokens_ratio : 0.8;
  int64_t swa_layers = 0, window = 0;
  for (int64_t l = 0; hybrid && l < spec.num_layers; ++l) {
    const int64_t w = SglangSwaWindow(spec, l);
    swa_layers += w > 0 ? 1 : 0;
    window = std::max(window, w);
  }
  const int64_t full_layers = spec.num_layers - swa_layers;
  // Full-layer and sliding-layer tokens of a pool profiled at `profiled` tokens.
  auto split = [&](int64_t profiled) -> std::pair<int64_t, int64_t> {
    if (!hybrid) return {profiled, 0};
    const double total = static_cast<double>(profiled) * static_cast<double>(spec.num_layers);
    const int64_t full = static_cast<int64_t>(
        total / (swa_ratio * static_cast<double>(swa_layers) + static_cast<double>(full_layers)));
    const int64_t swa = static_cast<int64_t>(static_cast<double>(full) * swa_ratio);
    return {full / g.page_size * g.page_size, swa / g.page_size * g.page_size};
  };
  int64_t swa_tokens = 0, swa_tokens_low = 0;

  // A speculative draft (ValidateRequest: given for EAGLE, EAGLE3 and STANDALONE, the model's MTP
  // layers for NEXTN, pp = 1), sharded as the target: its weights, its own KV pool of the
  // target's token count (model_runner init_memory: draft_runner_cache_size) and its graphs.
  const SglangSpeculative alg = g.speculative_algorithm;
  const ModelSpec* draft_spec = alg == SglangSpeculative::kNextn ? spec.mtp.get()
                                : SglangHasDraftModel(alg)       ? g.draft
                                                                 : nullptr;
  std::optional<RankContext> draft;
  if (draft_spec != nullptr) {
    draft.emplace(*draft_spec, req, internal::ResolveDType(*draft_spec, req));
  }
  const bool budgeted = SglangBudgetsDraft(g);
  int64_t draft_weights = 0, draft_kv_per_token = 0;
  if (draft) {
    draft_weights = internal::DraftWeights(
        *draft, alg == SglangSpeculative::kStandalone ? internal::DraftHead::kWholeModel
                : alg == SglangSpeculative::kEagle    ? internal::DraftHead::kEagle
                : alg == SglangSpeculative::kEagle3   ? internal::DraftHead::kEagle3
                                                    : internal::DraftHead::kSharedEmbeddingAndHead);
  }
  for (int64_t l = 0; draft && l < draft_spec->num_layers; ++l) {
    draft_kv_per_token +=
        internal::LayerKvBytesPerToken(*draft, draft_spec->attention(static_cast<int>(l)));
  }

  // Hybrid linear-attention models (qwen3_next, ValidateRequest: no speculation): each linear
  // layer's state per request, conv [conv_dim / tp, kernel - 1] in the model dtype and recurrent
  // [Hv / tp, Dv, Dk] in --mamba-ssm-dtype (float32 by default; configs/mamba_utils.py
  // Mamba2StateShape.create, Mamba2CacheParams.mamba_cache_per_req). Without
  // --max-mamba-cache-size the pool after the weights is split so the states take
  // ratio / (1 + ratio) of it (model_runner _handle_max_mamba_cache; with --disable-radix-cache
  // and --max-running-requests, that many states), and the KV tokens get the rest.
  const double mamba_ratio =
      g.mamba_full_memory_ratio > 0 ? g.mamba_full_memory_ratio : kSglangMambaFullMemoryRatio;
  const int64_t ssm_bytes = g.mamba_ssm_dtype == "bfloat16" ? 2 : 4;
  auto state_per_request = [&](int64_t first, int64_t last) {
    int64_t bytes = 0;
    for (int64_t l = first; l < last; ++l) {
      const AttentionSpec& a = spec.attention(static_cast<int>(l));
      if (!a.linear_attention) continue;
      bytes += internal::LinearStateBytes(a, p.tp, a.linear_conv_kernel - 1, c.a, ssm_bytes);
    }
    return bytes;
  };
  auto mamba_states = [&](int64_t rest, int64_t per_request) -> int64_t {
    if (per_request == 0) return 0;
    if (g.max_mamba_cache_size > 0) return g.max_mamba_cache_size;
    if (g.disable_radix_cache && g.max_running_requests > 0) return g.max_running_requests;
    if (rest <= 0) return 0;
    return static_cast<int64_t>(static_cast<double>(rest) * mamba_ratio / (1 + mamba_ratio)) /
           per_request;
  };
  int64_t states = -1, states_low = -1, state_bytes = 0;

  // The pool of each stage first: the request table is sized from the replica's tokens.
  int64_t tokens = -1, tokens_low = -1;            // profiled
  int64_t full_tokens = -1, full_tokens_low = -1;  // a full-attention layer's (hybrid SWA split)
  for (int64_t stage = 0; stage < p.pp; ++stage) {
    StageMemory s = internal::NewStage(spec, p.pp, stage);
    const int64_t first = s.first_layer, last = s.first_layer + s.num_layers;
    s.cuda_context_bytes += InitDistributedBytes(p.world(), spec.is_moe());
    // model_runner.py initialize: init_lora_manager allocates the adapter buffers after the
    // weights and before init_memory_pool, so the pool is sized without them, as with weights.
    const int64_t lora = g.enable_lora
                             ? internal::LoraSlotBytes(c, first, last, g.max_loras_per_batch,
                                                       g.max_lora_rank, lora_targets)
                             : 0;
    lora_bytes = std::max(lora_bytes, lora);
    const int64_t target_weights = internal::StageWeights(c, stage, first, last) + lora;
    s.weights_bytes = target_weights + draft_weights;
    int64_t target_cell = 0, swa_cell = 0;
    for (int64_t l = first; l < last; ++l) {
      const AttentionSpec& a = spec.attention(static_cast<int>(l));
      target_cell += internal::LayerKvBytesPerToken(c, a);
      if (hybrid && SglangSwaWindow(spec, l) > 0) {
        swa_cell += internal::LayerKvBytesPerToken(c, a);
      }
    }
    // Budgeted (after 0.5.10): pool_configurator.py DefaultPoolConfigurator scales the cell by
    // (1 + draft layers / target layers), after both models' weights are loaded. Up to 0.5.10 the
    // pool is sized on the target alone and the draft's pool comes on top, out of the reserve.
    const int64_t sizing_cell =
        draft && budgeted && s.num_layers > 0
            ? static_cast<int64_t>(static_cast<double>(target_cell) *
                                   (1 + static_cast<double>(draft_spec->num_layers) /
                                            static_cast<double>(s.num_layers)))
            : target_cell;
    s.kv_cache_bytes_per_token = target_cell + draft_kv_per_token;
    const int64_t free_before = req.gpu_memory_bytes - s.cuda_context_bytes;
    const int64_t rest =
        static_cast<int64_t>(std::floor(static_cast<double>(free_before) * r.mem_fraction_static)) -
        (budgeted ? s.weights_bytes : target_weights);
    s.available_kv_cache_bytes = rest;
    // The low end: the weights and context the pool is measured after may be larger.
    s.available_kv_cache_low_bytes =
        rest -
        static_cast<int64_t>(std::ceil(
            margins.vllm_non_kv * static_cast<double>(s.weights_bytes + s.cuda_context_bytes)));
    auto to_tokens = [&](int64_t bytes) -> int64_t {
      if (bytes <= 0 || sizing_cell <= 0) return 0;
      return bytes / sizing_cell / g.page_size * g.page_size;
    };
    const int64_t per_request = state_per_request(first, last);
    const int64_t stage_states = mamba_states(rest, per_request);
    const int64_t stage_states_low = mamba_states(s.available_kv_cache_low_bytes, per_request);
    if (per_request > 0) {
      states = states < 0 ? stage_states : std::min(states, stage_states);
      states_low = states_low < 0 ? stage_states_low : std::min(states_low, stage_states_low);
      state_bytes = std::max(state_bytes, per_request);
    }
    // The request table (init_memory_pool's max_num_reqs) and a draft's pool
    // (draft_runner_cache_size) take the profiled count, before a hybrid split.
    const int64_t profiled = to_tokens(rest - stage_states * per_request);
    const int64_t profiled_low =
        to_tokens(s.available_kv_cache_low_bytes - stage_states_low * per_request);
    const auto [full, swa] = split(profiled);
    s.kv_cache_tokens = full;
    s.kv_cache_tokens_low = split(profiled_low).first;
    s.kv_cache_bytes = full * (target_cell - swa_cell) + swa * swa_cell +
                       profiled * (s.kv_cache_bytes_per_token - target_cell) +
                       stage_states * per_request;
    if (hybrid) {
      swa_tokens = stage == 0 ? swa : std::min(swa_tokens, swa);
      const int64_t swa_low = split(profiled_low).second;
      swa_tokens_low = stage == 0 ? swa_low : std::min(swa_tokens_low, swa_low);
    }
    tokens = tokens < 0 ? profiled : std::min(tokens, profiled);
    tokens_low = tokens_low < 0 ? profiled_low : std::min(tokens_low, profiled_low);
    full_tokens = full_tokens < 0 ? full : std::min(full_tokens, full);
    full_tokens_low = full_tokens_low < 0 ? s.kv_cache_tokens_low
                                          : std::min(full_tokens_low, s.kv_cache_tokens_low);
    if (out.reason.empty() && per_request > 0 && stage_states_low <= 0) {
      out.reason = absl::StrCat(
          "stage ", stage, ": no linear-attention state fits (", per_request,
          " bytes per request) at the low end of the band (SGLang: \"Not enough GPU memory for "
          "hybrid (mamba/linear-attention) state cache\")");
    }
    if (out.reason.empty() && s.kv_cache_tokens_low <= 0) {
      out.reason =
          absl::StrCat("stage ", stage, ": weights ", BytesToGiB(s.weights_bytes),
                       " GiB leave no KV cache in mem_fraction_static=", r.mem_fraction_static,
                       " x ", BytesToGiB(free_before),
                       " GiB free (SGLang: \"Not enough memory. Please try to increase "
                       "--mem-fraction-static\")");
    }
    out.stages.push_back(s);
  }
  int64_t max_running =
      r.max_running_requests > 0
          ? r.max_running_requests
          : std::min<int64_t>(
                std::max<int64_t>(static_cast<int64_t>(static_cast<double>(tokens) /
                                                       static_cast<double>(context_len) * 512),
                                  2048),
                4096);
  // A running request holds one state, three with the radix cache (the cached prefix's and the
  // ones in flight: _calculate_mamba_ratio), whatever max_running_requests says.
  const int64_t states_per_request = g.disable_radix_cache ? 1 : kSglangMambaStatesPerRequest;
  int64_t max_running_low = max_running;
  if (states >= 0) {
    max_running = std::min(max_running, states / states_per_request);
    max_running_low = std::min(max_running_low, states_low / states_per_request);
  }
  // init_memory: each row holds context_len + 4 (+ the draft tokens when speculating) slots.
  const int64_t req_to_token = 4 * (max_running + 1) * (context_len + 4 + r.num_draft_tokens);
  for (StageMemory& s : out.stages) {
    const int64_t first = s.first_layer, last = s.first_layer + s.num_layers;
    // No profile run: the peaks are those of serving, a chunked prefill and a decode batch of
    // the workload's sequences (else of cuda_graph_max_bs) through the sampler; speculating, the
    // verify batch samples every draft token of each sequence.
    const int64_t decode_rows =
        std::min(max_running, req.concurrency > 0 ? req.concurrency : r.cuda_graph_max_bs);
    s.activation_peak_bytes = internal::ServingForwardPeak(
        c, first, last, s.pp_stage == p.pp - 1, r.chunked_prefill_size,
        decode_rows * std::max<int64_t>(r.num_draft_tokens, 1), kVllmSamplerFp32BytesPerLogit);
    s.engine_overhead_bytes = non_torch + req_to_token;
    s.cuda_graph_bytes =
        g.disable_cuda_graph ? 0 : internal::CudaGraphBytesForSizes(s.num_layers, r.capture_sizes);
    // The piecewise prefill graphs' non-torch memory, what SGLang reserves for each capture size
    // (their torch memory is the capture pool the decode graphs and the forward reuse).
    s.cuda_graph_bytes += r.piecewise_sizes * kSglangPiecewiseGraphMiB * kMiB;
    if (draft && !g.disable_cuda_graph) {
      // The draft's decode graphs share the global graph memory pool: its layers' share, the
      // per-layer cost measured on vLLM (engine_constants.h), not a second base.
      s.cuda_graph_bytes +=
          internal::CudaGraphBytesForSizes(draft_spec->num_layers, r.capture_sizes) -
          kVllmCudaGraphBaseBytes;
    }
    s.total_bytes = s.cuda_context_bytes + s.weights_bytes + s.kv_cache_bytes +
                    s.activation_peak_bytes + s.engine_overhead_bytes + s.cuda_graph_bytes;
    s.torch_peak_allocated_bytes = s.weights_bytes + s.kv_cache_bytes + s.activation_peak_bytes;
  }
  const int64_t context = req.context_tokens > 0 ? req.context_tokens : context_len;
  out.kv_cache_tokens = std::max<int64_t>(full_tokens, 0);
  out.kv_cache_tokens_low = std::max<int64_t>(full_tokens_low, 0);
  out.max_concurrency = std::min(max_running, out.kv_cache_tokens / context);
  out.max_concurrency_low = std::min(max_running_low, out.kv_cache_tokens_low / context);
  if (states >= 0) {
    out.notes.push_back(absl::StrCat(
        "SGLang linear-attention state pool: ", states, " states of ", state_bytes,
        " bytes (recurrent state in ", g.mamba_ssm_dtype.empty() ? "float32" : g.mamba_ssm_dtype,
        g.max_mamba_cache_size > 0
            ? ", --max-mamba-cache-size"
            : absl::StrCat(", mamba_full_memory_ratio ", mamba_ratio, ": ",
                           static_cast<int>(std::lround(100 * mamba_ratio / (1 + mamba_ratio))),
                           "% of the pool"),
        "), ", states_per_request, " per running request",
        g.disable_radix_cache ? "" : " with the radix cache", ": at most ",
        states / states_per_request, " running requests"));
  }
  if (hybrid) {
    // In the sliding layers' pool a decoding sequence keeps its window (SWA eviction frees what
    // falls out of it), and the prefill chunk in flight takes its tokens until it is evicted.
    const int64_t swa_need = std::min(context, window);
    const int64_t chunk = std::min(context, r.chunked_prefill_size);
    auto swa_sequences = [&](int64_t pool) {
      return std::max<int64_t>(pool - chunk, 0) / std::max<int64_t>(swa_need, 1);
    };
    out.max_concurrency = std::min(out.max_concurrency, swa_sequences(swa_tokens));
    out.max_concurrency_low = std::min(out.max_concurrency_low, swa_sequences(swa_tokens_low));
    out.notes.push_back(
        absl::StrCat("SGLang hybrid SWA pool (swa_full_tokens_ratio ", swa_ratio,
                     "): ", out.kv_cache_tokens, " tokens in each of the ", full_layers,
                     " full-attention layers, ", swa_tokens, " in each of the ", swa_layers,
                     spec.wrapper_type == "llama4" ? " chunked-attention layers (chunk "
                                                   : " sliding-window layers (window ",
                     window, ")"));
  }
  out.notes.push_back(absl::StrCat("SGLang: mem_fraction_static ", r.mem_fraction_static,
                                   ", chunked_prefill_size ", r.chunked_prefill_size,
                                   ", cuda_graph_max_bs ", r.cuda_graph_max_bs,
                                   ", max_running_requests ", max_running));
  if (g.enable_lora) {
    const int64_t host =
        internal::LoraHostBytes(lora_bytes / g.max_loras_per_batch, g.max_loaded_loras, p.tp);
    out.host_bytes += host;
    out.notes.push_back(absl::StrCat(
        "LoRA: ", g.max_loras_per_batch, " adapter slot(s) of rank ", g.max_lora_rank, " take ",
        BytesToGiB(lora_bytes), " GiB per rank (in weights_bytes), allocated before the KV pool; ",
        g.max_loaded_loras > 0
            ? absl::StrCat(g.max_loaded_loras, " adapters loaded in each of the ", p.tp,
                           " rank(s)' host memory take ", BytesToGiB(host),
                           " GiB in all (host_bytes)")
            : "adapters loaded in host memory are not counted (no --max-loaded-loras bounds "
              "them)"));
  }
  if (draft) {
    out.notes.push_back(absl::StrCat(
        "speculative ", SglangSpeculativeNames().Name(alg), ": ",
        alg == SglangSpeculative::kNextn
            ? std::string("the model's MTP layers")
            : absl::StrCat("draft ", g.draft_model.empty() ? "model" : g.draft_model),
        " (", draft_spec->num_layers, " layers) adds ", BytesToGiB(draft_weights),
        " GiB of weights",
        alg == SglangSpeculative::kStandalone ? ""
        : alg == SglangSpeculative::kEagle3   ? " (the embedding is the target's)"
                                              : " (the embedding and lm_head are the target's)",
        " and ", draft_kv_per_token, " KV bytes per pooled token on each rank; ",
        budgeted ? "counted before the KV pool is sized (SGLang after 0.5.10)"
                 : "loaded after the KV pool is sized, so weights and draft pool come out of the "
                   "reserve mem_fraction_static leaves (SGLang 0.5.10 and earlier: OOM at start "
                   "when they do not fit; give sglang.version for a later release)",
        alg == SglangSpeculative::kEagle3 && draft_spec->draft_vocab_size == 0
            ? "; the lm_head is counted at vocab_size (the config gives no draft_vocab_size)"
            : ""));
  }
  if (alg != SglangSpeculative::kNone) {
    out.notes.push_back(absl::StrCat(
        "speculative decoding: ", r.num_steps, " steps, top-k ", r.eagle_topk, ", ",
        r.num_draft_tokens, " draft tokens per sequence",
        g.max_running_requests == 0 ? "; SGLang resets --max-running-requests to 48" : ""));
  }
  // The radix (prefix) cache is on unless --disable-radix-cache: sequences that share a prefix
  // share its pooled tokens, so it changes capacity, never the bytes.
  out.notes.push_back(
      g.disable_radix_cache
          ? "SGLang's radix prefix cache is off (--disable-radix-cache): no sequence shares a "
            "prefix's tokens"
          : "SGLang's radix prefix cache changes capacity, not memory: sequences sharing a prefix "
            "hold its tokens once, so the sequences above assume none is shared");
  bool sliding = false;
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    sliding |= spec.attention(static_cast<int>(l)).sliding_window > 0;
  }
  if (sliding && !hybrid) {
    out.notes.push_back(
        g.disable_hybrid_swa_memory || Sm100Gpu(req.gpu_name)
            ? "sliding-window layers held at full size (--disable-hybrid-swa-memory, or SGLang's "
              "own choice for gpt-oss on an SM100 GPU, whose trtllm_mha backend has no SWA pool)"
            : "sliding-window layers held at full size, as SGLang does for this architecture (its "
              "hybrid SWA pool is for gpt-oss, Llama 4, Gemma 4, MiMo and Step-3.5: "
              "model_config.py is_hybrid_swa_model)");
  }
  if (out.reason.empty() && req.context_tokens > context_len) {
    out.reason = absl::StrCat("context_tokens=", req.context_tokens,
                              " is more than --context-length ", context_len);
  }
  if (out.reason.empty() && out.max_concurrency_low < 1) {
    out.reason = absl::StrCat("the KV cache holds ", out.kv_cache_tokens_low,
                              " tokens at the low end of its band, less than one sequence of ",
                              context, " tokens");
  }
  if (out.reason.empty() && req.concurrency > out.max_concurrency_low) {
    out.reason =
        absl::StrCat("SGLang holds ", out.max_concurrency_low, " sequences of ", context,
                     " tokens at the low end of its band (max_running_requests ", max_running, ", ",
                     out.kv_cache_tokens_low, " tokens); the workload needs ", req.concurrency);
  }
  return absl::OkStatus();
}

}  // namespace fleetplan::estimator
