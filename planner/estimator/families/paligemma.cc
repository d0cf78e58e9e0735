// PaliGemma: a SigLIP tower (no pooling head) and one linear projector with bias from the tower's
// width to vision_config.projection_dim, on a Gemma language model; a fixed (image/patch)^2 tokens
// per image (transformers models/paligemma, PaliGemmaMultiModalProjector).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::StatusOr<VisionSpec> PaliGemmaVision(const Fields& v, const Fields&, const std::string&,
                                           int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", "siglip_vision_model");
  RETURN_IF_ERROR(BuildSiglipOrClipTower(v, /*use_head_default=*/false, vs));
  ASSIGN_OR_RETURN(int64_t projection, v.IntOr("projection_dim", text_hidden));
  vs.token_rule = VisionSpec::TokenRule::kFixed;
  vs.projector.push_back(VisionTensor("multi_modal_projector.linear", projection, vs.hidden_size));
  vs.projector.push_back(VisionTensor("multi_modal_projector.linear.bias", projection));
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(paligemma) {
  registry.AddWrapper({.model_types = {"paligemma"},
                       .default_text_type = "gemma",
                       .build_vision = PaliGemmaVision,
                       .note =
                           "paligemma: parameter count checked against the module layout, not a "
                           "published count"});
}

}  // namespace fleetplan::estimator::internal
