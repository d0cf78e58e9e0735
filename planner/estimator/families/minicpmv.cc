// MiniCPM-V 2.5 and 2.6 (model_type "minicpmv", remote code modeling_minicpmv.py / resampler.py;
// vLLM models/minicpmv.py MiniCPMV2_5 and MiniCPMV2_6): a flat config whose top level is the
// language model (2.5: Llama-3, 2.6: Qwen2), a SigLIP-shaped tower (Idefics2VisionTransformer in
// 2.5, the navit SiglipVisionTransformer in 2.6: a 14-px patch convolution with bias, learned
// positions for (image_size / patch)^2 patches, post LayerNorm, no pooling head), the last layer
// dropped when drop_vision_last_layer, and the perceiver resampler (Resampler2_5): query_num
// learned queries, kv_proj from the tower's width when it differs, nn.MultiheadAttention with
// embed_dim / 128 heads, three LayerNorms and a square proj. Every image is resized and, when
// larger than scale_resolution^2, cut into a grid of slices (ImageTiles, ImageTokens); each pass
// becomes query_num language-model tokens.
//
// The version comes from the config's version field or, in the configs that predate it, as
// vLLM's get_version_by_config infers it (hidden 2304 with 64 queries: 2.0, else 2.5). MiniCPM-V
// 2.0 (a timm SigLIP tower over the MiniCPM language model) and 4.x are refused by name.

#include <cmath>

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::StatusOr<double> MiniCpmVersion(const Fields& top) {
  ASSIGN_OR_RETURN(double version, top.DoubleOr("version", 0));
  if (version != 0) return version;
  ASSIGN_OR_RETURN(int64_t hidden, top.IntOr("hidden_size", 0, 0));
  ASSIGN_OR_RETURN(int64_t queries, top.IntOr("query_num", 64, 1, 65536));
  return hidden == 2304 && queries == 64 ? 2.0 : 2.5;
}

absl::StatusOr<std::string> MiniCpmText(const Fields& top) {
  ASSIGN_OR_RETURN(double version, MiniCpmVersion(top));
  if (std::abs(version - 2.5) < 1e-9) return std::string("llama");
  if (std::abs(version - 2.6) < 1e-9) return std::string("qwen2");
  return absl::InvalidArgumentError(
      absl::StrCat("model_type=\"minicpmv\" version ", version,
                   " is not modelled (2.5 and 2.6 are: Llama-3 or Qwen2 with a SigLIP tower and "
                   "the 2.5 resampler)"));
}

absl::StatusOr<VisionSpec> MiniCpmVision(const Fields& v, const Fields& top, const std::string&,
                                         int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", "idefics2");
  if (vs.model_type != "idefics2" && vs.model_type != "siglip" &&
      vs.model_type != "siglip_vision_model") {
    return absl::InvalidArgumentError(
        absl::StrCat(v.Path("model_type"), "=\"", vs.model_type,
                     "\": MiniCPM-V's tower is idefics2 (2.5) or siglip (2.6)"));
  }
  RETURN_IF_ERROR(BuildSiglipOrClipTower(v, /*use_head_default=*/false, vs));
  ASSIGN_OR_RETURN(bool drop_last, top.BoolOr("drop_vision_last_layer", false));
  if (drop_last) {
    // The layer is deleted from the module (vpm.encoder.layers[:-1]): no weights at all.
    for (Tensor& t : vs.tower) {
      if (t.copies == vs.num_layers) t.copies = vs.num_layers - 1;
    }
    vs.num_layers -= 1;
  }
  ASSIGN_OR_RETURN(const int64_t queries, top.IntOr("query_num", 64, 1, 65536));
  const int64_t d = vs.hidden_size;
  const int64_t e = text_hidden;
  vs.projector.push_back(VisionTensor("resampler.query", queries, e));
  if (d != e) vs.projector.push_back(VisionTensor("resampler.kv_proj", e, d));
  vs.projector.push_back(VisionTensor("resampler.attn.in_proj", 3 * e, e));
  vs.projector.push_back(VisionTensor("resampler.attn.in_proj_bias", 3 * e));
  vs.projector.push_back(VisionTensor("resampler.attn.out_proj", e, e));
  vs.projector.push_back(VisionTensor("resampler.attn.out_proj.bias", e));
  vs.projector.push_back(VisionTensor("resampler.ln_q_kv_post", 3 * 2 * e));
  vs.projector.push_back(VisionTensor("resampler.proj", e, e));
  vs.token_rule = VisionSpec::TokenRule::kSlices;
  vs.fixed_tokens_per_image = queries;
  // slice_config (2.5's processor settings) or the top-level fields 2.6 writes.
  const json* slice = top.Object("slice_config");
  if (slice != nullptr) {
    const Fields s = top.Child(*slice, "slice_config");
    ASSIGN_OR_RETURN(vs.max_tiles, s.IntOr("max_slice_nums", 9, 1, 256));
    ASSIGN_OR_RETURN(vs.slice_resolution, s.IntOr("scale_resolution", 448, vs.patch_size, 65536));
    // A top-level value beside slice_config (2.6's place for it) must agree with it.
    if (top.Has("max_slice_nums")) {
      ASSIGN_OR_RETURN(int64_t also, top.IntOr("max_slice_nums", vs.max_tiles, 1, 256));
      if (also != vs.max_tiles) {
        return absl::InvalidArgumentError(absl::StrCat(
            top.Path("max_slice_nums"), "=", also, " differs from ", s.Path("max_slice_nums"), "=",
            vs.max_tiles, ": which the processor uses is unclear"));
      }
    }
    ASSIGN_OR_RETURN(int64_t patch, s.IntOr("patch_size", vs.patch_size, 1, 4096));
    if (patch != vs.patch_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(s.Path("patch_size"), "=", patch,
                       " differs from vision_config.patch_size=", vs.patch_size));
    }
    s.Consume("model_type");
  } else {
    ASSIGN_OR_RETURN(vs.max_tiles, top.IntOr("max_slice_nums", 9, 1, 256));
    ASSIGN_OR_RETURN(vs.slice_resolution, top.IntOr("scale_resolution", 448, vs.patch_size, 65536));
  }
  ASSIGN_OR_RETURN(bool slice_mode, top.BoolOr("slice_mode", true));
  if (!slice_mode) vs.max_tiles = 1;
  // The processor resizes to scale_resolution; image_size is the resolution it was trained at.
  top.Consume("image_size");
  top.Consume("patch_size");
  top.Consume("batch_vision_input");
  top.Consume("mm_use_im_start_end");
  top.Consume("use_image_id");
  v.Consume("layer_norm_eps");
  v.Consume("hidden_act");
  v.Consume("num_channels");
  v.Consume("attention_dropout");
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(minicpmv) {
  registry.AddWrapper({.model_types = {"minicpmv"},
                       .default_text_type = "llama",
                       .flat_text_type = MiniCpmText,
                       .build_vision = MiniCpmVision});
}

}  // namespace fleetplan::estimator::internal
