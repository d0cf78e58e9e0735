#include "planner/estimator/estimator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/llama_cpp.h"
#include "planner/estimator/openvino.h"
#include "planner/estimator/rank_layout.h"
#include "planner/estimator/sglang.h"
#include "planner/estimator/uncertainty.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::estimator {
namespace {

using limits::kMaxParallel;
using limits::kMaxSequences;
constexpr int64_t kMaxTokens = limits::kMaxContextTokens;  // of context, or batch x sequence

// ---- Validation ------------------------------------------------------------------------------

// Images of a request (HF's and OpenVINO's, field names after `prefix`): counts and sizes in
// range, a vision tower to take them, and a size when the tower has no native one.
absl::Status ValidateImages(const ModelSpec& spec, const std::string& prefix, int64_t images,
                            int64_t height, int64_t width) {
  const struct {
    const char* name;
    int64_t value, max;
  } fields[] = {
      {"images", images, 4096}, {"image_height", height, 1 << 16}, {"image_width", width, 1 << 16}};
  for (const auto& f : fields) {
    if (f.value < 0 || f.value > f.max) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, f.name, "=", f.value, " must be in [0, ", f.max, "]"));
    }
  }
  if (images > 0 && !spec.vision) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "images=", images, " but the model has no vision tower"));
  }
  if (images > 0 && ImageTokens(spec, height, width) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix, "images=", images, " needs image_height and image_width: this vision tower (",
        spec.vision->model_type, ") has no native image size"));
  }
  return absl::OkStatus();
}

// The width of the hidden states an EAGLE head reads: its target's (EAGLE3 configs may say so in
// target_hidden_size), else its own.
int64_t HeadReadsWidth(const ModelSpec& head) {
  return head.target_hidden_size > 0 ? head.target_hidden_size : head.hidden_size;
}

// What a bidirectional encoder (ModelSpec::encoder_only) can be asked: one forward per batch, on
// the engines whose encoder path is modelled, within its position table.
absl::Status ValidateEncoderRequest(const ModelSpec& spec, const EstimateRequest& r) {
  if (!spec.encoder_only) return absl::OkStatus();
  const std::string what =
      absl::StrCat("model_type \"", spec.model_type, "\" is a bidirectional encoder");
  switch (r.engine) {
    case Engine::kSglang:
    case Engine::kOpenvino:
    case Engine::kLlamaCpp:
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": engine=", EngineName(r.engine),
                       " is not modelled for it (vllm, hf-transformers and training are)"));
    case Engine::kHfTransformers:
      if (r.hf.generate) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": it does not generate (hf.generate=true); estimate one forward"));
      }
      if (r.hf.prompt_tokens > spec.max_position_embeddings) {
        return absl::InvalidArgumentError(absl::StrCat("prompt_tokens=", r.hf.prompt_tokens, ": ",
                                                       what, " of ", spec.max_position_embeddings,
                                                       " positions"));
      }
      break;
    case Engine::kTraining:
      if (r.training.seq_tokens > spec.max_position_embeddings) {
        return absl::InvalidArgumentError(absl::StrCat("seq_tokens=", r.training.seq_tokens, ": ",
                                                       what, " of ", spec.max_position_embeddings,
                                                       " positions"));
      }
      break;
    case Engine::kVllm: {
      const VllmConfig& v = r.vllm;
      ASSIGN_OR_RETURN(const VllmVersion version, ParseVllmVersion("vllm.version", v.version));
      if (!version.AtLeast(0, kVllmEncoderOnlyFromMinor)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vllm.version=", v.version, ": ", what,
            ", modelled on vLLM's V1 pooling runner from 0.", kVllmEncoderOnlyFromMinor,
            " on (earlier releases may run it on V0, whose cache engine is not modelled "
            "for encoders)"));
      }
      if (v.draft != nullptr || v.speculative_method != SpeculativeMethod::kDraftModel) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": speculative decoding needs a generating model"));
      }
      const int64_t max_len = v.max_model_len > 0 ? v.max_model_len : spec.max_position_embeddings;
      if (max_len > spec.max_position_embeddings) {
        return absl::InvalidArgumentError(absl::StrCat("vllm.max_model_len=", max_len, ": ", what,
                                                       " of ", spec.max_position_embeddings,
                                                       " positions"));
      }
      if (r.context_tokens > max_len) {
        return absl::InvalidArgumentError(absl::StrCat(
            "context_tokens=", r.context_tokens, " exceeds max_model_len=", max_len, ": ", what));
      }
      if (v.max_num_batched_tokens > 0 && v.max_num_batched_tokens < max_len) {
        // vllm/config/scheduler.py _verify_args, without chunked prefill.
        return absl::InvalidArgumentError(
            absl::StrCat("vllm.max_num_batched_tokens=", v.max_num_batched_tokens,
                         " is smaller than max_model_len=", max_len, ": ", what,
                         ", served without chunked prefill, and vLLM refuses this"));
      }
      break;
    }
  }
  return absl::OkStatus();
}

// Layers whose memory only some engines' models follow. mllama's cross-attention: the
// transformers and training models only (vLLM served MllamaForConditionalGeneration last in
// 0.10.2, on V0: vllm/model_executor/models/registry.py _PREVIOUSLY_SUPPORTED_MODELS; the other
// engines' cross-attention caches are not modelled). qwen3_next's linear attention with a
// per-sequence state: also vLLM's hybrid allocator from the release that added the model
// (vllm_model.cc KvGroups) and SGLang's mamba state pool (sglang_model.cc), without a draft or
// LoRA beside them; llama.cpp's recurrent cells and OpenVINO are not modelled. Refused there
// rather than estimated as attention.
absl::Status ValidateLayerEngines(const ModelSpec& spec, const EstimateRequest& r) {
  if (r.engine == Engine::kHfTransformers || r.engine == Engine::kTraining) {
    return absl::OkStatus();
  }
  std::string what;
  if (spec.has_cross_attention()) {
    what = absl::StrCat("model_type \"",
                        spec.wrapper_type.empty() ? spec.model_type : spec.wrapper_type,
                        "\" reads images through cross-attention layers");
  } else if (spec.has_linear_attention()) {
    what = absl::StrCat("model_type \"", spec.model_type,
                        "\" has linear-attention layers with a per-sequence state");
    if (r.engine == Engine::kVllm) {
      const VllmConfig& v = r.vllm;
      ASSIGN_OR_RETURN(const VllmVersion version, ParseVllmVersion("vllm.version", v.version));
      if (version < kVllmLinearAttentionFrom) {
        return absl::InvalidArgumentError(
            absl::StrCat("vllm.version=", v.version, ": ", what, ", which vLLM serves from ",
                         kVllmLinearAttentionFrom.ToString(),
                         " on (Qwen3NextForCausalLM, V1's hybrid KV cache)"));
      }
      if (v.enable_lora) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vllm.enable_lora: ", what, "; LoRA slots on its projections are not modelled"));
      }
      if (v.draft != nullptr || v.speculative_method == SpeculativeMethod::kMtp) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vllm.speculative_method=", SpeculativeMethodNames().Name(v.speculative_method), ": ",
            what,
            "; a drafter's layers beside its state groups are not modelled (n-gram "
            "drafting is)"));
      }
      bool attention = false;
      for (int64_t l = 0; l < spec.num_layers; ++l) {
        attention |= !spec.attention(static_cast<int>(l)).linear_attention;
      }
      if (!attention) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " on every layer: vLLM's attention-free path is not modelled"));
      }
      return absl::OkStatus();
    }
    if (r.engine == Engine::kSglang) {
      const SglangConfig& g = r.sglang;
      if (!g.version.empty()) {
        ASSIGN_OR_RETURN(const VllmVersion version, ParseVllmVersion("sglang.version", g.version));
        if (version < kSglangLinearAttentionFrom) {
          return absl::InvalidArgumentError(absl::StrCat(
              "sglang.version=", g.version, ": ", what,
              ", whose state pool is modelled as read at ", kSglangLinearAttentionFrom.ToString(),
              " (earlier releases sized it differently)"));
        }
      }
      if (g.speculative_algorithm != SglangSpeculative::kNone) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sglang.speculative_algorithm=", SglangSpeculativeNames().Name(g.speculative_algorithm),
            ": ", what, "; SGLang's intermediate speculative states are not modelled"));
      }
      if (g.enable_lora) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sglang.enable_lora: ", what, "; LoRA buffers on its projections are not modelled"));
      }
      return absl::OkStatus();
    }
  } else {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": engine=", EngineName(r.engine),
                   " is not modelled for it (hf-transformers and training are",
                   spec.has_cross_attention()
                       ? (r.engine == Engine::kVllm
                              ? "; vLLM removed MllamaForConditionalGeneration after 0.10.2"
                              : "")
                       : ", and vllm and sglang",
                   ")"));
}

