// OpenVINO GenAI's memory (openvino.h states the rules and their sources).

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/openvino.h"
#include "planner/estimator/rank_layout.h"
#include "planner/estimator/vllm.h"

namespace fleetplan::estimator {

int64_t OvWeightBytes(OvWeightFormat format, int64_t group_size, int64_t out, int64_t in,
                      int64_t copies) {
  const int64_t elements = out * in * copies;
  const int64_t rows = out * copies;
  switch (format) {
    case OvWeightFormat::kFp32:
      return elements * 4;
    case OvWeightFormat::kFp16:
      return elements * 2;
    case OvWeightFormat::kInt8Asym:
      return elements + rows * (2 + 1);  // u8 values; fp16 scale and u8 zero point per row
    case OvWeightFormat::kInt8Sym:
      return elements + rows * 2;
    case OvWeightFormat::kInt4Asym:
    case OvWeightFormat::kInt4Sym: {
      const int64_t g = group_size > 0 ? std::min(group_size, in) : in;
      const int64_t groups = rows * internal::CeilDiv(in, g);
      const int64_t values = internal::CeilDiv(elements, 2);
      // fp16 scale per group; asymmetric adds a u4 zero point per group.
      return values + groups * 2 +
             (format == OvWeightFormat::kInt4Asym ? internal::CeilDiv(groups, 2) : 0);
    }
  }
  return elements * 2;
}

OvKvPrecision OvResolvedKvPrecision(const OpenvinoConfig& o) {
  if (o.kv_precision != OvKvPrecision::kDefault) return o.kv_precision;
  // The CPU plugin's KV_CACHE_PRECISION default on x86 is u8 (src/plugins/intel_cpu/src/config.h);
  // the GPU plugin's is its inference precision, f16.
  return o.device == OvDevice::kCpu ? OvKvPrecision::kU8 : OvKvPrecision::kF16;
}

int64_t OvKvRowBytes(OvKvPrecision p, int64_t head_size, int64_t group_size) {
  const int64_t g = group_size > 0 ? std::min(group_size, head_size) : head_size;
  const int64_t groups = internal::CeilDiv(head_size, g);
  switch (p) {
    case OvKvPrecision::kU8:
      return head_size + groups * 8;  // u8 values, fp32 scale + zero point per group
    case OvKvPrecision::kU4:
      return internal::CeilDiv(head_size, 2) + groups * 8;
    case OvKvPrecision::kF32:
      return head_size * 4;
    case OvKvPrecision::kDefault:
    case OvKvPrecision::kF16:
    case OvKvPrecision::kBf16:
      return head_size * 2;
  }
  return head_size * 2;
}

int64_t OvBlockTokens(OvDevice device) { return device == OvDevice::kCpu ? 32 : 16; }

namespace {

struct Formats {
  OvWeightFormat linear;     // the language model's matrices (int4 at `ratio` of them)
  OvWeightFormat backup;     // the rest of the language model's matrices when ratio < 1
  OvWeightFormat head;       // lm_head
  OvWeightFormat embedding;  // the token embedding
  OvWeightFormat vision;     // vision tower and projector matrices
  OvWeightFormat plain;      // norms, biases, convolutions, position tables
  double ratio = 1;
  int64_t group = 128;
};

bool Compressed(OvWeightFormat f) {
  return f != OvWeightFormat::kFp16 && f != OvWeightFormat::kFp32;
}
bool Int4(OvWeightFormat f) {
  return f == OvWeightFormat::kInt4Asym || f == OvWeightFormat::kInt4Sym;
}

Formats ResolveFormats(const OpenvinoConfig& o, OvWeightFormat lm) {
  Formats f{.linear = lm,
            .backup = lm,
            .head = lm,
            .embedding = lm,
            .vision = lm,
            .plain = lm == OvWeightFormat::kFp32 ? OvWeightFormat::kFp32 : OvWeightFormat::kFp16,
            .ratio = Int4(lm) ? o.ratio : 1.0,
            .group = o.group_size};
  if (Int4(lm)) {
    // NNCF: the layers not in int4 (1 - ratio) and, without all_layers, the embedding and the
    // last layer take the backup precision, int8_asym (nncf weight_compression algorithm.py).
    f.backup = OvWeightFormat::kInt8Asym;
    if (!o.all_layers) f.head = f.embedding = OvWeightFormat::kInt8Asym;
  }
  // optimum-intel's VLM export compresses the non-language models to int8_asym.
  f.vision = Compressed(lm) ? OvWeightFormat::kInt8Asym : lm;
  if (Compressed(lm) && !Int4(lm)) f.embedding = f.head = lm;
  return f;
}

int64_t MatrixBytes(const Formats& f, OvWeightFormat format, const Tensor& t) {
  if (format == f.linear && f.ratio < 1) {
    const double int4 = static_cast<double>(OvWeightBytes(format, f.group, t.out, t.in, t.copies));
    const double rest =
        static_cast<double>(OvWeightBytes(f.backup, f.group, t.out, t.in, t.copies));
    return static_cast<int64_t>(std::llround(f.ratio * int4 + (1 - f.ratio) * rest));
  }
  return OvWeightBytes(format, f.group, t.out, t.in, t.copies);
}

int64_t PlainBytes(const Formats& f, const Tensor& t) {
  return OvWeightBytes(f.plain, f.group, t.out, t.in, t.copies);
}

// A decoder tensor: linear matrices in the language model's format, the rest plain.
int64_t LanguageTensorBytes(const Formats& f, const Tensor& t) {
  switch (t.role) {
    case TensorRole::kLinear:
    case TensorRole::kExpertLinear:
    case TensorRole::kRouter:
      return MatrixBytes(f, f.linear, t);
    case TensorRole::kLmHead:
      return MatrixBytes(f, f.head, t);
    case TensorRole::kEmbedding:
      return MatrixBytes(f, f.embedding, t);
    default:
      return PlainBytes(f, t);
  }
}

bool VisionMatrix(const Tensor& t) {
  if (t.in < 2) return false;
  const std::string name = t.name;
  // Convolutions and position/class tables are not compressed.
  return name.find("patch_embed") == std::string::npos &&
         name.find("position") == std::string::npos && name.find("class") == std::string::npos;
}

int64_t VisionBytes(const Formats& f, const VisionSpec& v) {
  int64_t bytes = 0;
  const int64_t kept = v.num_layers - v.unused_tail_layers;
  for (const std::vector<Tensor>* part : {&v.tower, &v.projector}) {
    for (Tensor t : *part) {
      // Layers past the feature layer the model reads are not in the exported graph.
      if (part == &v.tower && t.copies == v.num_layers && v.unused_tail_layers > 0) {
        t.copies = kept;
      }
      bytes += VisionMatrix(t) ? MatrixBytes(f, f.vision, t) : PlainBytes(f, t);
    }
  }
  return bytes;
}

int64_t ActivationBytes(const OpenvinoConfig& o) {
  switch (o.inference_precision) {
    case OvInferencePrecision::kF32:
      return 4;
    case OvInferencePrecision::kBf16:
    case OvInferencePrecision::kF16:
      return 2;
    case OvInferencePrecision::kDefault:
      break;
  }
  if (o.device == OvDevice::kGpu) return 2;
  return o.amx ? 2 : 4;
}

// The widest set of tensors live at one op of one decoder block, in elements per token: attention
// (the residual, q, k, v and RoPE's new q and k) or the MLP (the residual, the norm's output, gate
// and up). With `fused_mlp` a gated MLP is the CPU plugin's LLMMLP node, which runs gate, up, the
// activation and down in blocks and writes only its [tokens, hidden] output.
int64_t DecoderLivePerToken(const ModelSpec& spec, bool fused_mlp) {
  int64_t widest = 0;
  for (const LayerKind& k : spec.layer_kinds) {
    const AttentionSpec& a = k.attention;
    const int64_t q = a.num_heads * a.head_dim;
    const int64_t kv = a.num_kv_heads * a.head_dim;
    const int64_t v = a.num_kv_heads * a.v_head_dim;
    const int64_t attention = spec.hidden_size + 2 * q + 2 * kv + v;
    int64_t inter = k.mlp.intermediate_size;
    if (k.mlp.num_experts > 0) {
      inter = std::max(inter, k.mlp.experts_per_token * k.mlp.expert_intermediate_size +
                                  k.mlp.shared_intermediate_size);
    }
    // LLMMLP::isSupportedOperation: sizes in multiples of the AMX register blocks (256).
    const bool fused = fused_mlp && k.mlp.gated && k.mlp.num_experts == 0 && inter % 256 == 0 &&
                       spec.hidden_size % 256 == 0;
    const int64_t mlp =
        fused ? 3 * spec.hidden_size : 2 * spec.hidden_size + (k.mlp.gated ? 2 : 1) * inter;
    widest = std::max({widest, attention, mlp});
  }
  return widest;
}

int64_t VisionTemp(const ModelSpec& spec, const OpenvinoConfig& o, int64_t e) {
  const VisionSpec& v = *spec.vision;
  const VisionPasses seq = VisionTowerPasses(spec, o.images, o.image_height, o.image_width);
  if (seq.batch <= 0) return 0;
  const int64_t d = v.hidden_size;
  const bool rope = v.model_type == "qwen2_vl" || v.model_type == "qwen2_5_vl";
  // Residual + q, k, v + attention output (+ rotated q and k); the MLP: residual, norm, gate/up.
  const int64_t attention = d + 3 * d + d + (rope ? 2 * d : 0);
  const bool gated = v.model_type == "qwen2_5_vl" || v.model_type == "pixtral";
  const int64_t mlp = 2 * d + (gated ? 2 : 1) * v.intermediate_size;
  const int64_t tokens = seq.batch * seq.tokens;
  int64_t bytes = e * tokens * std::max(attention, mlp);
  // Qwen-VL's exported vision model takes its block-diagonal attention masks as [1, N, N] inputs
  // (Qwen2.5-VL: the windowed one and the full one).
  if (rope) bytes += (v.model_type == "qwen2_5_vl" ? 2 : 1) * tokens * tokens * e;
  // pixel_values (fp32): the tower's patches of 3 x patch x patch (Qwen: two frames).
  bytes += tokens * 3 * v.patch_size * v.patch_size * (rope ? 2 : 1) * 4;
  // MiniCPM-V's resampler is its own compiled model, run per slice: the tower's output projected
  // to the language model's width (kv_proj), its norm, K and V, and the 2-D position input.
  if (v.token_rule == VisionSpec::TokenRule::kSlices)
    bytes += 5 * seq.tokens * spec.hidden_size * e;
  // The image features handed to the language model (fp32).
  bytes += o.images * ImageTokens(spec, o.image_height, o.image_width) * spec.hidden_size * 4;
  return bytes;
}

}  // namespace

absl::StatusOr<OvWeights> OvResolvedWeights(const ModelSpec& spec, const OpenvinoConfig& o) {
  if (o.weight_format_set || !spec.quant.quantized())
    return OvWeights{o.weight_format, o.group_size};
  switch (spec.quant.method) {
    case QuantSpec::Method::kInt4:
      return OvWeights{
          spec.quant.has_zero_points ? OvWeightFormat::kInt4Asym : OvWeightFormat::kInt4Sym,
          spec.quant.group_size != 0 ? spec.quant.group_size : o.group_size};
    case QuantSpec::Method::kInt8:
      return OvWeights{OvWeightFormat::kInt8Sym, o.group_size};
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "openvino: a ", spec.quant.name,
          " checkpoint's weights are not what optimum-cli exports; give openvino.weight_format"));
  }
}

