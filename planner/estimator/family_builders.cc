#include <algorithm>

#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"
#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {

// ---- Tensor builders ----------------------------------------------------------------------------

Tensor Linear(const char* name, int64_t in, int64_t out, TpSplit split, TensorRole role) {
  return Tensor{.name = name, .out = out, .in = in, .role = role, .split = split};
}

Tensor Vec(const char* name, int64_t n, TensorRole role, TpSplit split) {
  return Tensor{.name = name, .out = n, .in = 1, .role = role, .split = split};
}

Tensor BiasOf(const Tensor& weight) {
  TpSplit split = weight.split == TpSplit::kRow ? TpSplit::kReplicated : weight.split;
  return Tensor{.name = "bias",
                .out = weight.out,
                .in = 1,
                .copies = weight.copies,
                .role = weight.role == TensorRole::kExpertLinear ? TensorRole::kExpertBias
                                                                 : TensorRole::kBias,
                .split = split,
                .heads = weight.heads};
}

void AddLinear(std::vector<Tensor>& t, Tensor w, bool bias) {
  t.push_back(w);
  if (bias) t.push_back(BiasOf(w));
}

void AddAttention(std::vector<Tensor>& t, const AttentionSpec& a, int64_t hidden,
                  const DecoderStyle& style) {
  const int64_t q_out = a.num_heads * a.head_dim;
  const int64_t kv_out = a.num_kv_heads * a.head_dim;
  Tensor q = Linear("q_proj", hidden, q_out, TpSplit::kHeads);
  q.heads = a.num_heads;
  Tensor k = Linear("k_proj", hidden, kv_out, TpSplit::kKvHeads);
  k.heads = a.num_kv_heads;
  Tensor v = Linear("v_proj", hidden, a.num_kv_heads * a.v_head_dim, TpSplit::kKvHeads);
  v.heads = a.num_kv_heads;
  Tensor o = Linear("o_proj", a.num_heads * a.v_head_dim, hidden, TpSplit::kRow);
  AddLinear(t, q, style.qkv_bias);
  AddLinear(t, k, style.qkv_bias);
  AddLinear(t, v, style.qkv_bias);
  AddLinear(t, o, style.o_bias);
  if (style.qk_norm) {
    t.push_back(Vec("q_norm", a.head_dim, TensorRole::kNorm));
    t.push_back(Vec("k_norm", a.head_dim, TensorRole::kNorm));
  }
  if (style.attention_sinks) {
    Tensor sinks = Vec("sinks", a.num_heads, TensorRole::kOther, TpSplit::kHeads);
    sinks.heads = a.num_heads;
    t.push_back(sinks);
  }
}

void AddDenseMlp(std::vector<Tensor>& t, int64_t hidden, int64_t inter, const DecoderStyle& style) {
  if (style.gated_mlp) {
    AddLinear(t, Linear("gate_proj", hidden, inter, TpSplit::kColumn), style.mlp_bias);
    AddLinear(t, Linear("up_proj", hidden, inter, TpSplit::kColumn), style.mlp_bias);
  } else {
    AddLinear(t, Linear("fc1", hidden, inter, TpSplit::kColumn), style.mlp_bias);
  }
  AddLinear(t, Linear("down_proj", inter, hidden, TpSplit::kRow), style.mlp_bias);
}

void AddNorms(std::vector<Tensor>& t, int64_t hidden, const DecoderStyle& style) {
  for (int i = 0; i < style.norms_per_layer; ++i) {
    t.push_back(Vec("norm", hidden, TensorRole::kNorm));
    if (style.layernorm_bias) t.push_back(Vec("norm_bias", hidden, TensorRole::kNorm));
  }
}

