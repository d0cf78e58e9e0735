// Llama 4 (transformers models/llama4: Llama4ForCausalLM, Llama4ForConditionalGeneration).
//
// Text: attention (q, k, v, o, attention_bias) with a weightless L2 norm on q and k; each layer in
// moe_layers (default: every interleave_moe_layer_step-th) is a Llama4TextMoe: a router to
// num_local_experts experts of intermediate_size (gate_up_proj [E, H, 2I], down_proj [E, I, H]),
// top num_experts_per_tok, plus a shared expert of intermediate_size; the other layers are dense
// MLPs of intermediate_size_mlp. Layers whose no_rope_layers entry is 1 use chunked local attention
// of attention_chunk_size tokens (layer_types "chunked_attention"); every no_rope_layer_interval-th
// is global.
//
// Vision (Llama4VisionModel): an unfold "convolution" (C p^2 -> d, no bias), a class embedding,
// (image/patch)^2 + 1 position embeddings, pre and post LayerNorms, num_hidden_layers encoder
// layers (q, k, v, o and fc1, fc2 with biases, two LayerNorms), a pixel-shuffle adapter MLP (fc1:
// intermediate_size -> projector_input_dim, fc2: projector_output_dim -> projector_output_dim, no
// biases), and the multimodal projector linear_1 (vision_output_dim -> text hidden, no bias). Each
// tile of image_size becomes (image_size / patch_size)^2 * pixel_shuffle_ratio^2 tokens.

#include <cmath>

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

// The processor splits an image into at most 16 tiles of image_size plus one global view
// (image_processing_llama4_fast.py, max_patches=16): the most tokens one image can take.
constexpr int64_t kLlama4MaxTilesPerImage = 16 + 1;

absl::Status Llama4Moe(const Fields& f, int64_t layers, MoeGeometry& moe) {
  ASSIGN_OR_RETURN(moe.experts, f.Int("num_local_experts", 1, kMaxExperts));
  ASSIGN_OR_RETURN(moe.top_k, f.IntOr("num_experts_per_tok", 1, 1, kMaxExperts));
  ASSIGN_OR_RETURN(moe.expert_inter, f.Int("intermediate_size"));
  moe.shared_inter = moe.expert_inter;  // Llama4TextMoe.shared_expert = Llama4TextMLP(config)
  ASSIGN_OR_RETURN(moe.dense_inter, f.IntOr("intermediate_size_mlp", moe.expert_inter));
  ASSIGN_OR_RETURN(const int64_t step, f.IntOr("interleave_moe_layer_step", 1, 1, kMaxLayers));
  ASSIGN_OR_RETURN(const json* listed, f.OptionalArray("moe_layers"));
  if (listed != nullptr) {
    for (const json& v : *listed) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= layers) {
        return absl::InvalidArgumentError(absl::StrCat(f.Path("moe_layers"), " entry ", Shown(v),
                                                       " is not a layer index below ", layers));
      }
      moe.sparse[static_cast<size_t>(v.get<int64_t>())] = true;
    }
    return absl::OkStatus();
  }
  for (int64_t i = step - 1; i < layers; i += step) moe.sparse[static_cast<size_t>(i)] = true;
  return absl::OkStatus();
}