// Which engines and requests a model's kind of layers allows (ValidateRequest, and Estimate's
// llama.cpp path, which converts the config before ValidateRequest sees it).
absl::Status ValidateModelEngine(const ModelSpec& spec, const EstimateRequest& r) {
  RETURN_IF_ERROR(ValidateEncoderRequest(spec, r));
  return ValidateLayerEngines(spec, r);
}

absl::Status ValidateRequest(const ModelSpec& spec, const EstimateRequest& r) {
  RETURN_IF_ERROR(ValidateModelEngine(spec, r));
  const Parallelism& p = r.parallelism;
  auto range = [](const char* name, int64_t v, int64_t lo, int64_t hi) -> absl::Status {
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, "=", v, " must be in [", lo, ", ", hi, "]"));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(range("tp", p.tp, 1, kMaxParallel));
  RETURN_IF_ERROR(range("pp", p.pp, 1, spec.num_layers));
  RETURN_IF_ERROR(range("ep", p.ep, 1, kMaxParallel));
  RETURN_IF_ERROR(range("dp", p.dp, 1, kMaxParallel));
  if (r.gpu_memory_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("gpu_memory_bytes=", r.gpu_memory_bytes, " must be > 0"));
  }
  RETURN_IF_ERROR(range("gpu_memory_bytes", r.gpu_memory_bytes, 1, limits::kMaxGpuMemoryBytes));
  for (const LayerKind& k : spec.layer_kinds) {
    const AttentionSpec& a = k.attention;
    if (a.num_heads % p.tp != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tp=", p.tp, " does not divide num_attention_heads=", a.num_heads));
    }
    if (!a.mla && a.num_kv_heads % p.tp != 0 && p.tp % a.num_kv_heads != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tp=", p.tp, " and num_key_value_heads=", a.num_kv_heads,
                       " must divide one another (KV heads are split or replicated whole)"));
    }
    if (k.mlp.num_experts > 0 && p.ep > k.mlp.num_experts) {
      return absl::InvalidArgumentError(
          absl::StrCat("ep=", p.ep, " exceeds the number of experts ", k.mlp.num_experts));
    }
  }
  if (p.ep > 1 && !spec.is_moe()) {
    return absl::InvalidArgumentError(absl::StrCat("ep=", p.ep, " needs an MoE model"));
  }
  RETURN_IF_ERROR(range("concurrency", r.concurrency, 0, kMaxSequences));
  RETURN_IF_ERROR(range("context_tokens", r.context_tokens, 0, kMaxTokens));
  switch (r.engine) {
    case Engine::kVllm: {
      const VllmConfig& v = r.vllm;
      // 0 is "unset": the version's default.
      if (!(v.gpu_memory_utilization >= 0 && v.gpu_memory_utilization <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "gpu_memory_utilization=", v.gpu_memory_utilization, " must be in (0, 1]"));
      }
      RETURN_IF_ERROR(ParseVllmVersion("vllm.version", v.version).status());
      RETURN_IF_ERROR(range("max_model_len", v.max_model_len, 0, kMaxTokens));
      RETURN_IF_ERROR(range("max_num_seqs", v.max_num_seqs, 0, kMaxSequences));
      RETURN_IF_ERROR(range("max_num_batched_tokens", v.max_num_batched_tokens, 0, kMaxTokens));
      RETURN_IF_ERROR(range("block_size", v.block_size, 1, 4096));
      RETURN_IF_ERROR(
          range("max_cudagraph_capture_size", v.max_cudagraph_capture_size, 0, 1 << 16));
      if (!(v.cpu_offload_gb >= 0 && v.cpu_offload_gb <= 1 << 20) ||
          !(v.swap_space_gb >= 0 && v.swap_space_gb <= 1 << 20)) {
        return absl::InvalidArgumentError(absl::StrCat("vllm.cpu_offload_gb=", v.cpu_offload_gb,
                                                       " and vllm.swap_space_gb=", v.swap_space_gb,
                                                       " must be in [0, 1048576] GiB"));
      }
      for (const auto& [field, value] : {std::pair<const char*, const std::string&>{
                                             "vllm.mamba_cache_dtype", v.mamba_cache_dtype},
                                         {"vllm.mamba_ssm_cache_dtype", v.mamba_ssm_cache_dtype}}) {
        if (!value.empty() && value != "auto" && value != "float32" && value != "float16" &&
            value != "bfloat16") {
          return absl::InvalidArgumentError(
              absl::StrCat(field, "=\"", value, "\" must be auto, float32, float16 or bfloat16"));
        }
      }
      const bool eagle = IsEagleHead(v.speculative_method);
      if (eagle && v.draft == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vllm.speculative_method=", SpeculativeMethodNames().Name(v.speculative_method),
            " needs the head's config.json (vllm.draft_config_json, --draft-model)"));
      }
      if (eagle && HeadReadsWidth(*v.draft) != spec.hidden_size) {
        // The head reads the target's hidden states.
        return absl::InvalidArgumentError(absl::StrCat(
            "vllm.speculative_method=", SpeculativeMethodNames().Name(v.speculative_method),
            ": the head's hidden_size ", HeadReadsWidth(*v.draft), " is not the target's ",
            spec.hidden_size, " (an EAGLE head is trained for one target)"));
      }
      if (v.draft != nullptr) {
        RETURN_IF_ERROR(range("vllm.num_speculative_tokens", v.num_speculative_tokens, 1, 64));
        if (p.pp != 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              "pp=", p.pp, " with a draft model: speculative decoding is modelled at pp=1"));
        }
        for (const ModelSpec* m : {&spec, v.draft}) {
          for (int64_t l = 0; l < m->num_layers; ++l) {
            if (m->attention(static_cast<int>(l)).sliding_window > 0) {
              return absl::InvalidArgumentError(absl::StrCat(
                  m == &spec ? "the model" : "the draft model", " (", m->model_type,
                  ") has sliding-window layers: a draft's KV beside them is not modelled"));
            }
          }
        }
        for (const LayerKind& k : v.draft->layer_kinds) {
          const AttentionSpec& a = k.attention;
          if (a.num_heads % p.tp != 0 ||
              (!a.mla && a.num_kv_heads % p.tp != 0 && p.tp % a.num_kv_heads != 0)) {
            return absl::InvalidArgumentError(absl::StrCat(
                "tp=", p.tp, " does not split the draft model's ", a.num_heads, " heads / ",
                a.num_kv_heads, " KV heads (vLLM runs the draft at the target's tp)"));
          }
        }
      } else if (v.speculative_method == SpeculativeMethod::kNgram) {
        RETURN_IF_ERROR(range("vllm.num_speculative_tokens", v.num_speculative_tokens, 1, 64));
      } else if (v.num_speculative_tokens != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("vllm.num_speculative_tokens=", v.num_speculative_tokens,
                         " needs a draft model, the model's MTP layers or n-gram drafting"));
      }
      if (v.enable_lora) {
        RETURN_IF_ERROR(range("vllm.max_loras", v.max_loras, 1, 1024));
        RETURN_IF_ERROR(range("vllm.max_cpu_loras", v.max_cpu_loras, 0, 1 << 16));
        // vllm/config/lora.py: max_lora_rank must be one of these.
        static constexpr int64_t kRanks[] = {8, 16, 32, 64, 128, 256, 320, 512};
        if (std::find(std::begin(kRanks), std::end(kRanks), v.max_lora_rank) == std::end(kRanks)) {
          return absl::InvalidArgumentError(
              absl::StrCat("vllm.max_lora_rank=", v.max_lora_rank,
                           " must be one of 8, 16, 32, 64, 128, 256, 320, 512"));
        }
      }
      break;
    }
    case Engine::kSglang: {
      const SglangConfig& g = r.sglang;
      if (!(g.swa_full_tokens_ratio >= 0 && g.swa_full_tokens_ratio <= 1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("sglang.swa_full_tokens_ratio=", g.swa_full_tokens_ratio,
                         " must be in (0, 1] (0: SGLang's 0.8)"));
      }
      if (!(g.mem_fraction_static >= 0 && g.mem_fraction_static < 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sglang.mem_fraction_static=", g.mem_fraction_static, " must be in (0, 1)"));
      }
      RETURN_IF_ERROR(range("sglang.context_length", g.context_length, 0, kMaxTokens));
      RETURN_IF_ERROR(range("sglang.chunked_prefill_size", g.chunked_prefill_size, 0, kMaxTokens));
      RETURN_IF_ERROR(range("sglang.cuda_graph_max_bs", g.cuda_graph_max_bs, 0, 1 << 16));
      RETURN_IF_ERROR(
          range("sglang.max_running_requests", g.max_running_requests, 0, kMaxSequences));
      RETURN_IF_ERROR(range("sglang.page_size", g.page_size, 1, 4096));
      RETURN_IF_ERROR(
          range("sglang.max_mamba_cache_size", g.max_mamba_cache_size, 0, kMaxSequences));
      if (!(g.mamba_full_memory_ratio >= 0 && g.mamba_full_memory_ratio <= 100)) {
        return absl::InvalidArgumentError(
            absl::StrCat("sglang.mamba_full_memory_ratio=", g.mamba_full_memory_ratio,
                         " must be in (0, 100] (0: SGLang's 0.9)"));
      }
      // server_args.py MAMBA_SSM_DTYPE_CHOICES.
      if (!g.mamba_ssm_dtype.empty() && g.mamba_ssm_dtype != "float32" &&
          g.mamba_ssm_dtype != "bfloat16") {
        return absl::InvalidArgumentError(absl::StrCat(
            "sglang.mamba_ssm_dtype=\"", g.mamba_ssm_dtype, "\" must be float32 or bfloat16"));
      }
      if (g.enable_lora) {
        RETURN_IF_ERROR(range("sglang.max_loras_per_batch", g.max_loras_per_batch, 1, 1024));
        if (g.max_lora_rank <= 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("sglang.max_lora_rank=", g.max_lora_rank,
                           ": give the largest adapter rank to serve (SGLang infers it only from "
                           "--lora-paths)"));
        }
        RETURN_IF_ERROR(range("sglang.max_lora_rank", g.max_lora_rank, 1, 4096));
        RETURN_IF_ERROR(range("sglang.max_loaded_loras", g.max_loaded_loras, 0, 1 << 16));
        // server_args.py check_lora_server_args: the batch's adapters must all be loaded.
        if (g.max_loaded_loras > 0 && g.max_loaded_loras < g.max_loras_per_batch) {
          return absl::InvalidArgumentError(absl::StrCat(
              "sglang.max_loaded_loras=", g.max_loaded_loras, " is less than max_loras_per_batch=",
              g.max_loras_per_batch, " (SGLang refuses this)"));
        }
      }
      if (!g.version.empty())
        RETURN_IF_ERROR(ParseVllmVersion("sglang.version", g.version).status());
      RETURN_IF_ERROR(range("sglang.speculative_num_steps", g.speculative_num_steps, 0, 64));
      RETURN_IF_ERROR(range("sglang.speculative_eagle_topk", g.speculative_eagle_topk, 0, 64));
      RETURN_IF_ERROR(range("sglang.piecewise_cuda_graph_max_tokens",
                            g.piecewise_cuda_graph_max_tokens, 0, kMaxTokens));
      if (g.piecewise_cuda_graph_max_tokens > 0 && !g.enable_piecewise_cuda_graph) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sglang.piecewise_cuda_graph_max_tokens=", g.piecewise_cuda_graph_max_tokens,
            " needs sglang.enable_piecewise_cuda_graph"));
      }
      RETURN_IF_ERROR(
          range("sglang.speculative_num_draft_tokens", g.speculative_num_draft_tokens, 0, 1024));
      const std::string alg(SglangSpeculativeNames().Name(g.speculative_algorithm));
      const bool needs_draft = SglangHasDraftModel(g.speculative_algorithm) &&
                               g.speculative_algorithm != SglangSpeculative::kNextn;
      if (needs_draft && g.draft == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sglang.speculative_algorithm=", alg,
            " needs the draft checkpoint's config.json (sglang.draft_config_json, --draft-model)"));
      }
      if (!needs_draft && g.draft != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("a draft model with sglang.speculative_algorithm=", alg,
                         ": only EAGLE, EAGLE3 and STANDALONE take one (NEXTN drafts with the "
                         "model's own MTP layers)"));
      }
      if ((g.speculative_algorithm == SglangSpeculative::kEagle ||
           g.speculative_algorithm == SglangSpeculative::kEagle3) &&
          g.draft != nullptr && HeadReadsWidth(*g.draft) != spec.hidden_size) {
        // The head reads the target's hidden states (llama_eagle.py, llama_eagle3.py).
        return absl::InvalidArgumentError(absl::StrCat(
            "sglang.speculative_algorithm=", alg, ": the draft's hidden_size ",
            HeadReadsWidth(*g.draft), " is not the target's ", spec.hidden_size,
            " (an EAGLE head is trained for one target; a small model of its own is STANDALONE)"));
      }
      if (g.speculative_algorithm == SglangSpeculative::kNextn && spec.mtp == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("sglang.speculative_algorithm=NEXTN: model_type \"", spec.model_type,
                         "\" has no MTP layers (config.json num_nextn_predict_layers)"));
      }
      if (g.speculative_algorithm == SglangSpeculative::kNone &&
          (g.speculative_num_steps > 0 || g.speculative_eagle_topk > 0 ||
           g.speculative_num_draft_tokens > 0)) {
        return absl::InvalidArgumentError(
            "sglang.speculative_num_steps, _eagle_topk and _num_draft_tokens need "
            "sglang.speculative_algorithm");
      }
      if (SglangHasDraftModel(g.speculative_algorithm)) {
        if (r.parallelism.pp > 1) {
          return absl::InvalidArgumentError(
              absl::StrCat("sglang.speculative_algorithm=", alg, " at pp=", r.parallelism.pp,
                           ": a draft on pipeline stages is not modelled (plan it with pp=1)"));
        }
        if (g.enable_lora) {
          return absl::InvalidArgumentError(absl::StrCat(
              "sglang.enable_lora with sglang.speculative_algorithm=", alg,
              ": SGLang serves LoRA only with NGRAM speculative decoding (server_args.py)"));
        }
      }
      break;
    }
    case Engine::kHfTransformers: {
      const HfConfig& h = r.hf;
      if (p.tp * p.pp * p.ep != 1) {
        return absl::InvalidArgumentError(
            "hf-transformers runs on one GPU: tp, pp and ep must be 1 (use vllm for parallelism)");
      }
      RETURN_IF_ERROR(range("batch", h.batch, 1, kMaxSequences));
      RETURN_IF_ERROR(range("prompt_tokens", h.prompt_tokens, 1, kMaxTokens));
      RETURN_IF_ERROR(range("new_tokens", h.new_tokens, 0, kMaxTokens));
      if (h.batch * (h.prompt_tokens + h.new_tokens) > kMaxTokens * 16) {
        return absl::InvalidArgumentError(absl::StrCat(
            "batch=", h.batch, " x (prompt_tokens + new_tokens)=", h.prompt_tokens + h.new_tokens,
            " is absurdly large"));
      }
      RETURN_IF_ERROR(ValidateImages(spec, "", h.images, h.image_height, h.image_width));
      if (!h.vision_tower_only &&
          h.batch *
                  (h.prompt_tokens + h.images * ImageTokens(spec, h.image_height, h.image_width)) >
              kMaxTokens * 16) {
        return absl::InvalidArgumentError(absl::StrCat("batch=", h.batch, " x images=", h.images,
                                                       " of ", h.image_height, "x", h.image_width,
                                                       " px is absurdly many prompt tokens"));
      }
      break;
    }
    case Engine::kTraining: {
      const TrainingConfig& t = r.training;
      RETURN_IF_ERROR(range("batch", t.batch, 1, kMaxSequences));
      RETURN_IF_ERROR(range("seq_tokens", t.seq_tokens, 1, kMaxTokens));
      RETURN_IF_ERROR(range("zero_stage", t.zero_stage, 0, 3));
      RETURN_IF_ERROR(range("lora_rank", t.lora_rank, 0, 65536));
      if (t.batch * t.seq_tokens > kMaxTokens) {
        return absl::InvalidArgumentError(
            absl::StrCat("batch=", t.batch, " x seq_tokens=", t.seq_tokens, " is absurdly large"));
      }
      break;
    }
    case Engine::kOpenvino: {
      const OpenvinoConfig& o = r.openvino;
      if (p.world() != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "openvino runs a pipeline on one device: tp, pp and ep must be 1 (tp=", p.tp,
            ", pp=", p.pp, ", ep=", p.ep, ")"));
      }
      if (o.group_size != -1)
        RETURN_IF_ERROR(range("openvino.group_size", o.group_size, 1, 1 << 20));
      if (!(o.ratio >= 0 && o.ratio <= 1)) {
        return absl::InvalidArgumentError(
            absl::StrCat("openvino.ratio=", o.ratio, " must be in [0, 1]"));
      }
      RETURN_IF_ERROR(range("openvino.kv_group_size", o.kv_group_size, 0, 1 << 16));
      if (!(o.cache_size_gb >= 0 && o.cache_size_gb <= 1 << 20)) {
        return absl::InvalidArgumentError(absl::StrCat("openvino.cache_size_gb=", o.cache_size_gb,
                                                       " must be in [0, 1048576] GB"));
      }
      RETURN_IF_ERROR(range("openvino.num_kv_blocks", o.num_kv_blocks, 0, int64_t{1} << 32));
      if ((o.cache_size_gb > 0 || o.num_kv_blocks > 0) && !o.continuous_batching) {
        return absl::InvalidArgumentError(
            "openvino.cache_size_gb / num_kv_blocks size continuous batching's KV blocks: set "
            "continuous_batching (a stateful pipeline keeps the KV in its state)");
      }
      if (o.cache_size_gb > 0 && o.num_kv_blocks > 0) {
        return absl::InvalidArgumentError(absl::StrCat("openvino.cache_size_gb=", o.cache_size_gb,
                                                       " and num_kv_blocks=", o.num_kv_blocks,
                                                       ": give one of them"));
      }
      RETURN_IF_ERROR(
          range("openvino.max_num_batched_tokens", o.max_num_batched_tokens, 1, kMaxTokens));
      RETURN_IF_ERROR(range("openvino.max_num_seqs", o.max_num_seqs, 1, kMaxSequences));
      RETURN_IF_ERROR(range("openvino.prompt_tokens", o.prompt_tokens, 1, kMaxTokens));
      RETURN_IF_ERROR(range("openvino.new_tokens", o.new_tokens, 0, kMaxTokens));
      RETURN_IF_ERROR(range("openvino.llm_tokens", o.llm_tokens, 0, kMaxTokens));
      RETURN_IF_ERROR(ValidateImages(spec, "openvino.", o.images, o.image_height, o.image_width));
      if (spec.vision && spec.vision->token_rule == VisionSpec::TokenRule::kPerTile) {
        return absl::InvalidArgumentError(
            absl::StrCat("openvino: the ", spec.vision->model_type,
                         " vision tower (per-tile tokens) is not modelled for OpenVINO"));
      }
      const OvKvPrecision kv = OvResolvedKvPrecision(o);
      if (o.device == OvDevice::kGpu && kv != OvKvPrecision::kF16 && kv != OvKvPrecision::kU8 &&
          kv != OvKvPrecision::kF32) {
        return absl::InvalidArgumentError(
            absl::StrCat("openvino.kv_precision=", OvKvPrecisionNames().Name(kv),
                         " on gpu: the GPU plugin's KV cache is f16, f32 or 8-bit (u8)"));
      }
      for (const LayerKind& k : spec.layer_kinds) {
        if (k.attention.mla) {
          return absl::InvalidArgumentError(absl::StrCat(
              "openvino: MLA attention (", spec.model_type, ") is not modelled for OpenVINO"));
        }
      }
      if (o.images * ImageTokens(spec, o.image_height, o.image_width) + o.prompt_tokens >
          kMaxTokens * 16) {
        return absl::InvalidArgumentError(absl::StrCat("openvino.images=", o.images, " of ",
                                                       o.image_height, "x", o.image_width,
                                                       " px is absurdly many prompt tokens"));
      }
      break;
    }
    case Engine::kLlamaCpp:
      break;  // EstimateLlamaCppFromModel validates its own request
  }
  return absl::OkStatus();
}

