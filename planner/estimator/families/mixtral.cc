// Mixtral (MixtralForCausalLM): every layer sparse with num_local_experts gated experts of
// intermediate_size, top num_experts_per_tok (default 2), sliding window on every layer when set
// (transformers models/mixtral).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {

FLEETPLAN_FAMILY(mixtral) {
  registry.AddText(
      {.model_types = {"mixtral"},
       .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
         DecoderTraits traits{.style = BiasesFromConfig, .window_pattern = AllLayersSlide};
         traits.moe = [](const Fields& g, int64_t, MoeGeometry& moe) -> absl::Status {
           ASSIGN_OR_RETURN(moe.experts, g.Int("num_local_experts", 1, kMaxExperts));
           ASSIGN_OR_RETURN(moe.top_k, g.IntOr("num_experts_per_tok", 2, 1, kMaxExperts));
           ASSIGN_OR_RETURN(moe.expert_inter, g.Int("intermediate_size"));
           std::fill(moe.sparse.begin(), moe.sparse.end(), true);
           return absl::OkStatus();
         };
         return BuildDecoder(f, traits, spec);
       }});
}

}  // namespace fleetplan::estimator::internal