namespace {

// The language model's prefill tokens for a request.
int64_t OvLanguageTokens(const ModelSpec& spec, const OpenvinoConfig& o) {
  if (o.llm_tokens > 0) return o.llm_tokens;
  return o.prompt_tokens + o.images * ImageTokens(spec, o.image_height, o.image_width);
}

}  // namespace

absl::Status EstimateOpenvino(const internal::RankContext& c, MemoryEstimate& out) {
  const ModelSpec& spec = c.spec;
  const OpenvinoConfig& o = c.req.openvino;
  ASSIGN_OR_RETURN(const OvWeights weights, OvResolvedWeights(spec, o));
  const OvWeightFormat lm = weights.format;
  OpenvinoConfig eff = o;
  eff.group_size = weights.group_size;
  const Formats f = ResolveFormats(eff, lm);
  const bool vlm = spec.vision.has_value();
  const int64_t e = ActivationBytes(o);

  // Weights of each model of the pipeline.
  int64_t lm_weights = 0;
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    const LayerKind& k =
        spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of[static_cast<size_t>(l)])];
    for (const Tensor& t : k.tensors) lm_weights += LanguageTensorBytes(f, t);
  }
  for (const Tensor& t : spec.last_stage) lm_weights += LanguageTensorBytes(f, t);
  int64_t embedding_weights = 0;
  for (const Tensor& t : spec.first_stage) embedding_weights += LanguageTensorBytes(f, t);
  if (spec.tie_word_embeddings && vlm) {
    // The language model takes inputs_embeds: its tied lm_head is its own constant.
    for (const Tensor& t : spec.first_stage) {
      if (t.role == TensorRole::kEmbedding) lm_weights += MatrixBytes(f, f.head, t);
    }
  }

  // Intermediate buffers of each compiled model.
  const int64_t S = OvLanguageTokens(spec, o);
  const int64_t seqs = std::max<int64_t>(1, c.req.concurrency);
  const int64_t chunk = o.continuous_batching ? std::min(S * seqs, o.max_num_batched_tokens) : S;
  // The CPU plugin fuses gated MLPs (MLPFusion, QKVProjFusion) only on AMX CPUs running 16-bit
  // activations (intel_cpu transformation_pipeline.cpp), and not over int4 weights.
  const bool fused_mlp = o.device == OvDevice::kCpu && o.amx && e == 2 && !Int4(lm);
  int64_t lm_temp = e * chunk * DecoderLivePerToken(spec, fused_mlp);
  lm_temp += (o.continuous_batching ? std::min(seqs, o.max_num_seqs) : 1) * spec.vocab_size * 4;
  // The embeddings' output [tokens, hidden] (fp32) is the language model's input.
  const int64_t embedding_temp = chunk * spec.hidden_size * 4;
  const int64_t vision_temp = vlm ? VisionTemp(spec, o, e) : 0;
  const int64_t vision_weights = vlm ? VisionBytes(f, *spec.vision) : 0;

  // KV cache.
  const OvKvPrecision kv = OvResolvedKvPrecision(o);
  int64_t per_token = 0;
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    const AttentionSpec& a = spec.attention(static_cast<int>(l));
    per_token += a.num_kv_heads * (OvKvRowBytes(kv, a.head_dim, o.kv_group_size) +
                                   OvKvRowBytes(kv, a.v_head_dim, o.kv_group_size));
  }
  const int64_t context = c.req.context_tokens > 0 ? c.req.context_tokens : S + o.new_tokens;
  StageMemory s = internal::NewStage(spec, 1, 0);
  s.cuda_context_bytes = 0;
  s.kv_cache_bytes_per_token = per_token;
  s.workload_kv_bytes = seqs * context * per_token;
  if (o.continuous_batching) {
    const int64_t block = OvBlockTokens(o.device);
    s.kv_block_bytes = per_token * block;
    s.kv_blocks_per_sequence = internal::CeilDiv(context, block);
    const int64_t needed = seqs * s.kv_blocks_per_sequence;
    if (o.cache_size_gb > 0) {
      s.num_gpu_blocks =
          static_cast<int64_t>(o.cache_size_gb * static_cast<double>(kGiB)) / s.kv_block_bytes;
    } else if (o.num_kv_blocks > 0) {
      s.num_gpu_blocks = o.num_kv_blocks;
    } else {
      s.num_gpu_blocks = needed;
      // Growing replaces each layer's K and V with larger copies one layer at a time
      // (KVCacheManager::allocate_cache_if_needed): one layer's old cache lives beside the new.
      s.fragmentation_bytes = internal::CeilDiv(needed * s.kv_block_bytes, spec.num_layers);
      out.notes.push_back(
          "openvino: neither cache_size nor num_kv_blocks is set, so the KV cache grows on demand "
          "with no cap: this estimate holds for the stated workload only, and a longer or wider "
          "one grows the cache until the device's memory runs out");
    }
    s.kv_cache_bytes = s.num_gpu_blocks * s.kv_block_bytes;
    s.kv_cache_tokens = s.num_gpu_blocks * block;
    s.available_kv_cache_bytes = s.kv_cache_bytes;
    s.kv_cache_tokens_low = s.kv_cache_tokens;
    out.kv_cache_tokens = s.kv_cache_tokens;
    out.kv_cache_tokens_low = s.kv_cache_tokens;
    out.max_concurrency = s.num_gpu_blocks / std::max<int64_t>(1, s.kv_blocks_per_sequence);
    out.max_concurrency_low = out.max_concurrency;
    out.max_model_len = spec.max_position_embeddings;
    if (needed > s.num_gpu_blocks) {
      out.reason =
          absl::StrCat("the workload needs ", needed, " KV blocks of ", block, " tokens (", seqs,
                       " sequences of ", context, " tokens); the cache holds ", s.num_gpu_blocks);
    }
  } else {
    s.kv_cache_bytes = s.workload_kv_bytes;
    s.kv_cache_tokens = seqs * context;
  }
  s.weights_bytes = lm_weights + embedding_weights + vision_weights;
  s.activation_peak_bytes = lm_temp + embedding_temp + vision_temp;
  s.total_bytes =
      s.weights_bytes + s.kv_cache_bytes + s.activation_peak_bytes + s.fragmentation_bytes;
  s.torch_peak_allocated_bytes = 0;
  out.stages.push_back(s);

  if (vlm) {
    out.pipeline_parts.push_back({"vision_embeddings", vision_weights, vision_temp});
    out.pipeline_parts.push_back({"text_embeddings", embedding_weights, embedding_temp});
    out.pipeline_parts.push_back({"language_model", lm_weights, lm_temp});
  } else {
    out.pipeline_parts.push_back(
        {"language_model", lm_weights + embedding_weights, lm_temp + embedding_temp});
  }
  out.notes.push_back(absl::StrCat(
      "openvino on ", OvDeviceNames().Name(o.device), ": weights ", OvWeightFormatNames().Name(lm),
      Int4(lm) ? absl::StrCat(" (group ", eff.group_size, ", ratio ", f.ratio, ")") : "", ", KV ",
      OvKvPrecisionNames().Name(kv), ", activations ", e == 4 ? "f32" : "16-bit", "; ",
      o.continuous_batching ? "continuous batching (paged KV blocks)"
                            : "stateful pipeline (KV in the model state)"));
  out.notes.push_back(
      "openvino: the runtime's own libraries, the tokenizer models and the process around them "
      "are not counted");
  if (o.device == OvDevice::kCpu) {
    out.notes.push_back(
        "openvino on cpu: these bytes are the host's memory (gpu_memory_bytes is "
        "the memory the host gives the pipeline)");
  }
  return absl::OkStatus();
}

