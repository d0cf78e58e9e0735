// DeepSeek-V2 / V3 (and the language model of Kimi-VL): multi-head latent attention (a q LoRA when
// q_lora_rank is set, the kv latent kv_lora_rank + qk_rope_head_dim replicated on every TP rank)
// and MoE layers from first_k_dense_replace on, every moe_layer_freq, with shared experts; V3 adds
// the router's score-correction bias (transformers models/deepseek_v2, models/deepseek_v3).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status BuildDeepseek(const Fields& f, const std::string& type, ModelSpec& spec) {
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  // MLA caches one latent per token shared by all heads: num_key_value_heads changes nothing.
  f.Consume("num_key_value_heads");
  ASSIGN_OR_RETURN(int64_t inter, f.Int("intermediate_size"));
  ASSIGN_OR_RETURN(spec.max_position_embeddings,
                   f.IntOr("max_position_embeddings", 4096, 1, kMaxPositions));
  ASSIGN_OR_RETURN(int64_t q_lora, f.IntOr("q_lora_rank", 0, 0));
  ASSIGN_OR_RETURN(int64_t kv_lora, f.Int("kv_lora_rank"));
  ASSIGN_OR_RETURN(int64_t nope, f.Int("qk_nope_head_dim", 0));
  ASSIGN_OR_RETURN(int64_t rope, f.Int("qk_rope_head_dim"));
  ASSIGN_OR_RETURN(int64_t v_dim, f.Int("v_head_dim"));
  ASSIGN_OR_RETURN(int64_t experts, f.IntOr("n_routed_experts", 0, 0, kMaxExperts));
  ASSIGN_OR_RETURN(int64_t shared, f.IntOr("n_shared_experts", 0, 0, kMaxExperts));
  ASSIGN_OR_RETURN(int64_t top_k, f.IntOr("num_experts_per_tok", 0, 0, kMaxExperts));
  ASSIGN_OR_RETURN(int64_t moe_inter, f.IntOr("moe_intermediate_size", inter));
  ASSIGN_OR_RETURN(int64_t first_dense, f.IntOr("first_k_dense_replace", 0, 0, kMaxLayers));
  ASSIGN_OR_RETURN(int64_t freq, f.IntOr("moe_layer_freq", 1, 1, kMaxLayers));
  ASSIGN_OR_RETURN(bool attention_bias, f.BoolOr("attention_bias", false));
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", false));
  if (top_k > experts) {
    return absl::InvalidArgumentError(absl::StrCat(f.Path("num_experts_per_tok"), "=", top_k,
                                                   " exceeds n_routed_experts=", experts));
  }
  spec.rotary_dim = rope;
  const int64_t qk_dim = nope + rope;
  AttentionSpec attn{.num_heads = heads,
                     .num_kv_heads = heads,
                     .head_dim = qk_dim,
                     .v_head_dim = v_dim,
                     .mla = true,
                     .kv_lora_rank = kv_lora,
                     .qk_rope_head_dim = rope};
  std::vector<Tensor> attn_tensors;
  if (q_lora > 0) {
    AddLinear(attn_tensors, Linear("q_a_proj", spec.hidden_size, q_lora, TpSplit::kReplicated),
              attention_bias);
    attn_tensors.push_back(Vec("q_a_layernorm", q_lora, TensorRole::kNorm));
    Tensor qb = Linear("q_b_proj", q_lora, heads * qk_dim, TpSplit::kHeads);
    qb.heads = heads;
    attn_tensors.push_back(qb);
  } else {
    Tensor q = Linear("q_proj", spec.hidden_size, heads * qk_dim, TpSplit::kHeads);
    q.heads = heads;
    attn_tensors.push_back(q);
  }
  // The latent projection is shared by all heads: replicated on every TP rank.
  AddLinear(attn_tensors,
            Linear("kv_a_proj_with_mqa", spec.hidden_size, kv_lora + rope, TpSplit::kReplicated),
            attention_bias);
  attn_tensors.push_back(Vec("kv_a_layernorm", kv_lora, TensorRole::kNorm));
  Tensor kvb = Linear("kv_b_proj", kv_lora, heads * (nope + v_dim), TpSplit::kHeads);
  kvb.heads = heads;
  attn_tensors.push_back(kvb);
  AddLinear(attn_tensors, Linear("o_proj", heads * v_dim, spec.hidden_size, TpSplit::kRow),
            attention_bias);

  AddEmbedding(spec);
  spec.layer_kind_of.resize(static_cast<size_t>(spec.num_layers));
  DecoderStyle plain;
  for (int64_t i = 0; i < spec.num_layers; ++i) {
    LayerKind kind;
    kind.attention = attn;
    kind.tensors = attn_tensors;
    const bool moe = experts > 0 && i >= first_dense && i % freq == 0;
    if (moe) {
      kind.name = "moe";
      kind.mlp = MlpSpec{.num_experts = experts,
                         .experts_per_token = top_k,
                         .expert_intermediate_size = moe_inter,
                         .shared_intermediate_size = moe_inter * shared};
      AddRouter(kind.tensors, spec.hidden_size, experts, false);
      if (type == "deepseek_v3") {
        kind.tensors.push_back(Vec("e_score_correction_bias", experts, TensorRole::kRouter));
      }
      AddExperts(kind.tensors, spec.hidden_size, moe_inter, experts, false);
      if (shared > 0) AddDenseMlp(kind.tensors, spec.hidden_size, moe_inter * shared, plain);
    } else {
      kind.name = "dense";
      kind.mlp = MlpSpec{.intermediate_size = inter};
      AddDenseMlp(kind.tensors, spec.hidden_size, inter, plain);
    }
    AddNorms(kind.tensors, spec.hidden_size, plain);
    spec.layer_kind_of[static_cast<size_t>(i)] = InternKind(spec, std::move(kind));
  }
  AddFinalNormAndHead(spec);
  return ReadMtpModule(f, spec);
}

}  // namespace

FLEETPLAN_FAMILY(deepseek) {
  registry.AddText({.model_types = {"deepseek_v2", "deepseek_v3"}, .build = BuildDeepseek});
}

}  // namespace fleetplan::estimator::internal
