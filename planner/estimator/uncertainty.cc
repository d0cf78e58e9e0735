#include "planner/estimator/uncertainty.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "planner/estimator/vllm_version.h"

namespace fleetplan::estimator {
namespace {

// ---- Calibrated margins ----------------------------------------------------------------------
// Each is 1.5 x the largest error of its component over the calibration files
// (tests/data/calibration, `fleetplan validate --cases=F --output=json` per case), rounded up to a
// whole percent: the largest error seen in-sample, plus half again for cases not seen. The
// figures in brackets are those largest errors.

// HF inference (hf_transformers_h100.jsonl, 107 cases). The peak above the estimate: with 1 % of
// the weights (small prefills of deepseek-v2-lite's 64 experts under eager keep up to 0.5 % of the
// weights more than the estimate), 3.8 % of the transient part (gemma-2-2b/sdpa/prefill/b1-s8192);
// below it: 1.7 % (gemma-3-4b-it/eager/vision/n16).
constexpr double kHfWeights = 0.01;
constexpr double kHfTransientHigh = 0.06;
constexpr double kHfTransientLow = 0.03;

// Training (hf_transformers_train_h100.jsonl, 20 cases), with 1 % of the weights: above 1.6 % of
// the transient part (train-lora-r16-bf16-base/b1-s512), below 1.2 %
// (train-amp-bf16-adamw-ckpt/b4-s2048).
constexpr double kTrainWeights = 0.01;
constexpr double kTrainTransientHigh = 0.03;
constexpr double kTrainTransientLow = 0.02;

// vLLM >= 0.19 on H100 (vllm_startup.jsonl, 44 cases). The KV capacity is what the budget leaves
// after everything else, so its error is that of the non-KV bytes: at PP = 1 at most 4.2 % of them
// (gemma-3-4b-it: its weights 5 % above the formula; granite-3.1-2b: non-torch 0.46 GiB, not
// 0.25). With pipeline parallelism the files measure rank 0, while the capacity is the smallest
// stage's: cases 56 and 57 (PP 2, 4) hold 1.4-1.5 % fewer tokens than estimated, 11-18 % of a
// stage's non-KV bytes. CUDA graphs (the per-layer model of engine_constants.h): measured up to
// 1.95 x the estimate (gpt-oss-20b, 0.94 above) and down to 0.69 x (gemma-3-4b-it, 0.31 below).
constexpr double kVllmNonKv = 0.07;
constexpr double kVllmNonKvPipeline = 0.28;
constexpr double kVllmCudaGraphHigh = 1.42;
constexpr double kVllmCudaGraphLow = 0.47;

// ---- Widening outside the calibrated domain (judgements, stated) ------------------------------

// A model the estimator did not fully understand (ModelSpec::unverified): unread fields that
// change memory can move it by any amount (Llama-4 parsed as a dense decoder was 10x short), so
// half the stage either way, and the planner refuses it unless a deployment allows it.
constexpr double kUnverifiedTotal = 0.5;
// llama.cpp: weights are the GGUF's tensor bytes (buffer alignment and CUDA's row padding of
// quantized tensors are counted; 0.5% covers what else a backend pads); the compute buffer, the
// CUDA pool and the context have no measured case yet, so +50% / -30% of them. Widen less only
// with measured llama.cpp cases (its logs print each buffer: llama_cpp.h).
constexpr double kLlamaCppWeights = 0.005;
constexpr double kLlamaCppModelledHigh = 0.5;
constexpr double kLlamaCppModelledLow = 0.3;
// OpenVINO: the weights are the IRs' constants as NNCF stores them (2 % covers constants outside
// our tensor list: the exporter's pruning and folding); intermediate buffers and the KV growth
// copy are modelled from the reference study's liveness rule with no measured case in the
// calibration files: +100 % / -50 % of them. The reference table's rows check it
// (openvino_test.cc).
constexpr double kOpenvinoWeights = 0.02;
constexpr double kOpenvinoTransientHigh = 1.0;
constexpr double kOpenvinoTransientLow = 0.5;
// A transient path the files do not measure: the transient part may be twice what we model.
constexpr double kUnmeasuredTransient = 1.0;
// SGLang (no measured case): what follows the KV pool may be half the model.
constexpr double kSglangTransientLow = 0.5;
// vLLM on a GPU the files do not hold: the same profiling, but non-torch memory (NCCL without
// NVLink, custom all-reduce off on PCIe), kernel workspaces and CUDA-graph pools differ with the
// GPU and its interconnect: a quarter of the non-KV bytes, and graphs up to three times ours.
constexpr double kVllmOtherGpuNonKv = 0.25;
constexpr double kVllmOtherGpuCudaGraph = 2.0;
// Another vLLM version than the calibrated 0.19: its profiling is modelled from its source
// (vllm_version.h), but the profile run's peak, the sampler and the non-torch memory moved between
// versions in ways no file here measures: a third of the non-KV bytes.
constexpr double kVllmOtherVersionNonKv = 0.33;
// Expert parallelism (all-to-all buffers) and 4-bit weight kernels (Marlin repacking, workspaces)
// are not in the files either.
constexpr double kVllmUnmeasuredPathNonKv = 0.25;

// The HF calibration's largest tokens per forward (batch 16 x 8192) and eager prompt (2048).
constexpr int64_t kHfCalibratedTokens = 16 * 8192;
constexpr int64_t kHfCalibratedEagerPrompt = 2048;
// The vLLM calibration's GPU: H100 80GB HBM3 (cudaMemGetInfo total 85,017,493,504 B); a GPU
// within 2 % of it is taken for the same.
constexpr int64_t kVllmCalibratedGpuBytes = 85017493504;

bool FineGrainedMoe(const ModelSpec& spec) {
  for (const LayerKind& k : spec.layer_kinds) {
    // The calibrated MoE under sdpa is Mixtral: 8 experts, top-2.
    if (k.mlp.num_experts > 8 || k.mlp.experts_per_token > 2) return true;
  }
  return false;
}

bool AnyMla(const ModelSpec& spec) {
  for (const LayerKind& k : spec.layer_kinds) {
    if (k.attention.mla) return true;
  }
  return false;
}

bool EveryLayerSliding(const ModelSpec& spec) {
  if (spec.layer_kind_of.empty()) return false;
  for (int k : spec.layer_kind_of) {
    if (spec.layer_kinds[static_cast<size_t>(k)].attention.sliding_window <= 0) return false;
  }
  return true;
}

void Widen(Margins& m, double* field, double to, std::string why) {
  *field = std::max(*field, to);
  m.widened.push_back(std::move(why));
}

void HfDomain(const ModelSpec& spec, const EstimateRequest& r, Margins& m) {
  const HfConfig& h = r.hf;
  const bool sdpa = !h.eager_attention;
  if (spec.is_moe() && sdpa && FineGrainedMoe(spec)) {
    Widen(m, &m.transient_high, kUnmeasuredTransient,
          "fine-grained MoE under sdpa (routing, token permutation and grouped-GEMM temporaries) "
          "is not in the calibration files (only 8 experts, top-2)");
  }
  if (AnyMla(spec) && sdpa) {
    Widen(m, &m.transient_high, kUnmeasuredTransient,
          "MLA under sdpa (decompressed K/V at prefill) is not in the calibration files");
  }
  if (EveryLayerSliding(spec)) {
    Widen(m, &m.transient_high, kUnmeasuredTransient,
          "a sliding window on every layer is not in the calibration files (they hold it on "
          "alternate layers)");
  }
  if (spec.vision && (h.images > 0 || h.vision_tower_only) &&
      spec.vision->token_rule == VisionSpec::TokenRule::kPatchesMerged) {
    Widen(m, &m.transient_high, kUnmeasuredTransient,
          absl::StrCat("the ", spec.vision->model_type,
                       " vision tower (window attention, variable resolution, patch merger) is "
                       "not in the calibration files"));
    m.transient_low = std::max(m.transient_low, 0.65);
  }
  if (spec.vision && (h.images > 0 || h.vision_tower_only) &&
      (spec.vision->token_rule == VisionSpec::TokenRule::kTiles ||
       spec.vision->token_rule == VisionSpec::TokenRule::kSlices ||
       spec.vision->token_rule == VisionSpec::TokenRule::kHdCrops ||
       spec.vision->token_rule == VisionSpec::TokenRule::kPixtral ||
       spec.vision->token_rule == VisionSpec::TokenRule::kCrossAttention)) {
    Widen(m, &m.transient_high, kUnmeasuredTransient,
          absl::StrCat("the ", spec.vision->model_type,
                       " vision tower (tiles, slices, crops, native resolution or cross-attention) "
                       "is not in the calibration files"));
  }
  if (spec.encoder_only) {
    Widen(m, &m.transient_high, kUnmeasuredTransient,
          "bidirectional encoders (BERT family) are not in the calibration files");
  }
  if (spec.has_linear_attention()) {
    Widen(m, &m.transient_high, kUnmeasuredTransient,
          "linear-attention layers (the gated delta rule's chunked prefill and states) are not in "
          "the calibration files");
  }
  if (h.eager_attention && h.images > 1 && spec.vision &&
      spec.vision->token_rule != VisionSpec::TokenRule::kFixed) {
    m.transient_low = std::max(m.transient_low, 0.65);
  }
  const int64_t tokens = h.batch * (h.prompt_tokens + (h.generate ? h.new_tokens : 0));
  if (!h.vision_tower_only && tokens > kHfCalibratedTokens) {
    Widen(m, &m.transient_high, std::max(m.transient_high, 0.5),
          absl::StrCat(tokens, " tokens per forward is beyond the calibration files' ",
                       kHfCalibratedTokens));
  }
  if (!h.vision_tower_only && h.eager_attention && h.prompt_tokens > kHfCalibratedEagerPrompt) {
    Widen(
        m, &m.transient_high, std::max(m.transient_high, 0.5),
        absl::StrCat("eager attention over ", h.prompt_tokens,
                     " prompt tokens is beyond the calibration files' ", kHfCalibratedEagerPrompt));
  }
}

void VllmDomain(const ModelSpec& spec, const EstimateRequest& r, Margins& m) {
  if (absl::StatusOr<VllmVersion> version = ParseVllmVersion("vllm.version", r.vllm.version);
      version.ok() && !VllmProfileFor(*version).calibrated) {
    Widen(m, &m.vllm_non_kv, kVllmOtherVersionNonKv,
          absl::StrCat("vLLM ", version->ToString(),
                       " is modelled from its source (vllm_version.h); the calibration files "
                       "measure 0.19 only"));
    m.cuda_graph_high = std::max(m.cuda_graph_high, kVllmOtherGpuCudaGraph);
  }
  const double gpu = static_cast<double>(r.gpu_memory_bytes);
  const double calibrated = static_cast<double>(kVllmCalibratedGpuBytes);
  if (std::fabs(gpu - calibrated) > 0.02 * calibrated) {
    Widen(m, &m.vllm_non_kv, kVllmOtherGpuNonKv,
          "vLLM's non-torch, CUDA-graph and profile memory were calibrated on H100 80GB only");
    m.cuda_graph_high = std::max(m.cuda_graph_high, kVllmOtherGpuCudaGraph);
  }
  if (r.parallelism.ep > 1) {
    Widen(m, &m.vllm_non_kv, kVllmUnmeasuredPathNonKv,
          "expert parallelism (all-to-all buffers) is not in the calibration files");
  }
  if (spec.encoder_only) {
    // The pooling runner's profile run and graphs are modelled, not measured; with no KV pool to
    // give memory up, the non-KV margin is the whole band.
    Widen(m, &m.vllm_non_kv, kVllmUnmeasuredPathNonKv,
          "encoder-only models on vLLM's pooling runner are not in the calibration files");
  }
  if (spec.has_linear_attention()) {
    // The state pages are exact from vLLM's arithmetic; the gated-delta-net prefill temporaries
    // and the FULL_AND_PIECEWISE graphs hybrid models capture are modelled, not measured.
    Widen(m, &m.vllm_non_kv, kVllmUnmeasuredPathNonKv,
          "linear-attention layers on vLLM (the gated delta rule's prefill, the hybrid models' "
          "full CUDA graphs) are not in the calibration files");
    m.cuda_graph_high = std::max(m.cuda_graph_high, kVllmOtherGpuCudaGraph);
  }
  if (spec.quant.method == QuantSpec::Method::kInt4 ||
      spec.quant.method == QuantSpec::Method::kNf4) {
    Widen(m, &m.vllm_non_kv, kVllmUnmeasuredPathNonKv,
          "4-bit weight kernels (Marlin repacking and workspaces) are not in the calibration "
          "files");
  }
}

void TrainingDomain(const ModelSpec& spec, const EstimateRequest& r, Margins& m) {
  const TrainingConfig& t = r.training;
  if (t.zero_stage > 0 || r.parallelism.dp > 1 || r.parallelism.world() > 1) {
    Widen(m, &m.transient_high, 0.25,
          "sharded or parallel training (ZeRO buckets, NCCL) is not in the calibration files");
  }
  if (spec.is_moe() || spec.vision || spec.has_linear_attention()) {
    Widen(m, &m.transient_high, kUnmeasuredTransient,
          "training MoE or vision models is not in the calibration files (dense text only)");
  }
}

}  // namespace

Margins StageMargins(const ModelSpec& spec, const EstimateRequest& request) {
  Margins m;
  switch (request.engine) {
    case Engine::kVllm:
      m.vllm_non_kv = request.parallelism.pp > 1 ? kVllmNonKvPipeline : kVllmNonKv;
      m.cuda_graph_high = kVllmCudaGraphHigh;
      m.cuda_graph_low = kVllmCudaGraphLow;
      VllmDomain(spec, request, m);
      if (request.vllm.draft != nullptr) {
        m.vllm_non_kv = std::max(m.vllm_non_kv, kVllmOtherGpuNonKv);
        m.widened.push_back(
            "speculative decoding with a draft model: the drafter's profile run and graphs are not "
            "in the calibration files");
      }
      break;
    case Engine::kHfTransformers:
      m.weights = kHfWeights;
      m.transient_high = kHfTransientHigh;
      m.transient_low = kHfTransientLow;
      HfDomain(spec, request, m);
      break;
    case Engine::kTraining:
      m.weights = kTrainWeights;
      m.transient_high = kTrainTransientHigh;
      m.transient_low = kTrainTransientLow;
      TrainingDomain(spec, request, m);
      break;
    case Engine::kLlamaCpp:
      return LlamaCppMargins();
    case Engine::kOpenvino:
      m.weights = kOpenvinoWeights;
      m.transient_high = kOpenvinoTransientHigh;
      m.transient_low = kOpenvinoTransientLow;
      m.widened.push_back(
          "no measured OpenVINO case in the calibration files: intermediate buffers follow the "
          "reference study's liveness rule (+100%/-50%); the runtime's own memory is not counted");
      break;
    case Engine::kSglang:
      // The pool is free memory x fraction - weights: its error is that of the weights and the
      // context (vLLM's calibrated non-KV margin covers both); nothing past it is measured.
      m.vllm_non_kv = kVllmNonKv;
      m.transient_high = kUnmeasuredTransient;
      m.transient_low = kSglangTransientLow;
      m.widened.push_back(
          "no measured SGLang case in the calibration files: its activations and CUDA graphs are "
          "vLLM's layer model at SGLang's sizes, not measurements (+100%/-50%)");
      break;
  }
  if (spec.unverified()) {
    m.total = kUnverifiedTotal;
    m.widened.push_back("the config has fields the estimator did not read (unverified)");
  }
  return m;
}

Margins LlamaCppMargins() {
  Margins m;
  m.weights = kLlamaCppWeights;
  m.transient_high = kLlamaCppModelledHigh;
  m.transient_low = kLlamaCppModelledLow;
  m.widened.push_back(
      "no measured llama.cpp case in the calibration files: its compute buffer, CUDA pool and "
      "context are modelled from its source (+50%/-30%), not measured");
  return m;
}

namespace {

int64_t Part(double fraction, int64_t bytes) {
  return static_cast<int64_t>(
      std::ceil(fraction * static_cast<double>(std::max<int64_t>(bytes, 0))));
}

}  // namespace

int64_t VllmNonKvMarginBytes(const Margins& m, const StageMemory& s) {
  const int64_t non_kv = s.weights_bytes + s.activation_peak_bytes + s.engine_overhead_bytes;
  return Part(m.vllm_non_kv, non_kv) + Part(m.total, non_kv);
}

BandBytes StageMarginBytes(const Margins& m, Engine engine, const StageMemory& s) {
  BandBytes b;
  if (engine == Engine::kVllm) {
    // The pool takes what the budget leaves, so the total moves only with the CUDA graphs (kept
    // outside the budget) and, for a model not understood, with everything.
    b.above = Part(m.cuda_graph_high, s.cuda_graph_bytes) + Part(m.total, s.total_bytes);
    b.below = Part(m.cuda_graph_low, s.cuda_graph_bytes) + Part(m.total, s.total_bytes);
    if (s.kv_block_bytes == 0) {
      // No KV pool (an encoder-only model) to absorb an error outside it: it moves the total.
      const int64_t non_kv = s.weights_bytes + s.activation_peak_bytes + s.engine_overhead_bytes;
      b.above += Part(m.vllm_non_kv, non_kv);
      b.below += Part(m.vllm_non_kv, non_kv);
    }
  } else if (engine == Engine::kSglang) {
    // The pool is fixed by the fraction; activations and graphs after it are modelled, the
    // request table is counted and the non-torch bytes are vLLM's measured ones (its margin).
    const int64_t modelled = s.activation_peak_bytes + s.cuda_graph_bytes;
    const int64_t counted = Part(m.vllm_non_kv, s.engine_overhead_bytes);
    b.above = Part(m.transient_high, modelled) + counted + Part(m.total, s.total_bytes);
    b.below = Part(m.transient_low, modelled) + counted + Part(m.total, s.total_bytes);
  } else if (engine == Engine::kOpenvino) {
    const int64_t modelled = s.activation_peak_bytes + s.fragmentation_bytes;
    b.above = Part(m.weights, s.weights_bytes) + Part(m.transient_high, modelled) +
              Part(m.total, s.total_bytes);
    b.below = Part(m.weights, s.weights_bytes) + Part(m.transient_low, modelled) +
              Part(m.total, s.total_bytes);
  } else if (engine == Engine::kLlamaCpp) {
    // The file gives the weights (tensor bytes) and the KV cache (cells x row bytes) exactly; the
    // rest is modelled.
    const int64_t modelled =
        s.activation_peak_bytes + s.engine_overhead_bytes + s.cuda_context_bytes;
    b.above = Part(m.weights, s.weights_bytes) + Part(m.transient_high, modelled) +
              Part(m.total, s.total_bytes);
    b.below = Part(m.weights, s.weights_bytes) + Part(m.transient_low, modelled) +
              Part(m.total, s.total_bytes);
  } else {
    // HF and training: the transient part is what the estimator models; weights and optimizer
    // state are counted.
    const int64_t transient = s.activation_peak_bytes + s.engine_overhead_bytes + s.gradient_bytes;
    b.above = Part(m.weights, s.weights_bytes) + Part(m.transient_high, transient) +
              Part(m.total, s.total_bytes);
    b.below = Part(m.weights, s.weights_bytes) + Part(m.transient_low, transient) +
              Part(m.total, s.total_bytes);
  }
  b.below = std::min(b.below, s.total_bytes);
  return b;
}

}  // namespace fleetplan::estimator
