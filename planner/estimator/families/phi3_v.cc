// Phi-3-vision and Phi-3.5-vision (model_type "phi3_v", remote code modeling_phi3_v.py and
// image_embedding_phi3_v.py): a flat Phi-3 config, and an image embedding whose CLIP tower is
// not described by the config but fixed in the code (CLIP_VIT_LARGE_PATCH14_336_CONFIG: CLIP
// ViT-L/14 at 336 px, 24 layers of 1024, MLP 4096), read at img_processor.layer_idx (-2: the last
// layer is unused). With use_hd_transform the image is HD-transformed into 336-px crops plus a
// global view (ImageTiles); each crop's 24 x 24 patches are merged 2 x 2 into 144 tokens of
// 4 x 1024, with the learnable separators glb_GN and sub_GN, and projected by a two-layer MLP
// (4096 -> hidden -> hidden, biases).
//
// num_crops is a processor setting (preprocessor_config.json), not in config.json: Phi-3-vision
// ships 16, Phi-3.5-vision 4. A config may carry it as a top-level "num_crops"; without it the
// larger, 16, is assumed and said, so an estimate is never short for lack of it.

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

// CLIP_VIT_LARGE_PATCH14_336_CONFIG in image_embedding_phi3_v.py.
const json& ClipLarge336() {
  static const json* config =
      new json{{"hidden_size", 1024},       {"intermediate_size", 4096}, {"num_hidden_layers", 24},
               {"num_attention_heads", 16}, {"patch_size", 14},          {"image_size", 336}};
  return *config;
}

absl::StatusOr<VisionSpec> Phi3Vision(const Fields& img, const Fields& top, const std::string&,
                                      int64_t text_hidden) {
  const std::string name = img.StringOr("name", "");
  const std::string model_name = img.StringOr("model_name", "");
  if (name != "clip_vision_model" || model_name != "openai/clip-vit-large-patch14-336") {
    return absl::InvalidArgumentError(absl::StrCat(
        img.Path("name"), "=\"", name, "\", ", img.Path("model_name"), "=\"", model_name,
        "\": Phi-3-vision's image embedding is clip_vision_model with "
        "openai/clip-vit-large-patch14-336 (the only tower its code builds)"));
  }
  VisionSpec vs;
  vs.model_type = "clip_vision_model";
  const Fields clip(ClipLarge336(), "img_processor(CLIP-L/336).",
                    std::make_shared<std::set<std::string>>());
  RETURN_IF_ERROR(BuildSiglipOrClipTower(clip, /*use_head_default=*/false, vs));
  ASSIGN_OR_RETURN(int64_t dim_out, img.IntOr("image_dim_out", vs.hidden_size));
  if (dim_out != vs.hidden_size) {
    return absl::InvalidArgumentError(absl::StrCat(img.Path("image_dim_out"), "=", dim_out,
                                                   " is not CLIP-L's width ", vs.hidden_size));
  }
  ASSIGN_OR_RETURN(int64_t layer, img.IntOr("layer_idx", -2, -vs.num_layers - 1, vs.num_layers));
  vs.unused_tail_layers = layer < 0 ? -layer - 1 : vs.num_layers - layer;
  const std::string feature = img.StringOr("type_feature", "patch");
  if (feature != "patch" && feature != "cls_patch") {
    return absl::InvalidArgumentError(
        absl::StrCat(img.Path("type_feature"), "=\"", feature, "\" must be patch or cls_patch"));
  }
  const int64_t side = vs.image_size / vs.patch_size;  // 24
  ASSIGN_OR_RETURN(int64_t tokens, img.IntOr("num_img_tokens", (side / 2) * (side / 2)));
  if (tokens != (side / 2) * (side / 2)) {
    return absl::InvalidArgumentError(absl::StrCat(img.Path("num_img_tokens"), "=", tokens,
                                                   " is not the 2 x 2-merged ", side, " x ", side,
                                                   " patches (", (side / 2) * (side / 2), ")"));
  }
  const json* embd = top.Object("embd_layer");
  if (embd == nullptr) {
    return absl::InvalidArgumentError("embd_layer is missing for model_type=\"phi3_v\"");
  }
  const Fields e = top.Child(*embd, "embd_layer");
  ASSIGN_OR_RETURN(bool hd, e.BoolOr("use_hd_transform", false));
  ASSIGN_OR_RETURN(bool separators, e.BoolOr("with_learnable_separator", false));
  const std::string projection = e.StringOr("projection_cls", "linear");
  const std::string embedding = e.StringOr("embedding_cls", "image");
  if (!hd || !separators || projection != "mlp" || embedding != "image") {
    return absl::InvalidArgumentError(absl::StrCat(
        "embd_layer (use_hd_transform=", hd, ", with_learnable_separator=", separators,
        ", projection_cls=\"", projection, "\", embedding_cls=\"", embedding,
        "\"): only the HD-transform image embedding with separators and the MLP projection "
        "(Phi-3-vision, Phi-3.5-vision) is modelled"));
  }
  e.Consume("hd_transform_order");
  const int64_t merged = 4 * vs.hidden_size;
  vs.projector.push_back(VisionTensor("glb_GN", merged));
  vs.projector.push_back(VisionTensor("sub_GN", merged));
  vs.projector.push_back(VisionTensor("img_projection.0", text_hidden, merged));
  vs.projector.push_back(VisionTensor("img_projection.0.bias", text_hidden));
  vs.projector.push_back(VisionTensor("img_projection.2", text_hidden, text_hidden));
  vs.projector.push_back(VisionTensor("img_projection.2.bias", text_hidden));
  vs.token_rule = VisionSpec::TokenRule::kHdCrops;
  vs.fixed_tokens_per_image = tokens;
  if (top.Has("num_crops")) {
    ASSIGN_OR_RETURN(vs.max_tiles, top.IntOr("num_crops", 16, 1, 256));
  } else {
    vs.max_tiles = 16;
    vs.note =
        "phi3_v: num_crops is not in config.json; 16 (Phi-3-vision's preprocessor_config.json) is "
        "assumed, Phi-3.5-vision ships 4: set num_crops in the config for fewer image tokens";
  }
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(phi3_v) {
  registry.AddWrapper({.model_types = {"phi3_v"},
                       .default_text_type = "phi3",
                       .flat_text_type = [](const Fields&) -> absl::StatusOr<std::string> {
                         return std::string("phi3");
                       },
                       .vision_config_key = "img_processor",
                       .build_vision = Phi3Vision});
}

}  // namespace fleetplan::estimator::internal
