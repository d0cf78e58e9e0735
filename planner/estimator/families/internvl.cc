// InternVL 1.5 / 2 / 2.5 / 3 in its original remote-code layout (model_type "internvl_chat", the
// layout optimum-intel and vLLM read): an InternViT tower, pixel shuffle by downsample_ratio and a
// LayerNorm + two-layer MLP projector (mlp1) into the language model described by llm_config
// (OpenGVLab's modeling_internvl_chat.py, modeling_intern_vit.py). InternViT: class token, a
// 14-px patch convolution with bias, learned positions for (image_size / patch)^2 + 1 tokens;
// layers of fused qkv (+bias when qkv_bias), proj, fc1, fc2 with biases, two norms and two layer
// scales (ls1, ls2), optional q/k norms (qk_normalization, InternViT-6B); no final norm. Images are
// cut into tiles (dynamic_preprocess, ImageTiles); each tile becomes
// (image_size / patch)^2 x downsample_ratio^2 language-model tokens.

#include <cmath>

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::StatusOr<VisionSpec> InternVision(const Fields& v, const Fields& top, const std::string&,
                                        int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", "intern_vit_6b");
  RETURN_IF_ERROR(ReadVisionCore(v, vs));
  ASSIGN_OR_RETURN(int64_t forced, top.IntOr("force_image_size", vs.image_size, 1, 65536));
  if (forced != vs.image_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        top.Path("force_image_size"), "=", forced,
        " differs from vision_config.image_size=", vs.image_size, " (positions are not resized)"));
  }
  ASSIGN_OR_RETURN(bool qkv_bias, v.BoolOr("qkv_bias", true));
  ASSIGN_OR_RETURN(bool qk_norm, v.BoolOr("qk_normalization", false));
  const std::string norm = v.StringOr("norm_type", "layer_norm");
  if (norm != "layer_norm" && norm != "rms_norm") {
    return absl::InvalidArgumentError(
        absl::StrCat(v.Path("norm_type"), "=\"", norm, "\" must be layer_norm or rms_norm"));
  }
  const int64_t norm_params = norm == "layer_norm" ? 2 : 1;
  ASSIGN_OR_RETURN(double ratio, top.DoubleOr("downsample_ratio", 0.5));
  const double inverse = 1.0 / ratio;
  if (!(ratio > 0 && ratio <= 1) || std::abs(inverse - std::round(inverse)) > 1e-9) {
    return absl::InvalidArgumentError(
        absl::StrCat(top.Path("downsample_ratio"), "=", ratio, " must be 1/n for a whole n"));
  }
  const auto shuffle = static_cast<int64_t>(std::llround(inverse));
  ASSIGN_OR_RETURN(int64_t select, top.IntOr("select_layer", -1, -vs.num_layers, vs.num_layers));
  if (select == 0) {
    return absl::InvalidArgumentError(absl::StrCat(top.Path("select_layer"), "=0 is not a layer"));
  }
  vs.unused_tail_layers = select < 0 ? -select - 1 : vs.num_layers - select;
  const int64_t d = vs.hidden_size;
  const int64_t side = vs.image_size / vs.patch_size;
  if (side % shuffle != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image_size / patch_size = ", side, " is not divisible by 1/downsample_ratio = ", shuffle));
  }
  const int64_t layers = vs.num_layers;
  vs.tower.push_back(VisionTensor("class_embedding", d));
  vs.tower.push_back(VisionTensor("patch_embedding", d, 3 * vs.patch_size * vs.patch_size));
  vs.tower.push_back(VisionTensor("patch_embedding.bias", d));
  vs.tower.push_back(VisionTensor("position_embedding", side * side + 1, d));
  auto layer = [&](const char* name, int64_t out, int64_t in) {
    vs.tower.push_back(
        Tensor{.name = name, .out = out, .in = in, .copies = layers, .role = TensorRole::kVision});
  };
  layer("attn.qkv", 3 * d, d);
  if (qkv_bias) layer("attn.qkv.bias", 3 * d, 1);
  layer("attn.proj", d, d);
  layer("attn.proj.bias", d, 1);
  if (qk_norm) layer("attn.qk_norm", 2 * d * norm_params, 1);
  layer("mlp.fc1", vs.intermediate_size, d);
  layer("mlp.fc1.bias", vs.intermediate_size, 1);
  layer("mlp.fc2", d, vs.intermediate_size);
  layer("mlp.fc2.bias", d, 1);
  layer("norms", 2 * d * norm_params, 1);
  layer("layer_scales", 2 * d, 1);
  const int64_t shuffled = d * shuffle * shuffle;
  vs.projector.push_back(VisionTensor("mlp1.0", 2 * shuffled));  // LayerNorm
  vs.projector.push_back(VisionTensor("mlp1.1", text_hidden, shuffled));
  vs.projector.push_back(VisionTensor("mlp1.1.bias", text_hidden));
  vs.projector.push_back(VisionTensor("mlp1.3", text_hidden, text_hidden));
  vs.projector.push_back(VisionTensor("mlp1.3.bias", text_hidden));
  vs.token_rule = VisionSpec::TokenRule::kTiles;
  vs.fixed_tokens_per_image = side * side / (shuffle * shuffle);
  ASSIGN_OR_RETURN(bool dynamic, top.BoolOr("dynamic_image_size", true));
  ASSIGN_OR_RETURN(vs.max_tiles, top.IntOr("max_dynamic_patch", 12, 1, 256));
  ASSIGN_OR_RETURN(vs.min_tiles, top.IntOr("min_dynamic_patch", 1, 1, vs.max_tiles));
  ASSIGN_OR_RETURN(vs.thumbnail, top.BoolOr("use_thumbnail", true));
  if (!dynamic) vs.min_tiles = vs.max_tiles = 1;
  top.Consume("ps_version");
  top.Consume("template");
  v.Consume("use_flash_attn");
  v.Consume("layer_norm_eps");
  v.Consume("drop_path_rate");
  v.Consume("initializer_factor");
  v.Consume("initializer_range");
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(internvl) {
  registry.AddWrapper({.model_types = {"internvl_chat"},
                       .default_text_type = "qwen2",
                       .text_config_key = "llm_config",
                       .build_vision = InternVision});
}

}  // namespace fleetplan::estimator::internal
