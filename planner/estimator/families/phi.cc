// Phi-1 / Phi-1.5 / Phi-2 (PhiForCausalLM): a parallel attention + MLP block with one LayerNorm,
// biases everywhere, partial rotary, an lm_head with bias (transformers models/phi).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status BuildPhi(const Fields& f, const std::string&, ModelSpec& spec) {
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t kv_heads, f.IntOr("num_key_value_heads", heads, 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t inter, f.Int("intermediate_size"));
  ASSIGN_OR_RETURN(spec.max_position_embeddings,
                   f.IntOr("max_position_embeddings", 2048, 1, kMaxPositions));
  ASSIGN_OR_RETURN(bool qk_layernorm, f.BoolOr("qk_layernorm", false));
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", false));
  if (spec.hidden_size % heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("hidden_size"), "=", spec.hidden_size,
                     " is not divisible by num_attention_heads=", heads));
  }
  if (heads % kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("num_attention_heads"), "=", heads,
                     " is not a multiple of num_key_value_heads=", kv_heads));
  }
  const int64_t head_dim = spec.hidden_size / heads;
  ASSIGN_OR_RETURN(double partial_rotary, f.DoubleOr("partial_rotary_factor", 0.5));
  spec.rotary_dim = static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary);
  DecoderStyle style{.qkv_bias = true,
                     .o_bias = true,
                     .mlp_bias = true,
                     .norms_per_layer = 1,
                     .layernorm_bias = true,
                     .gated_mlp = false};
  LayerKind kind{.name = "dense",
                 .attention = {.num_heads = heads,
                               .num_kv_heads = kv_heads,
                               .head_dim = head_dim,
                               .v_head_dim = head_dim},
                 .mlp = {.intermediate_size = inter, .gated = false}};
  AddAttention(kind.tensors, kind.attention, spec.hidden_size, style);
  if (qk_layernorm) {
    for (const char* n : {"q_layernorm", "k_layernorm"}) {
      kind.tensors.push_back(Vec(n, head_dim, TensorRole::kNorm));
      kind.tensors.push_back(Vec(n, head_dim, TensorRole::kNorm));
    }
  }
  AddDenseMlp(kind.tensors, spec.hidden_size, inter, style);
  AddNorms(kind.tensors, spec.hidden_size, style);
  spec.layer_kinds.push_back(std::move(kind));
  spec.layer_kind_of.assign(static_cast<size_t>(spec.num_layers), 0);
  AddEmbedding(spec);
  spec.last_stage.push_back(Vec("final_layernorm", spec.hidden_size, TensorRole::kNorm));
  spec.last_stage.push_back(Vec("final_layernorm.bias", spec.hidden_size, TensorRole::kNorm));
  if (!spec.tie_word_embeddings) {
    Tensor head =
        Linear("lm_head", spec.hidden_size, spec.vocab_size, TpSplit::kVocab, TensorRole::kLmHead);
    spec.last_stage.push_back(head);
    spec.last_stage.push_back(
        Vec("lm_head.bias", spec.vocab_size, TensorRole::kBias, TpSplit::kVocab));
  }
  return absl::OkStatus();
}

}  // namespace

FLEETPLAN_FAMILY(phi) { registry.AddText({.model_types = {"phi"}, .build = BuildPhi}); }

}  // namespace fleetplan::estimator::internal