void AddExperts(std::vector<Tensor>& t, int64_t hidden, int64_t inter, int64_t count, bool bias) {
  Tensor gate =
      Linear("experts.gate_up", hidden, 2 * inter, TpSplit::kColumn, TensorRole::kExpertLinear);
  gate.copies = count;
  Tensor down = Linear("experts.down", inter, hidden, TpSplit::kRow, TensorRole::kExpertLinear);
  down.copies = count;
  AddLinear(t, gate, bias);
  AddLinear(t, down, bias);
}

void AddRouter(std::vector<Tensor>& t, int64_t hidden, int64_t experts, bool bias) {
  t.push_back(Linear("router", hidden, experts, TpSplit::kReplicated, TensorRole::kRouter));
  if (bias) t.push_back(Vec("router.bias", experts, TensorRole::kRouter));
}

int InternKind(ModelSpec& spec, LayerKind kind) {
  for (size_t i = 0; i < spec.layer_kinds.size(); ++i) {
    const LayerKind& k = spec.layer_kinds[i];
    if (k.name == kind.name && k.attention == kind.attention && k.mlp == kind.mlp &&
        k.tensors.size() == kind.tensors.size()) {
      return static_cast<int>(i);
    }
  }
  spec.layer_kinds.push_back(std::move(kind));
  return static_cast<int>(spec.layer_kinds.size() - 1);
}

void DropUnusedKinds(ModelSpec& spec) {
  std::vector<int> renumbered(spec.layer_kinds.size(), -1);
  std::vector<LayerKind> kept;
  for (int& k : spec.layer_kind_of) {
    const auto old = static_cast<size_t>(k);
    if (renumbered[old] < 0) {
      renumbered[old] = static_cast<int>(kept.size());
      kept.push_back(spec.layer_kinds[old]);
    }
    k = renumbered[old];
  }
  spec.layer_kinds = std::move(kept);
}

void AddFinalNormAndHead(ModelSpec& spec) {
  spec.last_stage.push_back(Vec("norm", spec.hidden_size, TensorRole::kNorm));
  if (!spec.tie_word_embeddings) {
    spec.last_stage.push_back(
        Linear("lm_head", spec.hidden_size, spec.vocab_size, TpSplit::kVocab, TensorRole::kLmHead));
  }
}

absl::Status ReadCoreDims(const Fields& f, ModelSpec& spec) {
  ASSIGN_OR_RETURN(spec.hidden_size, f.Int("hidden_size"));
  ASSIGN_OR_RETURN(spec.num_layers, f.Int("num_hidden_layers", 1, kMaxLayers));
  ASSIGN_OR_RETURN(spec.vocab_size, f.Int("vocab_size", 1, kMaxVocab));
  ASSIGN_OR_RETURN(spec.draft_vocab_size, f.IntOr("draft_vocab_size", 0, 0, spec.vocab_size));
  ASSIGN_OR_RETURN(spec.target_hidden_size, f.IntOr("target_hidden_size", 0, 0, int64_t{1} << 20));
  return absl::OkStatus();
}

void AddEmbedding(ModelSpec& spec) {
  spec.first_stage.push_back(Linear("embed_tokens", spec.hidden_size, spec.vocab_size,
                                    TpSplit::kVocab, TensorRole::kEmbedding));
}

absl::Status ReadMtpModule(const Fields& f, ModelSpec& spec) {
  ASSIGN_OR_RETURN(const int64_t n, f.IntOr("num_nextn_predict_layers", 0, 0, 16));
  if (n == 0 || spec.layer_kind_of.empty()) return absl::OkStatus();
  auto mtp = std::make_shared<ModelSpec>();
  mtp->model_type = spec.model_type;
  mtp->dtype = spec.dtype;
  mtp->vocab_size = spec.vocab_size;
  mtp->hidden_size = spec.hidden_size;
  mtp->max_position_embeddings = spec.max_position_embeddings;
  mtp->rotary_dim = spec.rotary_dim;
  mtp->num_layers = n;
  mtp->layer_kinds = {spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of.back())]};
  mtp->layer_kind_of.assign(static_cast<size_t>(n), 0);
  const int64_t h = spec.hidden_size;
  std::vector<Tensor> per_layer = {
      Vec("enorm", h, TensorRole::kNorm), Vec("hnorm", h, TensorRole::kNorm),
      Linear("eh_proj", 2 * h, h, TpSplit::kReplicated),
      Vec("shared_head.norm", h, TensorRole::kNorm),
      Linear("shared_head.head", h, spec.vocab_size, TpSplit::kVocab, TensorRole::kLmHead)};
  for (Tensor& t : per_layer) {
    t.copies = n;
    mtp->last_stage.push_back(t);
  }
  spec.mtp = std::move(mtp);
  spec.notes.push_back(absl::StrCat(
      "num_nextn_predict_layers=", n,
      ": the MTP layers are loaded only for speculative decoding (vLLM --speculative-config "
      "method mtp) and are not counted otherwise"));
  return absl::OkStatus();
}

