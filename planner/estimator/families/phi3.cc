// Phi-3 (Phi3ForCausalLM): the llama-like decoder (fused qkv and gate_up have the same elements),
// sliding window on every layer when set (transformers models/phi3).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {

FLEETPLAN_FAMILY(phi3) {
  registry.AddText(
      {.model_types = {"phi3"}, .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
         // LongRoPE's pre-extension context (Phi-3-128k, Phi-3.5): rotary only, no memory.
         f.Consume("original_max_position_embeddings");
         return BuildDecoder(f, {.style = BiasesFromConfig, .window_pattern = AllLayersSlide},
                             spec);
       }});
}

}  // namespace fleetplan::estimator::internal
