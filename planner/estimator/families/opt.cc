// OPT (OPTForCausalLM): learned positions (offset 2), LayerNorms with bias, biases everywhere,
// fc1/fc2 MLP, optional word_embed_proj_dim projections, tied lm_head (transformers models/opt).

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status BuildOpt(const Fields& f, const std::string&, ModelSpec& spec) {
  RETURN_IF_ERROR(ReadCoreDims(f, spec));
  ASSIGN_OR_RETURN(int64_t heads, f.Int("num_attention_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t ffn, f.Int("ffn_dim"));
  ASSIGN_OR_RETURN(spec.max_position_embeddings,
                   f.IntOr("max_position_embeddings", 2048, 1, kMaxPositions));
  ASSIGN_OR_RETURN(int64_t proj_dim, f.IntOr("word_embed_proj_dim", spec.hidden_size));
  ASSIGN_OR_RETURN(bool enable_bias, f.BoolOr("enable_bias", true));
  ASSIGN_OR_RETURN(bool ln_before, f.BoolOr("do_layer_norm_before", true));
  ASSIGN_OR_RETURN(bool remove_final, f.BoolOr("_remove_final_layer_norm", false));
  ASSIGN_OR_RETURN(bool ln_affine, f.BoolOr("layer_norm_elementwise_affine", true));
  ASSIGN_OR_RETURN(spec.tie_word_embeddings, f.BoolOr("tie_word_embeddings", true));
  if (spec.hidden_size % heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("hidden_size"), "=", spec.hidden_size,
                     " is not divisible by num_attention_heads=", heads));
  }
  const int64_t head_dim = spec.hidden_size / heads;
  DecoderStyle style{.qkv_bias = enable_bias,
                     .o_bias = enable_bias,
                     .mlp_bias = enable_bias,
                     .norms_per_layer = ln_affine ? 2 : 0,
                     .layernorm_bias = enable_bias,
                     .gated_mlp = false};
  LayerKind kind{.name = "dense",
                 .attention = {.num_heads = heads,
                               .num_kv_heads = heads,
                               .head_dim = head_dim,
                               .v_head_dim = head_dim},
                 .mlp = {.intermediate_size = ffn, .gated = false}};
  AddAttention(kind.tensors, kind.attention, spec.hidden_size, style);
  AddDenseMlp(kind.tensors, spec.hidden_size, ffn, style);
  AddNorms(kind.tensors, spec.hidden_size, style);
  spec.layer_kinds.push_back(std::move(kind));
  spec.layer_kind_of.assign(static_cast<size_t>(spec.num_layers), 0);
  spec.first_stage.push_back(
      Linear("embed_tokens", proj_dim, spec.vocab_size, TpSplit::kVocab, TensorRole::kEmbedding));
  spec.first_stage.push_back(Linear("embed_positions", spec.hidden_size,
                                    spec.max_position_embeddings + 2, TpSplit::kReplicated,
                                    TensorRole::kOther));
  if (proj_dim != spec.hidden_size) {
    spec.first_stage.push_back(
        Linear("project_in", proj_dim, spec.hidden_size, TpSplit::kReplicated, TensorRole::kOther));
    spec.last_stage.push_back(Linear("project_out", spec.hidden_size, proj_dim,
                                     TpSplit::kReplicated, TensorRole::kOther));
  }
  if (ln_before && !remove_final && ln_affine) {
    spec.last_stage.push_back(Vec("final_layer_norm", spec.hidden_size, TensorRole::kNorm));
    if (enable_bias) {
      spec.last_stage.push_back(Vec("final_layer_norm.bias", spec.hidden_size, TensorRole::kNorm));
    }
  }
  if (!spec.tie_word_embeddings) {
    spec.last_stage.push_back(
        Linear("lm_head", proj_dim, spec.vocab_size, TpSplit::kVocab, TensorRole::kLmHead));
  }
  return absl::OkStatus();
}

}  // namespace

FLEETPLAN_FAMILY(opt) { registry.AddText({.model_types = {"opt"}, .build = BuildOpt}); }

}  // namespace fleetplan::estimator::internal