// ---- Llama-like decoders ------------------------------------------------------------------------

namespace {

// Per-layer sliding windows: from layer_types when present, else the family's pattern.
absl::StatusOr<std::vector<int64_t>> SlidingWindows(const Fields& f, const DecoderTraits& traits,
                                                    int64_t layers) {
  std::vector<int64_t> windows(static_cast<size_t>(layers), 0);
  ASSIGN_OR_RETURN(int64_t window, f.IntOr("sliding_window", 0, 0, kMaxPositions));
  ASSIGN_OR_RETURN(const json* types, f.OptionalArray("layer_types"));
  if (types != nullptr) {
    // layer_types supersedes the families' older pattern fields (transformers derives it from
    // them).
    for (const char* key : {"sliding_window_pattern", "use_sliding_window", "max_window_layers"}) {
      f.Consume(key);
    }
    if (static_cast<int64_t>(types->size()) < layers) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.Path("layer_types"), " has ", types->size(),
                       " entries, fewer than num_hidden_layers=", layers));
    }
    for (int64_t i = 0; i < layers; ++i) {
      const json& t = (*types)[static_cast<size_t>(i)];
      if (!t.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(f.Path("layer_types"), "[", i, "]=", Shown(t), " must be a string"));
      }
      const std::string s = t.get<std::string>();
      if (s == "sliding_attention") {
        if (window <= 0) {
          return absl::InvalidArgumentError(absl::StrCat(f.Path("sliding_window"),
                                                         " is missing but layer_types[", i,
                                                         "] is sliding_attention"));
        }
        windows[static_cast<size_t>(i)] = window;
      } else if (s != "full_attention" && s != "attention" && s != "chunked_attention" &&
                 !(s == "linear_attention" && traits.linear_layers)) {
        return absl::InvalidArgumentError(absl::StrCat(
            f.Path("layer_types"), "[", i, "]=", Shown(t), " is not a known attention type"));
      }
    }
    return windows;
  }
  // The pattern runs with a zero window too (nothing slides), so its fields count as read.
  if (!traits.window_pattern) return windows;
  RETURN_IF_ERROR(traits.window_pattern(f, window, windows));
  return windows;
}

}  // namespace

size_t AttentionTensorCount(const AttentionSpec& a, int64_t hidden, const DecoderStyle& style) {
  std::vector<Tensor> t;
  AddAttention(t, a, hidden, style);
  return t.size();
}

absl::Status AllLayersSlide(const Fields& /*f*/, int64_t window, std::vector<int64_t>& windows) {
  std::fill(windows.begin(), windows.end(), window);
  return absl::OkStatus();
}

absl::Status BiasesFromConfig(const Fields& f, DecoderStyle& style, bool& /*tie_default*/) {
  ASSIGN_OR_RETURN(bool attention_bias, f.BoolOr("attention_bias", false));
  style.qkv_bias = style.o_bias = attention_bias;
  ASSIGN_OR_RETURN(style.mlp_bias, f.BoolOr("mlp_bias", false));
  return absl::OkStatus();
}

