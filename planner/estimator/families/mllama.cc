// Llama 3.2 Vision (model_type "mllama", transformers models/mllama/modeling_mllama.py
// MllamaForConditionalGeneration): a Llama decoder whose cross_attention_layers read the encoded
// image through cross-attention instead of taking image tokens in the prompt.
//
// Text (MllamaTextModel): embed_tokens of vocab_size + 8 rows (the extra image and reserved
// tokens); self-attention layers are Llama's (q, k, v, o without biases, gated MLP, two RMSNorms);
// each layer in cross_attention_layers is a MllamaCrossAttentionDecoderLayer: q, k, v, o, a
// per-head RMSNorm on q and on k (q_norm, k_norm of head_dim), the gated MLP, two RMSNorms and two
// scalar tanh gates (cross_attn_attn_gate, cross_attn_mlp_gate). Its k and v are projections of
// the image states, cached once per image (not per text token). lm_head has vocab_size rows.
//
// Vision (MllamaVisionModel): an unbiased patch convolution, a class embedding, the gated
// position embedding (a gate, [patches + 1, d] and a tile position table of
// (max_aspect_ratio_id + 1) x max_num_tiles x (patches + 1) x d), gated pre- and post-tile
// aspect-ratio embeddings ((max_aspect_ratio_id + 1) x max_num_tiles x d and a gate each), pre and
// post LayerNorms, num_hidden_layers local layers and num_global_layers gated global layers (q, k,
// v, o without biases; fc1, fc2 with biases; two LayerNorms; the global ones add gate_attn and
// gate_ffn). max_aspect_ratio_id is len(supported_aspect_ratios). The projector
// (multi_modal_projector) is one biased Linear of vision_output_dim -> text hidden_size.

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status BuildMllamaText(const Fields& f, const std::string&, ModelSpec& spec) {
  DecoderTraits traits{.style = BiasesFromConfig};
  RETURN_IF_ERROR(BuildDecoder(f, traits, spec));
  ASSIGN_OR_RETURN(const json* cross, f.OptionalArray("cross_attention_layers"));
  if (cross == nullptr || cross->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("cross_attention_layers"),
                     " is missing or empty: mllama reads images through them"));
  }
  for (const json& l : *cross) {
    if (!l.is_number_integer() || l.get<int64_t>() < 0 || l.get<int64_t>() >= spec.num_layers) {
      return absl::InvalidArgumentError(absl::StrCat(f.Path("cross_attention_layers"), " entry ",
                                                     Shown(l), " is not a layer index below ",
                                                     spec.num_layers));
    }
    const auto index = static_cast<size_t>(l.get<int64_t>());
    LayerKind kind = spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of[index])];
    if (kind.attention.cross_attention) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.Path("cross_attention_layers"), " lists layer ", index, " twice"));
    }
    kind.name = "cross";
    kind.attention.cross_attention = true;
    kind.tensors.push_back(Vec("q_norm", kind.attention.head_dim, TensorRole::kNorm));
    kind.tensors.push_back(Vec("k_norm", kind.attention.head_dim, TensorRole::kNorm));
    kind.tensors.push_back(Vec("cross_attn_gates", 2, TensorRole::kOther));
    spec.layer_kind_of[index] = InternKind(spec, std::move(kind));
  }
  DropUnusedKinds(spec);  // a model whose every layer cross-attends keeps no self-attention kind
  // The embedding has 8 rows more than the vocabulary the head predicts.
  for (Tensor& t : spec.first_stage) {
    if (t.role == TensorRole::kEmbedding) t.out = spec.vocab_size + 8;
  }
  return absl::OkStatus();
}

