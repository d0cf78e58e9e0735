// Llama (LlamaForCausalLM), Granite and Mistral: the plain llama-like decoder. Biases as the config
// says (attention_bias, mlp_bias); Mistral slides every layer when sliding_window is set
// (transformers models/llama, models/granite, models/mistral).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {

FLEETPLAN_FAMILY(llama) {
  registry.AddText({.model_types = {"llama", "granite"},
                    .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
                      return BuildDecoder(f, {.style = BiasesFromConfig}, spec);
                    }});
  registry.AddText({.model_types = {"mistral"},
                    .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
                      return BuildDecoder(
                          f, {.style = BiasesFromConfig, .window_pattern = AllLayersSlide}, spec);
                    }});
}

}  // namespace fleetplan::estimator::internal