absl::Status QwenWindowPattern(const Fields& f, int64_t window, std::vector<int64_t>& windows) {
  const int64_t layers = static_cast<int64_t>(windows.size());
  ASSIGN_OR_RETURN(bool use, f.BoolOr("use_sliding_window", false));
  ASSIGN_OR_RETURN(int64_t max_window_layers, f.IntOr("max_window_layers", layers, 0, kMaxLayers));
  if (use) {
    for (int64_t i = max_window_layers; i < layers; ++i) windows[static_cast<size_t>(i)] = window;
  }
  return absl::OkStatus();
}

absl::Status QwenMoeGeometry(const Fields& f, int64_t layers, bool shared_expert,
                             MoeGeometry& moe) {
  ASSIGN_OR_RETURN(moe.experts, f.Int("num_experts", 1, kMaxExperts));
  ASSIGN_OR_RETURN(moe.top_k, f.Int("num_experts_per_tok", 1, kMaxExperts));
  ASSIGN_OR_RETURN(moe.expert_inter, f.Int("moe_intermediate_size"));
  ASSIGN_OR_RETURN(moe.dense_inter, f.IntOr("intermediate_size", moe.expert_inter));
  if (shared_expert) {
    ASSIGN_OR_RETURN(moe.shared_inter, f.IntOr("shared_expert_intermediate_size", 0, 0));
    moe.shared_gate = moe.shared_inter > 0;
  }
  ASSIGN_OR_RETURN(int64_t step, f.IntOr("decoder_sparse_step", 1, 1, kMaxLayers));
  std::vector<int64_t> mlp_only;
  ASSIGN_OR_RETURN(const json* only_layers, f.OptionalArray("mlp_only_layers"));
  if (only_layers != nullptr) {
    for (const json& v : *only_layers) {
      if (!v.is_number_integer()) {
        return absl::InvalidArgumentError(
            absl::StrCat(f.Path("mlp_only_layers"), " entry ", Shown(v), " must be an integer"));
      }
      mlp_only.push_back(v.get<int64_t>());
    }
  }
  for (int64_t i = 0; i < layers; ++i) {
    const bool only = std::find(mlp_only.begin(), mlp_only.end(), i) != mlp_only.end();
    moe.sparse[static_cast<size_t>(i)] = !only && moe.experts > 0 && (i + 1) % step == 0;
  }
  return absl::OkStatus();
}