absl::StatusOr<VisionSpec> MllamaVision(const Fields& v, const Fields& /*top*/,
                                        const std::string& /*wrapper*/, int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = "mllama_vision_model";
  ASSIGN_OR_RETURN(vs.hidden_size, v.Int("hidden_size"));
  ASSIGN_OR_RETURN(vs.intermediate_size, v.Int("intermediate_size"));
  ASSIGN_OR_RETURN(const int64_t local, v.IntOr("num_hidden_layers", 32, 1, kMaxLayers));
  ASSIGN_OR_RETURN(const int64_t global, v.IntOr("num_global_layers", 8, 0, kMaxLayers));
  ASSIGN_OR_RETURN(vs.num_heads, v.IntOr("attention_heads", 16, 1, kMaxHeads));
  ASSIGN_OR_RETURN(vs.patch_size, v.IntOr("patch_size", 14, 1, 4096));
  ASSIGN_OR_RETURN(vs.image_size, v.IntOr("image_size", 560, 1, 65536));
  ASSIGN_OR_RETURN(const int64_t channels, v.IntOr("num_channels", 3, 1, 64));
  ASSIGN_OR_RETURN(const int64_t tiles, v.IntOr("max_num_tiles", 4, 1, 64));
  ASSIGN_OR_RETURN(const int64_t output_dim, v.Int("vision_output_dim"));
  ASSIGN_OR_RETURN(const json* ratios, v.OptionalArray("supported_aspect_ratios"));
  ASSIGN_OR_RETURN(const json* indices, v.OptionalArray("intermediate_layers_indices"));
  for (const char* key : {"hidden_act", "norm_eps", "initializer_range"}) v.Consume(key);
  if (vs.image_size < vs.patch_size) {
    return absl::InvalidArgumentError(absl::StrCat(v.Path("image_size"), "=", vs.image_size,
                                                   " is smaller than patch_size=", vs.patch_size));
  }
  if (vs.hidden_size % vs.num_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(v.Path("hidden_size"), "=", vs.hidden_size,
                     " is not divisible by attention_heads=", vs.num_heads));
  }
  // MllamaVisionConfig's default: the eight tile layouts of four tiles.
  const int64_t aspect_ids = ratios != nullptr ? static_cast<int64_t>(ratios->size()) : 8;
  const int64_t features = indices != nullptr ? static_cast<int64_t>(indices->size()) + 1 : 5 + 1;
  if (output_dim != features * vs.hidden_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        v.Path("vision_output_dim"), "=", output_dim, " is not hidden_size x (", features - 1,
        " intermediate layers + the last) = ", features * vs.hidden_size));
  }
  vs.num_layers = local + global;
  vs.global_layers = global;
  const int64_t d = vs.hidden_size, i = vs.intermediate_size;
  const int64_t side = vs.image_size / vs.patch_size;
  const int64_t patches = side * side + 1;
  vs.tower.push_back(VisionTensor("patch_embedding", d, channels * vs.patch_size * vs.patch_size));
  vs.tower.push_back(VisionTensor("class_embedding", d));
  vs.tower.push_back(VisionTensor("gated_positional_embedding.gate", 1));
  vs.tower.push_back(VisionTensor("gated_positional_embedding.embedding", d, patches));
  vs.tower.push_back(VisionTensor("gated_positional_embedding.tile_embedding", tiles * patches * d,
                                  aspect_ids + 1));
  for (const char* name : {"pre_tile_positional_embedding", "post_tile_positional_embedding"}) {
    vs.tower.push_back(VisionTensor(name, tiles * d, aspect_ids + 1));
    vs.tower.push_back(VisionTensor("gate", 1));
  }
  vs.tower.push_back(VisionTensor("layernorm_pre", 2 * d));
  vs.tower.push_back(VisionTensor("layernorm_post", 2 * d));
  // One encoder layer: q, k, v, o unbiased, fc1 and fc2 biased, two LayerNorms.
  const int64_t layer = 4 * d * d + (d * i + i) + (i * d + d) + 4 * d;
  Tensor layers = VisionTensor("transformer.layers", layer);
  layers.copies = local;
  vs.tower.push_back(layers);
  if (global > 0) {
    Tensor global_layers = VisionTensor("global_transformer.layers", layer + 2);
    global_layers.copies = global;
    vs.tower.push_back(global_layers);
  }
  vs.projector.push_back(VisionTensor("multi_modal_projector", text_hidden, output_dim));
  vs.projector.push_back(VisionTensor("multi_modal_projector.bias", text_hidden));
  // Every image is encoded as max_num_tiles tiles (unused ones masked, still computed), its
  // patches padded to a multiple of 8 inside the tower; the prompt holds one <|image|> token.
  vs.token_rule = VisionSpec::TokenRule::kCrossAttention;
  vs.fixed_tokens_per_image = 1;
  vs.max_tiles = tiles;
  vs.note = absl::StrCat("mllama: each image is ", tiles, " tiles of ", patches,
                         " patches whose projected states the cross-attention layers cache (",
                         tiles * patches, " K/V rows per image and layer)");
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(mllama) {
  registry.AddText({.model_types = {"mllama_text_model"}, .build = BuildMllamaText});
  registry.AddWrapper({.model_types = {"mllama"},
                       .default_text_type = "mllama_text_model",
                       .build_vision = MllamaVision});
}

}  // namespace fleetplan::estimator::internal