absl::Status BuildLlama4Text(const Fields& f, const std::string&, ModelSpec& spec) {
  // Read and checked, but they change no memory the estimator models: the L2 norm (no weights),
  // the attention temperature.
  ASSIGN_OR_RETURN(const int64_t chunk, f.IntOr("attention_chunk_size", 0, 0, kMaxPositions));
  ASSIGN_OR_RETURN(const json* no_rope, f.OptionalArray("no_rope_layers"));
  ASSIGN_OR_RETURN(const int64_t interval, f.IntOr("no_rope_layer_interval", 4, 1, kMaxLayers));
  ASSIGN_OR_RETURN(const json* types, f.OptionalArray("layer_types"));
  for (const char* key : {"use_qk_norm", "attn_temperature_tuning", "floor_scale", "attn_scale"}) {
    f.Consume(key);
  }
  DecoderTraits traits{.style = BiasesFromConfig, .moe = Llama4Moe};
  RETURN_IF_ERROR(BuildDecoder(f, traits, spec));
  if (no_rope != nullptr && !no_rope->empty() &&
      static_cast<int64_t>(no_rope->size()) != spec.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("no_rope_layers"), " has ", no_rope->size(),
                     " entries, not num_hidden_layers=", spec.num_layers));
  }
  // Which layers are chunked (configuration_llama4.py): layer_types' "chunked_attention", else
  // the RoPE layers, no_rope_layers[i] = 1 (an empty list: every layer but each interval-th).
  int64_t chunked = 0;
  for (int64_t i = 0; chunk > 0 && i < spec.num_layers; ++i) {
    const auto index = static_cast<size_t>(i);
    bool local = (i + 1) % interval != 0;
    if (types != nullptr) {
      local = (*types)[index].get<std::string>() == "chunked_attention";  // BuildDecoder checked
    } else if (no_rope != nullptr && !no_rope->empty()) {
      const json& v = (*no_rope)[index];
      if (!v.is_number_integer() || (v.get<int64_t>() != 0 && v.get<int64_t>() != 1)) {
        return absl::InvalidArgumentError(
            absl::StrCat(f.Path("no_rope_layers"), "[", i, "]=", Shown(v), " must be 0 or 1"));
      }
      local = v.get<int64_t>() == 1;
    }
    if (!local) continue;
    LayerKind kind = spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of[index])];
    kind.attention.attention_chunk = chunk;
    kind.name = absl::StrCat("chunked/", kind.name);
    spec.layer_kind_of[index] = InternKind(spec, std::move(kind));
    ++chunked;
  }
  DropUnusedKinds(spec);
  if (chunked > 0) {
    spec.notes.push_back(absl::StrCat(
        chunked, " chunked local attention layers (attention_chunk_size=", chunk,
        ") are counted as full attention for the KV cache by vLLM, transformers and llama.cpp: an "
        "over-estimate past ",
        chunk,
        " tokens where the engine keeps only the current chunk (vLLM's hybrid KV cache manager, "
        "on for them by default in later releases); SGLang's hybrid SWA pool is modelled"));
  }
  return absl::OkStatus();
}

absl::StatusOr<VisionSpec> Llama4Vision(const Fields& v, const Fields& /*top*/,
                                        const std::string& /*wrapper*/, int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = "llama4_vision_model";
  RETURN_IF_ERROR(ReadVisionCore(v, vs));
  ASSIGN_OR_RETURN(const int64_t channels, v.IntOr("num_channels", 3, 1, 64));
  ASSIGN_OR_RETURN(const int64_t output_dim, v.Int("vision_output_dim"));
  ASSIGN_OR_RETURN(const int64_t adapter_in, v.Int("projector_input_dim"));
  ASSIGN_OR_RETURN(const int64_t adapter_out, v.Int("projector_output_dim"));
  ASSIGN_OR_RETURN(const double shuffle, v.DoubleOr("pixel_shuffle_ratio", 0.5));
  if (!(shuffle > 0 && shuffle <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat(v.Path("pixel_shuffle_ratio"), "=", shuffle, " must be in (0, 1]"));
  }
  // Which encoder output feeds the adapter (the last): every layer is resident either way. The
  // projector has no bias whatever multi_modal_projector_bias says (modeling_llama4.py).
  for (const char* key :
       {"vision_feature_layer", "vision_feature_select_strategy", "multi_modal_projector_bias"}) {
    v.Consume(key);
  }
  const int64_t d = vs.hidden_size;
  const int64_t side = vs.image_size / vs.patch_size;
  vs.tower.push_back(
      VisionTensor("patch_embedding.linear", d, channels * vs.patch_size * vs.patch_size));
  vs.tower.push_back(VisionTensor("class_embedding", d));
  vs.tower.push_back(VisionTensor("positional_embedding_vlm", d, side * side + 1));
  vs.tower.push_back(VisionTensor("layernorm_pre", 2 * d));
  vs.tower.push_back(VisionTensor("layernorm_post", 2 * d));
  AddVisionLayer(vs.tower, d, vs.intermediate_size, vs.num_layers, /*gated_mlp=*/false,
                 /*rms_norm=*/false);
  vs.tower.push_back(VisionTensor("vision_adapter.mlp.fc1", adapter_in, vs.intermediate_size));
  vs.tower.push_back(VisionTensor("vision_adapter.mlp.fc2", adapter_out, adapter_out));
  vs.projector.push_back(VisionTensor("multi_modal_projector.linear_1", text_hidden, output_dim));
  const auto per_tile =
      static_cast<int64_t>(std::llround(static_cast<double>(side * side) * shuffle * shuffle));
  vs.token_rule = VisionSpec::TokenRule::kPerTile;
  vs.fixed_tokens_per_image = per_tile * kLlama4MaxTilesPerImage;
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(llama4) {
  registry.AddText({.model_types = {"llama4_text"}, .build = BuildLlama4Text});
  registry.AddWrapper({.model_types = {"llama4"},
                       .default_text_type = "llama4_text",
                       .build_vision = Llama4Vision,
                       .note = "image tokens counted for an image at the processor's most tiles "
                               "(16 and a global view)"});
}

}  // namespace fleetplan::estimator::internal
