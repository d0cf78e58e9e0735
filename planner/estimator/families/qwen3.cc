// Qwen3 and Qwen3-MoE: per-head RMSNorm on q and k, biases as attention_bias says; MoE without a
// shared expert (transformers models/qwen3, models/qwen3_moe).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status Qwen3Style(const Fields& f, DecoderStyle& style, bool&) {
  style.qk_norm = true;
  ASSIGN_OR_RETURN(style.qkv_bias, f.BoolOr("attention_bias", false));
  return absl::OkStatus();
}

}  // namespace

FLEETPLAN_FAMILY(qwen3) {
  registry.AddText(
      {.model_types = {"qwen3"}, .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
         return BuildDecoder(f, {.style = Qwen3Style, .window_pattern = QwenWindowPattern}, spec);
       }});
  registry.AddText({.model_types = {"qwen3_moe"},
                    .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
                      DecoderTraits traits{.style = Qwen3Style,
                                           .window_pattern = QwenWindowPattern};
                      traits.moe = [](const Fields& g, int64_t layers, MoeGeometry& moe) {
                        return QwenMoeGeometry(g, layers, /*shared_expert=*/false, moe);
                      };
                      return BuildDecoder(f, traits, spec);
                    }});
}

}  // namespace fleetplan::estimator::internal
