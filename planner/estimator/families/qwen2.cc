// Qwen2 / Qwen2.5 (and the language model of Qwen2-VL / Qwen2.5-VL) and Qwen1.5/Qwen2 MoE: q/k/v
// with biases, sliding window on the layers from max_window_layers on when use_sliding_window;
// MoE layers every decoder_sparse_step with a gated shared expert (transformers models/qwen2,
// models/qwen2_moe).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status QkvBias(const Fields&, DecoderStyle& style, bool&) {
  style.qkv_bias = true;
  return absl::OkStatus();
}

}  // namespace

FLEETPLAN_FAMILY(qwen2) {
  registry.AddText({.model_types = {"qwen2"},
                    .aliases = {"qwen2_vl", "qwen2_5_vl", "qwen2_vl_text", "qwen2_5_vl_text"},
                    .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
                      return BuildDecoder(
                          f, {.style = QkvBias, .window_pattern = QwenWindowPattern}, spec);
                    }});
  registry.AddText({.model_types = {"qwen2_moe"},
                    .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
                      DecoderTraits traits{.style = QkvBias, .window_pattern = QwenWindowPattern};
                      traits.moe = [](const Fields& g, int64_t layers, MoeGeometry& moe) {
                        return QwenMoeGeometry(g, layers, /*shared_expert=*/true, moe);
                      };
                      return BuildDecoder(f, traits, spec);
                    }});
}

}  // namespace fleetplan::estimator::internal
