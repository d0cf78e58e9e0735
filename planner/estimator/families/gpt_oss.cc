// gpt-oss: q/k/v/o with biases, one learned attention-sink logit per head, every layer sparse
// (num_local_experts experts with biases, top num_experts_per_tok, default 4, router with bias);
// sliding and full layers from layer_types (transformers models/gpt_oss).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {

FLEETPLAN_FAMILY(gpt_oss) {
  registry.AddText(
      {.model_types = {"gpt_oss"},
       .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
         DecoderTraits traits;
         traits.style = [](const Fields&, DecoderStyle& style, bool&) {
           style.qkv_bias = style.o_bias = true;
           style.attention_sinks = true;
           return absl::OkStatus();
         };
         traits.moe = [](const Fields& g, int64_t, MoeGeometry& moe) -> absl::Status {
           ASSIGN_OR_RETURN(moe.experts, g.Int("num_local_experts", 1, kMaxExperts));
           // gpt-oss configs spell the top-k both ways.
           ASSIGN_OR_RETURN(int64_t per_token, g.IntOr("experts_per_token", 4, 1, kMaxExperts));
           ASSIGN_OR_RETURN(moe.top_k, g.IntOr("num_experts_per_tok", per_token, 1, kMaxExperts));
           ASSIGN_OR_RETURN(moe.expert_inter, g.Int("intermediate_size"));
           moe.expert_bias = moe.router_bias = true;
           std::fill(moe.sparse.begin(), moe.sparse.end(), true);
           return absl::OkStatus();
         };
         return BuildDecoder(f, traits, spec);
       }});
}

}  // namespace fleetplan::estimator::internal
