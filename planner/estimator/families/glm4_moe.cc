// GLM-4.5 / GLM-4.6 (model_type "glm4_moe", transformers models/glm4_moe/modeling_glm4_moe.py):
// grouped-query attention with q/k/v biases (attention_bias) and an unbiased o_proj, optional
// per-head q/k RMSNorm (use_qk_norm), partial rotary (partial_rotary_factor); dense MLPs of
// intermediate_size in the first first_k_dense_replace layers, then MoE layers of n_routed_experts
// gated experts of moe_intermediate_size (top num_experts_per_tok) with a shared expert of
// n_shared_experts x moe_intermediate_size and the DeepSeek-V3 router (weight [E, H] plus the
// persistent fp32 e_score_correction_bias buffer [E]). The num_nextn_predict_layers MTP layers
// are not part of the transformers model; vLLM loads them as the MTP drafter only
// (ReadMtpModule).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status Glm4MoeStyle(const Fields& f, DecoderStyle& style, bool&) {
  ASSIGN_OR_RETURN(style.qkv_bias, f.BoolOr("attention_bias", false));
  style.o_bias = false;
  ASSIGN_OR_RETURN(style.qk_norm, f.BoolOr("use_qk_norm", false));
  return absl::OkStatus();
}

absl::Status Glm4MoeGeometry(const Fields& f, int64_t layers, MoeGeometry& moe) {
  ASSIGN_OR_RETURN(moe.experts, f.Int("n_routed_experts", 1, kMaxExperts));
  ASSIGN_OR_RETURN(moe.top_k, f.Int("num_experts_per_tok", 1, kMaxExperts));
  ASSIGN_OR_RETURN(moe.expert_inter, f.Int("moe_intermediate_size"));
  ASSIGN_OR_RETURN(moe.dense_inter, f.Int("intermediate_size"));
  ASSIGN_OR_RETURN(int64_t shared, f.IntOr("n_shared_experts", 0, 0, kMaxExperts));
  moe.shared_inter = shared * moe.expert_inter;
  // The score-correction bias is one value per expert, like a router bias.
  moe.router_bias = true;
  ASSIGN_OR_RETURN(int64_t first_dense, f.IntOr("first_k_dense_replace", 0, 0, kMaxLayers));
  // Routing details that change which experts run, not their memory.
  f.Consume("n_group");
  f.Consume("topk_group");
  f.Consume("norm_topk_prob");
  f.Consume("topk_method");
  for (int64_t i = 0; i < layers; ++i) moe.sparse[static_cast<size_t>(i)] = i >= first_dense;
  return absl::OkStatus();
}

}  // namespace

FLEETPLAN_FAMILY(glm4_moe) {
  registry.AddText({.model_types = {"glm4_moe"},
                    .build = [](const Fields& f, const std::string&, ModelSpec& spec) {
                      DecoderTraits traits{.style = Glm4MoeStyle, .moe = Glm4MoeGeometry};
                      RETURN_IF_ERROR(BuildDecoder(f, traits, spec));
                      return ReadMtpModule(f, spec);
                    }});
}

}  // namespace fleetplan::estimator::internal
