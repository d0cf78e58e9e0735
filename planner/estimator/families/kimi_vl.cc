// Kimi-VL (custom code): the MoonViT tower — LayerNorm pre-norm blocks, fused qkv with bias,
// fc0/fc1 MLP, a learned 2-D position embedding — and a 2x2 patch merge into a two-layer projector,
// on a DeepSeek-V3-style MoE language model.

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::StatusOr<VisionSpec> MoonVit(const Fields& v, const Fields&, const std::string&,
                                   int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", "moonvit");
  ASSIGN_OR_RETURN(vs.hidden_size, v.Int("hidden_size"));
  ASSIGN_OR_RETURN(vs.intermediate_size, v.Int("intermediate_size"));
  ASSIGN_OR_RETURN(vs.num_layers, v.Int("num_hidden_layers", 1, kMaxLayers));
  ASSIGN_OR_RETURN(vs.num_heads, v.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(vs.patch_size, v.Int("patch_size", 1, 4096));
  ASSIGN_OR_RETURN(int64_t pos_h, v.IntOr("init_pos_emb_height", 64));
  ASSIGN_OR_RETURN(int64_t pos_w, v.IntOr("init_pos_emb_width", 64));
  const int64_t d = vs.hidden_size;
  vs.spatial_merge = 2;
  vs.token_rule = VisionSpec::TokenRule::kPatchesMerged;
  vs.tower.push_back(VisionTensor("patch_embed", d, 3 * vs.patch_size * vs.patch_size));
  vs.tower.push_back(VisionTensor("patch_embed.bias", d));
  vs.tower.push_back(VisionTensor("pos_emb", pos_h * pos_w, d));
  AddVisionLayer(vs.tower, d, vs.intermediate_size, vs.num_layers, false, false);
  vs.tower.push_back(VisionTensor("final_layernorm", 2 * d));
  const int64_t merged = d * 4;
  AddPatchMerger(vs, /*qwen_names=*/false, 2 * d, merged, text_hidden);
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(kimi_vl) {
  registry.AddWrapper(
      {.model_types = {"kimi_vl"},
       .default_text_type = "deepseek_v3",
       .build_vision = MoonVit,
       .note = "kimi_vl is custom code: MoonViT tower and projector sizes follow the published "
               "modeling file, parameter count not verified against transformers"});
}

}  // namespace fleetplan::estimator::internal