absl::Status BuildDecoder(const Fields& f, const DecoderTraits& traits, ModelSpec& spec) {
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t kv_heads, f.IntOr("num_key_value_heads", heads, 1, kMaxHeads));
  ASSIGN_OR_RETURN(spec.max_position_embeddings,
                   f.IntOr("max_position_embeddings", 4096, 1, kMaxPositions));
  if (heads % kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("num_attention_heads"), "=", heads,
                     " is not a multiple of num_key_value_heads=", kv_heads));
  }
  int64_t head_dim = 0;
  if (f.Has("head_dim")) {
    ASSIGN_OR_RETURN(head_dim, f.Int("head_dim", 1, 65536));
  } else {
    if (spec.hidden_size % heads != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.Path("hidden_size"), "=", spec.hidden_size,
          " is not divisible by num_attention_heads=", heads, " and head_dim is not given"));
    }
    head_dim = spec.hidden_size / heads;
  }
  ASSIGN_OR_RETURN(double partial_rotary, f.DoubleOr("partial_rotary_factor", 1.0));
  spec.rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary);

  DecoderStyle style;
  bool tie_default = false;
  if (traits.style) RETURN_IF_ERROR(traits.style(f, style, tie_default));
  if (traits.softcapping) {
    ASSIGN_OR_RETURN(spec.final_logit_softcapping, f.DoubleOr("final_logit_softcapping", 0.0));
  }
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", tie_default));

  MoeGeometry moe;
  moe.sparse.assign(static_cast<size_t>(spec.num_layers), false);
  if (traits.moe) {
    RETURN_IF_ERROR(traits.moe(f, spec.num_layers, moe));
  } else {
    ASSIGN_OR_RETURN(moe.dense_inter, f.Int("intermediate_size"));
  }
  if (moe.top_k > moe.experts) {
    return absl::InvalidArgumentError(absl::StrCat(f.Path("num_experts_per_tok"), "=", moe.top_k,
                                                   " exceeds the number of experts ", moe.experts));
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> windows, SlidingWindows(f, traits, spec.num_layers));

  AddEmbedding(spec);
  spec.layer_kind_of.resize(static_cast<size_t>(spec.num_layers));
  for (int64_t i = 0; i < spec.num_layers; ++i) {
    LayerKind kind;
    kind.attention = AttentionSpec{.num_heads = heads,
                                   .num_kv_heads = kv_heads,
                                   .head_dim = head_dim,
                                   .v_head_dim = head_dim,
                                   .sliding_window = windows[static_cast<size_t>(i)]};
    AddAttention(kind.tensors, kind.attention, spec.hidden_size, style);
    if (moe.sparse[static_cast<size_t>(i)]) {
      kind.name = "moe";
      kind.mlp = MlpSpec{.num_experts = moe.experts,
                         .experts_per_token = moe.top_k,
                         .expert_intermediate_size = moe.expert_inter,
                         .shared_intermediate_size = moe.shared_inter};
      AddRouter(kind.tensors, spec.hidden_size, moe.experts, moe.router_bias);
      AddExperts(kind.tensors, spec.hidden_size, moe.expert_inter, moe.experts, moe.expert_bias);
      if (moe.shared_inter > 0) {
        AddDenseMlp(kind.tensors, spec.hidden_size, moe.shared_inter, DecoderStyle{});
        if (moe.shared_gate) {
          kind.tensors.push_back(Linear("shared_expert_gate", spec.hidden_size, 1,
                                        TpSplit::kReplicated, TensorRole::kRouter));
        }
      }
    } else {
      kind.name = "dense";
      kind.mlp = MlpSpec{.intermediate_size = moe.dense_inter, .gated = style.gated_mlp};
      AddDenseMlp(kind.tensors, spec.hidden_size, moe.dense_inter, style);
    }
    if (kind.attention.sliding_window > 0) absl::StrAppend(&kind.name, "/sliding");
    AddNorms(kind.tensors, spec.hidden_size, style);
    spec.layer_kind_of[static_cast<size_t>(i)] = InternKind(spec, std::move(kind));
  }
  AddFinalNormAndHead(spec);
  return absl::OkStatus();
}

// ---- Vision towers ------------------------------------------------------------------------------

absl::StatusOr<int64_t> ReadVisionFeatureLayer(const Fields& top, int64_t default_layer,
                                               VisionSpec& vs) {
  if (const json* layers = top.ArrayIfArray("vision_feature_layer"); layers != nullptr) {
    return static_cast<int64_t>(layers->size());
  }
  // hidden_states[k] of num_layers + 1: the layers after it are unused (cut from an export).
  ASSIGN_OR_RETURN(int64_t layer, top.IntOr("vision_feature_layer", default_layer,
                                            -vs.num_layers - 1, vs.num_layers));
  vs.unused_tail_layers = layer < 0 ? -layer - 1 : vs.num_layers - layer;
  return 1;
}

void AddVisionLayer(std::vector<Tensor>& t, int64_t d, int64_t inter, int64_t layers,
                    bool gated_mlp, bool rms_norm) {
  auto add = [&](const char* name, int64_t in, int64_t out) {
    Tensor w{.name = name, .out = out, .in = in, .copies = layers, .role = TensorRole::kVision};
    t.push_back(w);
    t.push_back(
        Tensor{.name = "bias", .out = out, .in = 1, .copies = layers, .role = TensorRole::kVision});
  };
  add("q", d, d);
  add("k", d, d);
  add("v", d, d);
  add("o", d, d);
  if (gated_mlp) {
    add("gate", d, inter);
    add("up", d, inter);
    add("down", inter, d);
  } else {
    add("fc1", d, inter);
    add("fc2", inter, d);
  }
  const int64_t norm_params = rms_norm ? 1 : 2;
  t.push_back(Tensor{.name = "norms",
                     .out = d * 2 * norm_params,
                     .in = 1,
                     .copies = layers,
                     .role = TensorRole::kVision});
}

