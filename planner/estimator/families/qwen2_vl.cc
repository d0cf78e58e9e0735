// Qwen2-VL and Qwen2.5-VL wrappers: a dynamic-resolution ViT (depth layers over 14-px patches of
// two frames, Qwen2.5: gated RMS-normed MLP blocks) and the patch merger (2x2 patches into one LM
// token), on top of the Qwen2 language model (transformers models/qwen2_vl, models/qwen2_5_vl).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::StatusOr<VisionSpec> QwenVision(const Fields& v, const Fields&, const std::string& wrapper,
                                      int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", wrapper);
  ASSIGN_OR_RETURN(vs.num_layers, v.IntOr("depth", 32, 1, kMaxLayers));
  ASSIGN_OR_RETURN(vs.hidden_size, v.IntOr("hidden_size", 1280));
  ASSIGN_OR_RETURN(vs.num_heads, v.IntOr("num_heads", 16, 1, kMaxHeads));
  ASSIGN_OR_RETURN(vs.patch_size, v.IntOr("patch_size", 14, 1, 4096));
  ASSIGN_OR_RETURN(vs.spatial_merge, v.IntOr("spatial_merge_size", 2, 1, 64));
  ASSIGN_OR_RETURN(int64_t temporal, v.IntOr("temporal_patch_size", 2, 1, 64));
  ASSIGN_OR_RETURN(int64_t in_chans, v.IntOr("in_chans", 3, 1, 64));
  ASSIGN_OR_RETURN(int64_t out_hidden, v.IntOr("out_hidden_size", text_hidden));
  const bool gated = wrapper == "qwen2_5_vl";
  if (gated) {
    ASSIGN_OR_RETURN(vs.intermediate_size, v.IntOr("intermediate_size", 3420));
  } else {
    ASSIGN_OR_RETURN(int64_t ratio, v.IntOr("mlp_ratio", 4));
    vs.intermediate_size = vs.hidden_size * ratio;
  }
  vs.token_rule = VisionSpec::TokenRule::kPatchesMerged;
  const int64_t d = vs.hidden_size;
  vs.tower.push_back(
      VisionTensor("patch_embed", d, in_chans * temporal * vs.patch_size * vs.patch_size));
  AddVisionLayer(vs.tower, d, vs.intermediate_size, vs.num_layers, gated, /*rms_norm=*/gated);
  const int64_t merged = d * vs.spatial_merge * vs.spatial_merge;
  AddPatchMerger(vs, /*qwen_names=*/true, gated ? d : 2 * d, merged, out_hidden);
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(qwen2_vl) {
  registry.AddWrapper({.model_types = {"qwen2_vl", "qwen2_5_vl"},
                       .default_text_type = "qwen2",
                       .build_vision = QwenVision});
}

}  // namespace fleetplan::estimator::internal