absl::Status ApplyOpenvinoConfigJson(absl::string_view text, OpenvinoConfig& out) {
  using nlohmann::json;
  OpenvinoConfig config = out;  // written back only when the whole file is valid
  const json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError("openvino_config.json is not a JSON object");
  }
  auto field = [](const json& obj, const char* key) -> const json* {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  };
  std::string dtype = "fp16";
  if (const json* d = field(root, "dtype"); d != nullptr) {
    if (!d->is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("openvino_config.json dtype=", d->dump(), " must be a string"));
    }
    dtype = d->get<std::string>();
  }
  const json* q = field(root, "quantization_config");
  if (q != nullptr && !q->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("openvino_config.json quantization_config=",
                                                   q->dump().substr(0, 80), " must be an object"));
  }
  int64_t bits = dtype == "int4" ? 4 : dtype == "int8" ? 8 : 0;
  bool sym = false;
  if (q != nullptr) {
    if (const json* b = field(*q, "bits"); b != nullptr) {
      if (!b->is_number_integer() || (b->get<int64_t>() != 4 && b->get<int64_t>() != 8)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "openvino_config.json quantization_config.bits=", b->dump(), " must be 4 or 8"));
      }
      bits = b->get<int64_t>();
    }
    if (const json* v = field(*q, "sym"); v != nullptr) {
      if (!v->is_boolean()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "openvino_config.json quantization_config.sym=", v->dump(), " must be true or false"));
      }
      sym = v->get<bool>();
    }
    if (const json* g = field(*q, "group_size"); g != nullptr) {
      if (!g->is_number_integer() || (g->get<int64_t>() < 1 && g->get<int64_t>() != -1) ||
          g->get<int64_t>() > (1 << 20)) {
        return absl::InvalidArgumentError(
            absl::StrCat("openvino_config.json quantization_config.group_size=", g->dump(),
                         " must be a positive integer or -1"));
      }
      config.group_size = g->get<int64_t>();
    }
    if (const json* r = field(*q, "ratio"); r != nullptr) {
      if (!r->is_number() || !(r->get<double>() >= 0 && r->get<double>() <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "openvino_config.json quantization_config.ratio=", r->dump(), " must be in [0, 1]"));
      }
      config.ratio = r->get<double>();
    }
    if (const json* a = field(*q, "all_layers"); a != nullptr) {
      if (!a->is_boolean()) {
        return absl::InvalidArgumentError(
            absl::StrCat("openvino_config.json quantization_config.all_layers=", a->dump(),
                         " must be true or false"));
      }
      config.all_layers = a->get<bool>();
    }
  }
  if (bits == 4) {
    config.weight_format = sym ? OvWeightFormat::kInt4Sym : OvWeightFormat::kInt4Asym;
  } else if (bits == 8) {
    config.weight_format = sym ? OvWeightFormat::kInt8Sym : OvWeightFormat::kInt8Asym;
  } else if (dtype == "fp16" || dtype == "fp32") {
    config.weight_format = dtype == "fp16" ? OvWeightFormat::kFp16 : OvWeightFormat::kFp32;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("openvino_config.json dtype=\"",
                                                   dtype.substr(0, 40),
                                                   "\" must be fp32, fp16, int8 or int4"));
  }
  config.weight_format_set = true;
  out = config;
  return absl::OkStatus();
}

