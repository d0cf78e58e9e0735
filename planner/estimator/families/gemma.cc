// Gemma, Gemma-2, Gemma-3 (text) and the Gemma-3 vision-language wrapper: tied embeddings by
// default, final-logit softcapping; Gemma-2/3 sandwich norms (4 per layer), Gemma-3 q/k norms.
// Sliding windows: Gemma-2 every other layer from the first, Gemma-3 all but every
// sliding_window_pattern-th (default 6) (transformers models/gemma, gemma2, gemma3). The Gemma-3
// wrapper: a SigLIP tower without the pooling head, an RMS-normed linear projector, a fixed 256
// (mm_tokens_per_image) tokens per image.

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status Gemma2Windows(const Fields&, int64_t window, std::vector<int64_t>& windows) {
  for (size_t i = 0; i < windows.size(); i += 2) windows[i] = window;
  return absl::OkStatus();
}

absl::Status Gemma3Windows(const Fields& f, int64_t window, std::vector<int64_t>& windows) {
  ASSIGN_OR_RETURN(int64_t pattern, f.IntOr("sliding_window_pattern", 6, 1, kMaxLayers));
  for (size_t i = 0; i < windows.size(); ++i) {
    if ((static_cast<int64_t>(i) + 1) % pattern != 0) windows[i] = window;
  }
  return absl::OkStatus();
}

DecoderTraits GemmaTraits(int norms, bool qk_norm) {
  DecoderTraits traits{.softcapping = true};
  traits.style = [norms, qk_norm](const Fields&, DecoderStyle& style, bool& tie_default) {
    tie_default = true;
    style.norms_per_layer = norms;
    style.qk_norm = qk_norm;
    return absl::OkStatus();
  };
  return traits;
}

absl::StatusOr<VisionSpec> Gemma3Vision(const Fields& v, const Fields& top, const std::string&,
                                        int64_t text_hidden) {
  VisionSpec vs;
  vs.model_type = v.StringOr("model_type", "siglip_vision_model");
  RETURN_IF_ERROR(BuildSiglipOrClipTower(v, /*use_head_default=*/false, vs));
  ASSIGN_OR_RETURN(vs.fixed_tokens_per_image, top.IntOr("mm_tokens_per_image", 256));
  vs.token_rule = VisionSpec::TokenRule::kFixed;
  vs.projector.push_back(VisionTensor("mm_input_projection", text_hidden, vs.hidden_size));
  vs.projector.push_back(VisionTensor("mm_soft_emb_norm", vs.hidden_size));
  return vs;
}

}  // namespace

FLEETPLAN_FAMILY(gemma) {
  registry.AddText(
      {.model_types = {"gemma"}, .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
         return BuildDecoder(f, GemmaTraits(2, false), spec);
       }});
  registry.AddText({.model_types = {"gemma2"},
                    .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
                      DecoderTraits traits = GemmaTraits(4, false);
                      traits.window_pattern = Gemma2Windows;
                      return BuildDecoder(f, traits, spec);
                    }});
  registry.AddText({.model_types = {"gemma3_text", "gemma3"},
                    .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
                      DecoderTraits traits = GemmaTraits(4, true);
                      traits.window_pattern = Gemma3Windows;
                      return BuildDecoder(f, traits, spec);
                    }});
  registry.AddWrapper({.model_types = {"gemma3"},
                       .default_text_type = "gemma3_text",
                       .build_vision = Gemma3Vision});
}

}  // namespace fleetplan::estimator::internal