Tensor VisionTensor(const char* name, int64_t out, int64_t in) {
  return Tensor{.name = name, .out = out, .in = in, .role = TensorRole::kVision};
}

void AddPatchMerger(VisionSpec& vs, bool qwen, int64_t norm_elements, int64_t merged, int64_t out) {
  vs.projector.push_back(VisionTensor(qwen ? "merger.ln_q" : "pre_norm", norm_elements));
  vs.projector.push_back(VisionTensor(qwen ? "merger.mlp.0" : "linear_1", merged, merged));
  vs.projector.push_back(VisionTensor(qwen ? "merger.mlp.0.bias" : "linear_1.bias", merged));
  vs.projector.push_back(VisionTensor(qwen ? "merger.mlp.2" : "linear_2", out, merged));
  vs.projector.push_back(VisionTensor(qwen ? "merger.mlp.2.bias" : "linear_2.bias", out));
}

absl::Status ReadVisionCore(const Fields& v, VisionSpec& vs) {
  ASSIGN_OR_RETURN(vs.hidden_size, v.Int("hidden_size"));
  ASSIGN_OR_RETURN(vs.intermediate_size, v.Int("intermediate_size"));
  ASSIGN_OR_RETURN(vs.num_layers, v.Int("num_hidden_layers", 1, kMaxLayers));
  ASSIGN_OR_RETURN(vs.num_heads, v.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(vs.patch_size, v.Int("patch_size", 1, 4096));
  ASSIGN_OR_RETURN(vs.image_size, v.Int("image_size", 1, 65536));
  if (vs.image_size < vs.patch_size) {
    return absl::InvalidArgumentError(absl::StrCat(v.Path("image_size"), "=", vs.image_size,
                                                   " is smaller than patch_size=", vs.patch_size));
  }
  return absl::OkStatus();
}

absl::Status BuildSiglipOrClipTower(const Fields& v, bool use_head_default, VisionSpec& vs) {
  RETURN_IF_ERROR(ReadVisionCore(v, vs));
  const int64_t d = vs.hidden_size;
  // The patch convolution drops a remainder (SigLIP-384 with 14-px patches: 27 x 27).
  const int64_t patches = (vs.image_size / vs.patch_size) * (vs.image_size / vs.patch_size);
  const bool clip = vs.model_type == "clip_vision_model";
  if (clip) {
    vs.tower.push_back(VisionTensor("class_embedding", d));
    vs.tower.push_back(VisionTensor("patch_embedding", d, 3 * vs.patch_size * vs.patch_size));
    vs.tower.push_back(VisionTensor("position_embedding", patches + 1, d));
    vs.tower.push_back(VisionTensor("pre_layrnorm", 2 * d));
  } else {
    vs.tower.push_back(VisionTensor("patch_embedding", d, 3 * vs.patch_size * vs.patch_size));
    vs.tower.push_back(VisionTensor("patch_embedding.bias", d));
    vs.tower.push_back(VisionTensor("position_embedding", patches, d));
  }
  AddVisionLayer(vs.tower, d, vs.intermediate_size, vs.num_layers, false, false);
  vs.tower.push_back(VisionTensor("post_layernorm", 2 * d));
  ASSIGN_OR_RETURN(bool use_head, v.BoolOr("vision_use_head", !clip && use_head_default));
  if (!clip && use_head) {
    // SiglipMultiheadAttentionPoolingHead: probe, nn.MultiheadAttention, LayerNorm, MLP.
    vs.tower.push_back(VisionTensor("head.probe", d));
    vs.tower.push_back(VisionTensor("head.attention.in_proj", 3 * d, d));
    vs.tower.push_back(VisionTensor("head.attention.in_proj_bias", 3 * d));
    vs.tower.push_back(VisionTensor("head.attention.out_proj", d, d));
    vs.tower.push_back(VisionTensor("head.attention.out_proj.bias", d));
    vs.tower.push_back(VisionTensor("head.layernorm", 2 * d));
    vs.tower.push_back(VisionTensor("head.mlp.fc1", vs.intermediate_size, d));
    vs.tower.push_back(VisionTensor("head.mlp.fc1.bias", vs.intermediate_size));
    vs.tower.push_back(VisionTensor("head.mlp.fc2", d, vs.intermediate_size));
    vs.tower.push_back(VisionTensor("head.mlp.fc2.bias", d));
  }
  vs.fixed_tokens_per_image = patches;
  return absl::OkStatus();
}

absl::Status BuildPixtralTower(const Fields& v, int64_t merge, VisionSpec& vs) {
  RETURN_IF_ERROR(ReadVisionCore(v, vs));
  const int64_t d = vs.hidden_size;
  ASSIGN_OR_RETURN(int64_t head_dim, v.IntOr("head_dim", d / vs.num_heads, 1, 65536));
  if (head_dim * vs.num_heads != d) {
    return absl::InvalidArgumentError(absl::StrCat(v.Path("head_dim"), "=", head_dim, " x ",
                                                   vs.num_heads, " heads is not hidden_size ", d));
  }
  vs.tower.push_back(VisionTensor("patch_conv", d, 3 * vs.patch_size * vs.patch_size));
  vs.tower.push_back(VisionTensor("ln_pre", d));
  auto layer = [&](const char* name, int64_t out, int64_t in) {
    vs.tower.push_back(Tensor{
        .name = name, .out = out, .in = in, .copies = vs.num_layers, .role = TensorRole::kVision});
  };
  layer("attention.qkvo", 4 * d, d);
  layer("feed_forward.gate_up", 2 * vs.intermediate_size, d);
  layer("feed_forward.down", d, vs.intermediate_size);
  layer("norms", 2 * d, 1);
  vs.token_rule = VisionSpec::TokenRule::kPixtral;
  vs.spatial_merge = merge;
  v.Consume("rope_theta");
  v.Consume("hidden_act");
  v.Consume("num_channels");
  v.Consume("attention_dropout");
  return absl::OkStatus();
}

// ---- The registry -------------------------------------------------------------------------------

void FamilyRegistry::AddText(TextFamily family) { text_.push_back(std::move(family)); }
void FamilyRegistry::AddWrapper(WrapperFamily family) { wrappers_.push_back(std::move(family)); }

const TextFamily* FamilyRegistry::FindText(const std::string& model_type,
                                           std::string* canonical) const {
  for (const TextFamily& f : text_) {
    if (std::find(f.model_types.begin(), f.model_types.end(), model_type) != f.model_types.end()) {
      *canonical = model_type;
      return &f;
    }
    if (std::find(f.aliases.begin(), f.aliases.end(), model_type) != f.aliases.end()) {
      *canonical = f.model_types.front();
      return &f;
    }
  }
  return nullptr;
}

const WrapperFamily* FamilyRegistry::FindWrapper(const std::string& model_type) const {
  for (const WrapperFamily& f : wrappers_) {
    if (std::find(f.model_types.begin(), f.model_types.end(), model_type) != f.model_types.end()) {
      return &f;
    }
  }
  return nullptr;
}

std::vector<std::string> FamilyRegistry::TextTypes() const {
  std::vector<std::string> out;
  for (const TextFamily& f : text_)
    out.insert(out.end(), f.model_types.begin(), f.model_types.end());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace fleetplan::estimator::internal