namespace {

std::string ExportFlags(const OpenvinoConfig& o, OvWeights w) {
  const OvWeightFormat lm = w.format;
  std::string s;
  switch (lm) {
    case OvWeightFormat::kFp32:
      return " --weight-format fp32";
    case OvWeightFormat::kFp16:
      return " --weight-format fp16";
    case OvWeightFormat::kInt8Asym:
      return " --weight-format int8";
    case OvWeightFormat::kInt8Sym:
      return " --weight-format int8 --sym";
    case OvWeightFormat::kInt4Asym:
    case OvWeightFormat::kInt4Sym:
      s = absl::StrCat(" --weight-format int4 --group-size ", w.group_size, " --ratio ", o.ratio);
      if (lm == OvWeightFormat::kInt4Sym) s += " --sym";
      if (o.all_layers) s += " --all-layers";
      return s;
  }
  return s;
}

}  // namespace

std::string OpenvinoLaunchCommand(const std::string& model, const ModelSpec& spec,
                                  const EstimateRequest& r, const MemoryEstimate& e) {
  const OpenvinoConfig& o = r.openvino;
  // The export folder: the model's last path component, reduced to characters a shell and a
  // Python string take as they are.
  std::string dir = absl::StrCat(model.substr(model.find_last_of('/') + 1), "-ov");
  for (char& ch : dir) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_') {
      ch = '_';
    }
  }
  const std::string device = o.device == OvDevice::kCpu ? "CPU" : "GPU";
  std::string cmd = absl::StrCat(
      "optimum-cli export openvino --model ", ShellQuote(model),
      ExportFlags(o, OvResolvedWeights(spec, o).value_or(OvWeights{o.weight_format, o.group_size})),
      " ", dir);
  if (o.continuous_batching) {
    // OVMS takes cache_size in whole GB: round the estimate's pool up.
    const int64_t pool = e.stages.empty() ? 0 : e.stages.front().kv_cache_bytes;
    const int64_t gb = o.cache_size_gb > 0   ? static_cast<int64_t>(std::ceil(o.cache_size_gb))
                       : o.num_kv_blocks > 0 ? internal::CeilDiv(pool, kGiB)
                                             : 0;
    absl::StrAppend(&cmd, " && ovms --rest_port 8000 --source_model ", dir,
                    " --model_repository_path models --task text_generation --target_device ",
                    device, " --cache_size ", gb);
  } else {
    absl::StrAppend(&cmd, " && python -c \"import openvino_genai as g; g.",
                    e.pipeline_parts.size() > 1 ? "VLMPipeline" : "LLMPipeline", "('", dir, "', '",
                    device, "')\"");
  }
  return cmd;
}

}  // namespace fleetplan::estimator
