// Mistral-3 (Mistral-Small-3.1/3.2, model_type "mistral3", transformers models/mistral3): a
// Pixtral tower (BuildPixtralTower) read at vision_feature_layer, and Mistral3MultiModalProjector:
// an RMSNorm of the tower's width, the patch merger (spatial_merge_size^2 patches concatenated,
// Linear to the tower's width, no bias), linear_1 to the language model's width and linear_2,
// biased as multimodal_projector_bias says (default false). Images keep their resolution up to
// image_size on the longest edge; every spatial_merge_size^2 patches are one token, and each row
// of tokens ends in [IMG_BREAK] ([IMG_END] for the last).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::StatusOr<VisionSpec> Mistral3Vision(const Fields& v, const Fields& top, const std::string&,
                                          int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", "pixtral");
  if (vs.model_type != "pixtral") {
    return absl::InvalidArgumentError(absl::StrCat(v.Path("model_type"), "=\"", vs.model_type,
                                                   "\": Mistral-3's tower is pixtral"));
  }
  ASSIGN_OR_RETURN(int64_t merge, top.IntOr("spatial_merge_size", 2, 1, 16));
  RETURN_IF_ERROR(BuildPixtralTower(v, merge, vs));
  ASSIGN_OR_RETURN(const int64_t feature_layers, ReadVisionFeatureLayer(top, -1, vs));
  ASSIGN_OR_RETURN(bool bias, top.BoolOr("multimodal_projector_bias", false));
  const int64_t d = vs.hidden_size;
  vs.projector.push_back(VisionTensor("multi_modal_projector.norm", d));
  vs.projector.push_back(VisionTensor("patch_merger.merging_layer", d, d * merge * merge));
  vs.projector.push_back(VisionTensor("linear_1", text_hidden, d * feature_layers));
  if (bias) vs.projector.push_back(VisionTensor("linear_1.bias", text_hidden));
  vs.projector.push_back(VisionTensor("linear_2", text_hidden, text_hidden));
  if (bias) vs.projector.push_back(VisionTensor("linear_2.bias", text_hidden));
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(mistral3) {
  registry.AddWrapper({.model_types = {"mistral3"},
                       .default_text_type = "mistral",
                       .build_vision = Mistral3Vision});
}

}  // namespace fleetplan::estimator::internal