// Every byte count the engine models compute fits in int64 as long as its largest terms do; this
// bounds them from above (in long double, so the bound itself cannot overflow) and refuses a
// request whose memory would exceed kMaxBytes per GPU — by far beyond any GPU, and a refusal that
// names the fields instead of a wrapped-around number.
constexpr long double kMaxBytes = static_cast<long double>(int64_t{1} << 60);  // 1 EiB

absl::Status CheckMagnitude(const ModelSpec& spec, const EstimateRequest& r) {
  using LD = long double;
  LD kv_per_token = 0;  // all layers, fp32 worst case
  LD heads = 1, widest = static_cast<LD>(spec.hidden_size);
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    const AttentionSpec& a = spec.attention(static_cast<int>(l));
    kv_per_token += static_cast<LD>(a.mla ? a.kv_lora_rank + a.qk_rope_head_dim
                                          : a.num_kv_heads * (a.head_dim + a.v_head_dim)) *
                    4;
  }
  for (const LayerKind& k : spec.layer_kinds) {
    heads = std::max(heads, static_cast<LD>(k.attention.num_heads));
    widest = std::max({widest, static_cast<LD>(k.mlp.intermediate_size),
                       static_cast<LD>(k.mlp.expert_intermediate_size) *
                           static_cast<LD>(std::max<int64_t>(k.mlp.experts_per_token, 1)),
                       static_cast<LD>(k.attention.num_heads * k.attention.head_dim)});
  }
  const LD vocab = static_cast<LD>(spec.vocab_size);
  LD sequences = 1, tokens_per_sequence = 1;
  const char* fields = "";
  switch (r.engine) {
    case Engine::kVllm:
      sequences = static_cast<LD>(std::max<int64_t>(r.concurrency, 1));
      tokens_per_sequence = static_cast<LD>(
          std::max({r.context_tokens, r.vllm.max_model_len, spec.max_position_embeddings,
                    r.vllm.max_num_batched_tokens, int64_t{8192}}));
      fields = "concurrency x context_tokens";
      break;
    case Engine::kHfTransformers: {
      const LD image_tokens =
          r.hf.images > 0
              ? static_cast<LD>(r.hf.images) *
                    static_cast<LD>(ImageTokens(spec, r.hf.image_height, r.hf.image_width))
              : 0;
      sequences = static_cast<LD>(r.hf.batch);
      tokens_per_sequence = static_cast<LD>(r.hf.prompt_tokens + r.hf.new_tokens) + image_tokens;
      fields = "batch x (prompt_tokens + images + new_tokens)";
      break;
    }
    case Engine::kTraining:
      sequences = static_cast<LD>(r.training.batch);
      tokens_per_sequence = static_cast<LD>(r.training.seq_tokens);
      fields = "batch x seq_tokens";
      break;
    case Engine::kSglang:
      sequences = static_cast<LD>(std::max<int64_t>(r.concurrency, 1));
      tokens_per_sequence = static_cast<LD>(
          std::max({r.context_tokens, r.sglang.context_length, spec.max_position_embeddings,
                    r.sglang.chunked_prefill_size, int64_t{16384}}));
      fields = "concurrency x context_tokens";
      break;
    case Engine::kOpenvino: {
      const OpenvinoConfig& o = r.openvino;
      sequences = static_cast<LD>(std::max<int64_t>(r.concurrency, 1));
      const VisionPasses v = VisionTowerPasses(spec, o.images, o.image_height, o.image_width);
      tokens_per_sequence =
          std::max({static_cast<LD>(std::max(r.context_tokens, o.llm_tokens)) +
                        static_cast<LD>(o.new_tokens),
                    static_cast<LD>(o.prompt_tokens) +
                        static_cast<LD>(o.images) *
                            static_cast<LD>(ImageTokens(spec, o.image_height, o.image_width)),
                    static_cast<LD>(v.batch) * static_cast<LD>(v.tokens)});
      fields = "concurrency x context_tokens";
      break;
    }
    case Engine::kLlamaCpp:
      break;
  }
  const LD tokens = sequences * tokens_per_sequence;
  const LD layers = static_cast<LD>(spec.num_layers);
  const LD terms[] = {
      tokens * kv_per_token * 2,                                           // KV cache (and a copy)
      sequences * heads * tokens_per_sequence * tokens_per_sequence * 16,  // eager scores, masks
      tokens * vocab * 16,                                                 // logits, fp32 copies
      tokens * widest * layers * 64,                                       // saved activations
  };
  for (LD t : terms) {
    if (t > kMaxBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          fields, " is out of range for this model: it would need more than 1 EiB per GPU (",
          fields[0] == 'c'
              ? absl::StrCat("concurrency=", r.concurrency, ", context_tokens=", r.context_tokens)
          : fields[0] == 'b' && r.engine == Engine::kTraining
              ? absl::StrCat("batch=", r.training.batch, ", seq_tokens=", r.training.seq_tokens)
              : absl::StrCat("batch=", r.hf.batch, ", prompt_tokens=", r.hf.prompt_tokens,
                             ", new_tokens=", r.hf.new_tokens),
          ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// Engine models (vllm_model.cc, hf_model.cc, training_model.cc).
absl::Status EstimateVllm(const internal::RankContext& c, MemoryEstimate& out);
absl::Status EstimateSglang(const internal::RankContext& c, MemoryEstimate& out);
absl::Status EstimateHf(const internal::RankContext& c, MemoryEstimate& out);
absl::Status EstimateTraining(const internal::RankContext& c, MemoryEstimate& out);
absl::Status EstimateOpenvino(const internal::RankContext& c, MemoryEstimate& out);

std::vector<int64_t> MemoryEstimate::BytesPerRank() const {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(parallelism.tp) * stages.size());
  for (const StageMemory& s : stages) {
    for (int64_t r = 0; r < parallelism.tp; ++r) out.push_back(s.high_bytes);
  }
  return out;
}

int64_t KvBytesPerToken(const ModelSpec& spec, const EstimateRequest& request, int64_t stage) {
  const internal::RankContext c(spec, request, internal::ResolveDType(spec, request));
  auto [first, last] = internal::StageLayers(spec.num_layers, request.parallelism.pp, stage);
  int64_t total = 0;
  for (int64_t l = first; l < last; ++l) {
    total += internal::LayerKvBytesPerToken(c, spec.attention(static_cast<int>(l)));
  }
  return total;
}

namespace {

// MiniCPM-V's slicing (image_processing_minicpmv.py slice_image, get_sliced_grid,
// find_best_resize, get_refine_size; the same in openvino.genai minicpm/classes.cpp slice_image):
// the image resized to about scale_resolution^2 pixels, plus, when it is larger than that, a
// cols x rows grid of slices of the same area whose aspect ratio is closest to the image's.
struct MiniCpmSlicing {
  int64_t cols = 0;  // 0: not cut
  int64_t rows = 0;
  int64_t max_patches = 0;  // the largest pass's patches (the batch is padded to it)
};

int64_t EnsureDivide(double length, int64_t patch) {
  return std::max<int64_t>(
      static_cast<int64_t>(std::round(length / static_cast<double>(patch))) * patch, patch);
}

// find_best_resize: the (width, height) a picture of w x h is resized to, in whole patches.
std::pair<int64_t, int64_t> MiniCpmResize(double w, double h, int64_t scale, int64_t patch,
                                          bool upscale) {
  const double s = static_cast<double>(scale);
  if (w * h > s * s || upscale) {
    const double r = w / h;
    h = std::floor(s / std::sqrt(r));
    w = std::floor(h * r);
  }
  return {EnsureDivide(w, patch), EnsureDivide(h, patch)};
}

MiniCpmSlicing SliceImage(const VisionSpec& v, int64_t height, int64_t width) {
  MiniCpmSlicing out;
  const double w = static_cast<double>(width), h = static_cast<double>(height);
  const double scale = static_cast<double>(v.slice_resolution);
  const int64_t max_slices = v.max_tiles;
  const double ratio = w * h / (scale * scale);
  const int64_t multiple = std::min(static_cast<int64_t>(std::ceil(ratio)), max_slices);
  const auto patches = [&](std::pair<int64_t, int64_t> size) {
    return (size.first / v.patch_size) * (size.second / v.patch_size);
  };
  if (multiple <= 1) {
    out.max_patches = patches(MiniCpmResize(w, h, v.slice_resolution, v.patch_size, true));
    return out;
  }
  out.max_patches = patches(MiniCpmResize(w, h, v.slice_resolution, v.patch_size, false));
  const double log_ratio = std::log(w / h);
  double best_error = std::numeric_limits<double>::infinity();
  for (int64_t n : {multiple - 1, multiple, multiple + 1}) {
    if (n == 1 || n > max_slices) continue;
    for (int64_t m = 1; m <= n; ++m) {
      if (n % m != 0) continue;
      const double error =
          std::abs(log_ratio - std::log(static_cast<double>(m) / static_cast<double>(n / m)));
      if (error < best_error) {
        best_error = error;
        out.cols = m;
        out.rows = n / m;
      }
    }
  }
  // get_refine_size: each slice is the refined image's grid cell, resized (upscaling allowed).
  const auto cell_w = static_cast<double>(EnsureDivide(w, out.cols) / out.cols);
  const auto cell_h = static_cast<double>(EnsureDivide(h, out.rows) / out.rows);
  out.max_patches =
      std::max(out.max_patches,
               patches(MiniCpmResize(cell_w, cell_h, v.slice_resolution, v.patch_size, true)));
  return out;
}

// Phi-3-vision's HD transform (image_processing_phi3_v.py calc_hd_transform_size): the longer
// side scaled to `scale` x 336 for the largest scale whose crops fit num_crops, the shorter side
// padded up to a multiple of 336. Returns (rows, cols) of 336-px crops.
std::pair<int64_t, int64_t> HdCrops(const VisionSpec& v, int64_t height, int64_t width) {
  const bool transposed = width < height;
  const double w = static_cast<double>(transposed ? height : width);
  const double h = static_cast<double>(transposed ? width : height);
  const double ratio = w / h;
  int64_t scale = 1;
  while (static_cast<double>(scale) * std::ceil(static_cast<double>(scale) / ratio) <=
         static_cast<double>(v.max_tiles)) {
    ++scale;
  }
  scale = std::max<int64_t>(1, scale - 1);
  const int64_t side = v.image_size;
  const int64_t new_w = scale * side;
  const auto new_h = static_cast<int64_t>(static_cast<double>(new_w) / ratio);
  const int64_t rows = std::max<int64_t>(1, internal::CeilDiv(new_h, side));
  const int64_t cols = scale;
  return transposed ? std::pair{cols, rows} : std::pair{rows, cols};
}

// PixtralImageProcessor get_resize_output_image_size: scaled down (never up) so the longest edge
// is at most image_size, then each side rounded up to whole units of patch x spatial merge
// (Mistral-3's processor passes patch_size x spatial_merge_size). (rows, columns) of units.
std::pair<int64_t, int64_t> PixtralGrid(const VisionSpec& v, int64_t height, int64_t width) {
  const double edge = static_cast<double>(v.image_size);
  const double ratio =
      std::max(static_cast<double>(height) / edge, static_cast<double>(width) / edge);
  if (ratio > 1) {
    height = static_cast<int64_t>(std::floor(static_cast<double>(height) / ratio));
    width = static_cast<int64_t>(std::floor(static_cast<double>(width) / ratio));
  }
  const int64_t unit = v.patch_size * v.spatial_merge;
  return {(std::max<int64_t>(height, 1) - 1) / unit + 1,
          (std::max<int64_t>(width, 1) - 1) / unit + 1};
}

}  // namespace

int64_t ImageTokens(const ModelSpec& spec, int64_t height, int64_t width) {
  if (!spec.vision) return 0;
  const VisionSpec& v = *spec.vision;
  if (height <= 0) height = v.image_size;
  if (width <= 0) width = v.image_size;
  if (height <= 0 || width <= 0) return 0;
  switch (v.token_rule) {
    case VisionSpec::TokenRule::kFixed:
    case VisionSpec::TokenRule::kPerTile:
    case VisionSpec::TokenRule::kCrossAttention:
      return v.fixed_tokens_per_image;
    case VisionSpec::TokenRule::kTiles:
      return ImageTiles(spec, height, width) * v.fixed_tokens_per_image;
    case VisionSpec::TokenRule::kSlices: {
      // The processor's placeholders (get_slice_image_placeholder / get_grid_placeholder): the
      // resized image and each slice are query_num tokens between two markers; rows of slices
      // are joined by a newline.
      const MiniCpmSlicing s = SliceImage(v, height, width);
      const int64_t per_pass = v.fixed_tokens_per_image + 2;
      return (1 + s.cols * s.rows) * per_pass + (s.rows > 0 ? s.rows - 1 : 0);
    }
    case VisionSpec::TokenRule::kHdCrops: {
      // Phi3ImageEmbedding's hd_feature_transform ("sub_glb"): each 336-px crop and the global
      // view is 12 x 12 merged patches; every row of merged patches ends in sub_GN (global and
      // sub-image grids alike) and one glb_GN separates them. As image_processing_phi3_v.py
      // counts it: (crops + 1) x 144 + 1 + (crop rows + 1) x 12.
      const auto [rows, cols] = HdCrops(v, height, width);
      const int64_t half = v.image_size / v.patch_size / 2;
      return (rows * cols + 1) * v.fixed_tokens_per_image + 1 + (rows + 1) * half;
    }
    case VisionSpec::TokenRule::kPixtral: {
      // PixtralProcessor: rows x (columns + [IMG_BREAK]), the last break being [IMG_END].
      const auto [rows, cols] = PixtralGrid(v, height, width);
      return rows * (cols + 1);
    }
    case VisionSpec::TokenRule::kPatchesMerged: {
      const double factor = static_cast<double>(v.patch_size * v.spatial_merge);
      const double h = static_cast<double>(height), w = static_cast<double>(width);
      if (v.model_type == "moonvit") {
        // Kimi-VL (image_processing_kimi_vl.py): shrink to at most in_token_limit = 4096 patches,
        // then pad each side up to a multiple of patch x merge.
        const double patches = std::floor(h / static_cast<double>(v.patch_size)) *
                               std::floor(w / static_cast<double>(v.patch_size));
        const double scale = patches > 4096.0 ? std::sqrt(4096.0 / patches) : 1.0;
        const auto rows = static_cast<int64_t>(std::ceil(std::floor(h * scale) / factor));
        const auto cols = static_cast<int64_t>(std::ceil(std::floor(w * scale) / factor));
        return std::max<int64_t>(rows, 1) * std::max<int64_t>(cols, 1);
      }
      // Qwen2-VL smart_resize (image_processing_qwen2_vl.py) with the pixel bounds Qwen2-VL and
      // Qwen2.5-VL ship in preprocessor_config.json: min 56^2, max 12,845,056 (28^2 x 16384).
      const double min_pixels = 3136.0;
      const double max_pixels = 12845056.0;
      double rh = std::max(factor, std::round(h / factor) * factor);
      double rw = std::max(factor, std::round(w / factor) * factor);
      if (rh * rw > max_pixels) {
        const double beta = std::sqrt(h * w / max_pixels);
        rh = std::max(factor, std::floor(h / beta / factor) * factor);
        rw = std::max(factor, std::floor(w / beta / factor) * factor);
      } else if (rh * rw < min_pixels) {
        const double beta = std::sqrt(min_pixels / (h * w));
        rh = std::ceil(h * beta / factor) * factor;
        rw = std::ceil(w * beta / factor) * factor;
      }
      const auto ph = static_cast<int64_t>(rh) / v.patch_size;
      const auto pw = static_cast<int64_t>(rw) / v.patch_size;
      return ph * pw / (v.spatial_merge * v.spatial_merge);
    }
    case VisionSpec::TokenRule::kLlavaNext: {
      // select_best_resolution: the pinpoint keeping most of the image, then wasting least.
      int64_t best_h = v.image_size, best_w = v.image_size;
      double best_effective = -1, best_wasted = 0;
      for (const auto& [ph, pw] : v.grid_pinpoints) {
        const double scale = std::min(static_cast<double>(pw) / static_cast<double>(width),
                                      static_cast<double>(ph) / static_cast<double>(height));
        const double dw = std::floor(static_cast<double>(width) * scale);
        const double dh = std::floor(static_cast<double>(height) * scale);
        const double effective =
            std::min(dw * dh, static_cast<double>(width) * static_cast<double>(height));
        const double wasted = static_cast<double>(ph) * static_cast<double>(pw) - effective;
        if (effective > best_effective || (effective == best_effective && wasted < best_wasted)) {
          best_effective = effective;
          best_wasted = wasted;
          best_h = ph;
          best_w = pw;
        }
      }
      const int64_t side = v.image_size / v.patch_size;
      int64_t cur_h = best_h / v.image_size * side;
      int64_t cur_w = best_w / v.image_size * side;
      if (cur_h <= 0 || cur_w <= 0) return v.fixed_tokens_per_image;  // pinpoint below one tile
      // unpad_image: drop the rows or columns that are padding for this aspect ratio. transformers
      // computes the kept size as int(round(x, 7)): truncation after rounding away float noise.
      const auto TruncRounded = [](double x) {
        return static_cast<int64_t>(std::floor(std::round(x * 1e7) / 1e7));
      };
      const double orig_aspect = static_cast<double>(width) / static_cast<double>(height);
      const double cur_aspect = static_cast<double>(cur_w) / static_cast<double>(cur_h);
      if (orig_aspect > cur_aspect) {
        const double scale = static_cast<double>(cur_w) / static_cast<double>(width);
        const auto new_h = TruncRounded(static_cast<double>(height) * scale);
        cur_h -= 2 * ((cur_h - new_h) / 2);
      } else {
        const double scale = static_cast<double>(cur_h) / static_cast<double>(height);
        const auto new_w = TruncRounded(static_cast<double>(width) * scale);
        cur_w -= 2 * ((cur_w - new_w) / 2);
      }
      return v.fixed_tokens_per_image + cur_h * (cur_w + (v.image_newline ? 1 : 0));
    }
  }
  return 0;
}

int64_t ImageTiles(const ModelSpec& spec, int64_t height, int64_t width) {
  if (!spec.vision) return 1;
  const VisionSpec& v = *spec.vision;
  if (height <= 0) height = v.image_size;
  if (width <= 0) width = v.image_size;
  if (v.token_rule == VisionSpec::TokenRule::kSlices) {
    const MiniCpmSlicing s = SliceImage(v, height, width);
    return 1 + s.cols * s.rows;
  }
  if (v.token_rule == VisionSpec::TokenRule::kHdCrops) {
    const auto [rows, cols] = HdCrops(v, height, width);
    return rows * cols + 1;
  }
  if (v.token_rule != VisionSpec::TokenRule::kTiles) return 1;
  // dynamic_preprocess / find_closest_aspect_ratio (InternVL's image processing): candidate grids
  // (i columns, j rows) with min_tiles <= i*j <= max_tiles, in order of tile count.
  // Every (i, j) once: the set Python builds from its n loop (O(max_tiles^2), not ^3).
  std::vector<std::pair<int64_t, int64_t>> grids;
  for (int64_t i = 1; i <= v.max_tiles; ++i) {
    for (int64_t j = 1; j <= v.max_tiles; ++j) {
      if (i * j <= v.max_tiles && i * j >= v.min_tiles) grids.emplace_back(i, j);
    }
  }
  std::stable_sort(grids.begin(), grids.end(), [](const auto& a, const auto& b) {
    return a.first * a.second < b.first * b.second;
  });
  const double aspect = static_cast<double>(width) / static_cast<double>(height);
  const double area = static_cast<double>(width) * static_cast<double>(height);
  const double tile_area = static_cast<double>(v.image_size) * static_cast<double>(v.image_size);
  double best_diff = std::numeric_limits<double>::infinity();
  std::pair<int64_t, int64_t> best{1, 1};
  for (const auto& [i, j] : grids) {
    const double diff = std::abs(aspect - static_cast<double>(i) / static_cast<double>(j));
    if (diff < best_diff) {
      best_diff = diff;
      best = {i, j};
    } else if (diff == best_diff && area > 0.5 * tile_area * static_cast<double>(i * j)) {
      best = {i, j};
    }
  }
  const int64_t tiles = best.first * best.second;
  return tiles + (v.thumbnail && tiles != 1 ? 1 : 0);
}

VisionPasses VisionTowerPasses(const ModelSpec& spec, int64_t images, int64_t height,
                               int64_t width) {
  if (!spec.vision || images <= 0) return {};
  const VisionSpec& v = *spec.vision;
  if (height <= 0) height = v.image_size;
  if (width <= 0) width = v.image_size;
  const int64_t side = v.image_size > 0 ? v.image_size / v.patch_size : 0;
  const int64_t cls = v.model_type == "clip_vision_model" ? 1 : 0;
  switch (v.token_rule) {
    case VisionSpec::TokenRule::kPatchesMerged:
      // One sequence per image of all its patches (before the merger).
      return {images, ImageTokens(spec, height, width) * v.spatial_merge * v.spatial_merge};
    case VisionSpec::TokenRule::kLlavaNext: {
      // The base image plus the tiles of the best pinpoint, each a full tower pass.
      const int64_t tiles_tokens = ImageTokens(spec, height, width) - v.fixed_tokens_per_image;
      const int64_t tiles =
          1 +
          std::max<int64_t>(1, internal::CeilDiv(tiles_tokens, std::max<int64_t>(1, side * side)));
      return {images * tiles, side * side + cls};
    }
    case VisionSpec::TokenRule::kSlices:
      // The resized image and its slices in one batch padded to the largest (vLLM's
      // get_vision_hidden_states, openvino.genai's llava_image_embed_make_with_bytes_slice).
      return {images * ImageTiles(spec, height, width), SliceImage(v, height, width).max_patches};
    case VisionSpec::TokenRule::kTiles:
    case VisionSpec::TokenRule::kHdCrops:
      return {images * ImageTiles(spec, height, width), side * side + cls};
    case VisionSpec::TokenRule::kPixtral: {
      // PixtralVisionModel runs every image's patches as one sequence (a block-diagonal mask).
      const auto [rows, cols] = PixtralGrid(v, height, width);
      return {1, images * rows * cols * v.spatial_merge * v.spatial_merge};
    }
    case VisionSpec::TokenRule::kFixed:
    case VisionSpec::TokenRule::kPerTile:
      return {images, side * side + cls};
    case VisionSpec::TokenRule::kCrossAttention:
      // MllamaVisionModel: every tile (max_num_tiles per image), its class token and patches
      // padded to a multiple of 8.
      return {images * v.max_tiles, internal::CeilDiv(side * side + 1, 8) * 8};
  }
  return {};
}

ModelSummary SummarizeModel(const ModelSpec& spec) {
  EstimateRequest req{.engine = Engine::kHfTransformers, .gpu_memory_bytes = 1};
  const internal::RankContext c(spec, req, spec.dtype);
  return ModelSummary{.params = spec.num_params(),
                      .weights_bytes = internal::StageWeights(c, 0, 0, spec.num_layers),
                      .kv_bytes_per_token = KvBytesPerToken(spec, req, 0)};
}

absl::StatusOr<MemoryEstimate> Estimate(const ModelSpec& spec, const EstimateRequest& request) {
  if (request.engine == Engine::kLlamaCpp) {
    RETURN_IF_ERROR(ValidateModelEngine(spec, request));
    // The GGUF llama.cpp's tools would write for this config (llama_cpp.h).
    ASSIGN_OR_RETURN(LlamaCppEstimate e, EstimateLlamaCppFromModel(spec, request));
    return std::move(e.memory);
  }
  if (request.engine == Engine::kVllm &&
      request.vllm.speculative_method == SpeculativeMethod::kMtp &&
      (spec.mtp == nullptr || request.vllm.draft != spec.mtp.get())) {
    // The model's own MTP layers are the draft.
    if (request.vllm.draft != nullptr) {
      return absl::InvalidArgumentError(
          "vllm.speculative_method=mtp drafts with the model's own MTP layers: give no draft "
          "model with it");
    }
    if (spec.mtp == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("vllm.speculative_method=mtp: model_type \"", spec.model_type,
                       "\" has no MTP layers (config.json num_nextn_predict_layers)"));
    }
    EstimateRequest with_mtp = request;
    with_mtp.vllm.draft = spec.mtp.get();
    return Estimate(spec, with_mtp);
  }
  RETURN_IF_ERROR(ValidateRequest(spec, request));
  RETURN_IF_ERROR(CheckMagnitude(spec, request));
  if (request.engine == Engine::kVllm && request.vllm.draft != nullptr) {
    RETURN_IF_ERROR(CheckMagnitude(*request.vllm.draft, request));
  }
  if (request.engine == Engine::kSglang && request.sglang.draft != nullptr) {
    RETURN_IF_ERROR(CheckMagnitude(*request.sglang.draft, request));
  }
  const internal::RankContext c(spec, request, internal::ResolveDType(spec, request));
  MemoryEstimate out;
  out.engine = request.engine;
  out.parallelism = request.parallelism;
  out.gpu_memory_bytes = request.gpu_memory_bytes;
  out.notes = spec.notes;
  out.unverified = spec.unverified();
  out.encoder_only = spec.encoder_only;
  switch (request.engine) {
    case Engine::kVllm:
      RETURN_IF_ERROR(EstimateVllm(c, out));
      if (!request.vllm.version.empty()) {
        out.notes.push_back(absl::StrCat(
            "semantics of ",
            VllmProfileFor(*ParseVllmVersion("vllm.version", request.vllm.version)).Describe()));
      }
      break;
    case Engine::kHfTransformers:
      RETURN_IF_ERROR(EstimateHf(c, out));
      break;
    case Engine::kTraining:
      RETURN_IF_ERROR(EstimateTraining(c, out));
      break;
    case Engine::kSglang:
      RETURN_IF_ERROR(EstimateSglang(c, out));
      break;
    case Engine::kOpenvino:
      RETURN_IF_ERROR(EstimateOpenvino(c, out));
      break;
    case Engine::kLlamaCpp:
      break;  // refused by ValidateRequest
  }
  // The band of each stage (uncertainty.h); what must fit is its high end.
  ConcludeEstimate(StageMargins(spec, request), out);
  return out;
}

