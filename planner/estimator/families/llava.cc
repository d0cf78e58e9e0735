// LLaVA-1.5 and LLaVA-NeXT (also Granite-Vision): a CLIP or SigLIP tower, a two-layer MLP
// projector over the concatenated vision_feature_layer outputs; LLaVA-NeXT adds the image newline
// and anyres tiling over image_grid_pinpoints (transformers models/llava, models/llava_next).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::StatusOr<VisionSpec> LlavaVision(const Fields& v, const Fields& top,
                                       const std::string& wrapper, int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", "clip_vision_model");
  if (vs.model_type == "pixtral") {
    // Pixtral-12B (LLaVA layout): a Pixtral tower without merging, then the LLaVA projector.
    RETURN_IF_ERROR(BuildPixtralTower(v, /*merge=*/1, vs));
  } else if (vs.model_type == "clip_vision_model" || vs.model_type == "siglip_vision_model") {
    RETURN_IF_ERROR(BuildSiglipOrClipTower(v, /*use_head_default=*/true, vs));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(v.Path("model_type"), "=\"", vs.model_type,
                     "\": LLaVA's tower is clip_vision_model, siglip_vision_model or pixtral"));
  }
  const bool clip = vs.model_type == "clip_vision_model";
  const int64_t d = vs.hidden_size;
  ASSIGN_OR_RETURN(const int64_t feature_layers, ReadVisionFeatureLayer(top, -2, vs));
  ASSIGN_OR_RETURN(bool proj_bias, top.BoolOr("multimodal_projector_bias", true));
  vs.projector.push_back(VisionTensor("linear_1", text_hidden, d * feature_layers));
  if (proj_bias) vs.projector.push_back(VisionTensor("linear_1.bias", text_hidden));
  vs.projector.push_back(VisionTensor("linear_2", text_hidden, text_hidden));
  if (proj_bias) vs.projector.push_back(VisionTensor("linear_2.bias", text_hidden));
  const std::string strategy = top.StringOr("vision_feature_select_strategy", "default");
  if (strategy == "full" && clip) vs.fixed_tokens_per_image += 1;  // the class token
  if (vs.model_type == "pixtral") {
    if (wrapper != "llava") {
      return absl::InvalidArgumentError(
          absl::StrCat("a pixtral tower under model_type=\"", wrapper, "\" is not modelled"));
    }
    return vs;  // kPixtral: native resolution, no anyres tiling
  }
  if (wrapper != "llava_next") {
    vs.token_rule = VisionSpec::TokenRule::kFixed;
    return vs;
  }
  ASSIGN_OR_RETURN(bool newline, top.BoolOr("use_image_newline_parameter", true));
  if (newline) vs.projector.push_back(VisionTensor("image_newline", text_hidden));
  vs.image_newline = newline;
  vs.token_rule = VisionSpec::TokenRule::kLlavaNext;
  ASSIGN_OR_RETURN(const json* pins, top.OptionalArray("image_grid_pinpoints"));
  if (pins != nullptr) {
    for (const json& p : *pins) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_number_integer() ||
          !p[1].is_number_integer() || p[0].get<int64_t>() <= 0 || p[1].get<int64_t>() <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(top.Path("image_grid_pinpoints"), " entry ",
                                                       Shown(p), " must be [height, width] > 0"));
      }
      vs.grid_pinpoints.emplace_back(p[0].get<int64_t>(), p[1].get<int64_t>());
    }
  }
  if (vs.grid_pinpoints.empty()) vs.grid_pinpoints = {{vs.image_size, vs.image_size}};
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(llava) {
  registry.AddWrapper({.model_types = {"llava", "llava_next"},
                       .default_text_type = "llama",
                       .build_vision = LlavaVision});
}

}  // namespace fleetplan::estimator::internal