void ConcludeEstimate(const Margins& margins, MemoryEstimate& out) {
  out.band_widened = margins.widened;
  out.max_total_bytes = 0;
  out.max_high_bytes = 0;
  for (StageMemory& s : out.stages) {
    const BandBytes band = StageMarginBytes(margins, out.engine, s);
    s.low_bytes = s.total_bytes - band.below;
    s.high_bytes = s.total_bytes + band.above;
    out.max_total_bytes = std::max(out.max_total_bytes, s.total_bytes);
    out.max_high_bytes = std::max(out.max_high_bytes, s.high_bytes);
  }
  out.headroom_bytes = out.gpu_memory_bytes - out.max_high_bytes;
  out.headroom_ratio =
      static_cast<double>(out.headroom_bytes) / static_cast<double>(out.gpu_memory_bytes);
  if (out.headroom_bytes < 0 && out.reason.empty()) {
    out.reason =
        absl::StrCat("needs up to ", BytesToGiB(out.max_high_bytes), " GiB on its fullest GPU (",
                     BytesToGiB(out.max_total_bytes), " GiB at the estimate), the GPU has ",
                     BytesToGiB(out.gpu_memory_bytes), " GiB");
  }
  out.fits = out.reason.empty();
  out.risk = out.fits ? RiskOfUse(out.max_high_bytes, out.gpu_memory_bytes) : Risk::kHigh;
}

}  // namespace fleetplan::estimator
