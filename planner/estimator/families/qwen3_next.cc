// Qwen3-Next (model_type "qwen3_next", transformers models/qwen3_next/modeling_qwen3_next.py):
// a hybrid of gated-delta-net linear attention and gated full attention, with Qwen's MoE.
//
// Layers: layer_types (or, without it, every full_attention_interval-th layer full and the rest
// linear). A full-attention layer (Qwen3NextAttention) is Qwen3's with an output gate: q_proj
// writes heads x head_dim x 2 (query and gate), k/v/o as usual (biases as attention_bias), a
// per-head RMSNorm on q and k. A linear layer (Qwen3NextGatedDeltaNet): in_proj_qkvz [H, 2 K + 2
// V], in_proj_ba [H, 2 Hv], a depthwise conv1d of conv_dim = 2 K + V channels and
// linear_conv_kernel_dim taps without bias, dt_bias and A_log [Hv], a gated RMSNorm of
// linear_value_head_dim and out_proj [V, H], where K = linear_num_key_heads x linear_key_head_dim
// and V = linear_num_value_heads x linear_value_head_dim. The MLP is the Qwen2-MoE block (router,
// experts of moe_intermediate_size, a shared expert of shared_expert_intermediate_size and its
// sigmoid gate) on the sparse layers, else a dense MLP. The checkpoint's MTP layers (mtp.*,
// mtp_num_hidden_layers) are not loaded by transformers (_keys_to_ignore_on_load_unexpected).
//
// Memory: the full-attention layers cache K/V per token; a linear layer keeps, per sequence, its
// conv state [conv_dim, kernel] in the model dtype and its recurrent state [Hv, Dk, Dv]
// (Qwen3NextDynamicCache), whatever the length.

#include "planner/estimator/family.h"

namespace fleetplan::estimator::internal {
namespace {

absl::Status Qwen3NextStyle(const Fields& f, DecoderStyle& style, bool&) {
  style.qk_norm = true;
  ASSIGN_OR_RETURN(style.qkv_bias, f.BoolOr("attention_bias", false));
  style.o_bias = style.qkv_bias;
  return absl::OkStatus();
}

absl::Status BuildQwen3Next(const Fields& f, const std::string&, ModelSpec& spec) {
  DecoderTraits traits{.style = Qwen3NextStyle, .linear_layers = true};
  traits.moe = [](const Fields& g, int64_t layers, MoeGeometry& moe) {
    return QwenMoeGeometry(g, layers, /*shared_expert=*/true, moe);
  };
  RETURN_IF_ERROR(BuildDecoder(f, traits, spec));
  DecoderStyle style;
  bool unused = false;
  RETURN_IF_ERROR(Qwen3NextStyle(f, style, unused));
  ASSIGN_OR_RETURN(const int64_t hk, f.Int("linear_num_key_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(const int64_t dk, f.Int("linear_key_head_dim", 1, 65536));
  ASSIGN_OR_RETURN(const int64_t hv, f.Int("linear_num_value_heads", 1, kMaxHeads));
  ASSIGN_OR_RETURN(const int64_t dv, f.Int("linear_value_head_dim", 1, 65536));
  ASSIGN_OR_RETURN(const int64_t kernel, f.IntOr("linear_conv_kernel_dim", 4, 1, 64));
  ASSIGN_OR_RETURN(const int64_t interval, f.IntOr("full_attention_interval", 4, 1, kMaxLayers));
  ASSIGN_OR_RETURN(const json* types, f.OptionalArray("layer_types"));
  ASSIGN_OR_RETURN(const int64_t mtp_layers, f.IntOr("mtp_num_hidden_layers", 0, 0, 16));
  f.Consume("mtp_use_dedicated_embeddings");
  if (hv % hk != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.Path("linear_num_value_heads"), "=", hv,
                     " is not a multiple of linear_num_key_heads=", hk));
  }
  const int64_t h = spec.hidden_size;
  const int64_t key_dim = hk * dk, value_dim = hv * dv, conv_dim = 2 * key_dim + value_dim;
  for (int64_t i = 0; i < spec.num_layers; ++i) {
    // BuildDecoder checked layer_types' entries (strings, linear_attention allowed here).
    const bool linear =
        types != nullptr ? (*types)[static_cast<size_t>(i)].get<std::string>() == "linear_attention"
                         : (i + 1) % interval != 0;
    const auto index = static_cast<size_t>(i);
    LayerKind kind = spec.layer_kinds[static_cast<size_t>(spec.layer_kind_of[index])];
    const size_t attention_tensors = AttentionTensorCount(kind.attention, h, style);
    std::vector<Tensor> mixer;
    if (linear) {
      kind.name = absl::StrCat("linear/", kind.name);
      kind.attention = AttentionSpec{.num_heads = hv,
                                     .num_kv_heads = hv,
                                     .head_dim = dk,
                                     .v_head_dim = dv,
                                     .linear_attention = true,
                                     .linear_conv_dim = conv_dim,
                                     .linear_conv_kernel = kernel};
      mixer.push_back(Linear("in_proj_qkvz", h, 2 * key_dim + 2 * value_dim, TpSplit::kColumn));
      mixer.push_back(Linear("in_proj_ba", h, 2 * hv, TpSplit::kColumn));
      mixer.push_back(Linear("conv1d", kernel, conv_dim, TpSplit::kColumn, TensorRole::kOther));
      mixer.push_back(Vec("dt_bias", hv, TensorRole::kOther, TpSplit::kColumn));
      mixer.push_back(Vec("A_log", hv, TensorRole::kOther, TpSplit::kColumn));
      mixer.push_back(Vec("norm", dv, TensorRole::kNorm));
      mixer.push_back(Linear("out_proj", value_dim, h, TpSplit::kRow));
    } else {
      // The output gate doubles q_proj (and its bias).
      kind.name = absl::StrCat("gated/", kind.name);
      AddAttention(mixer, kind.attention, h, style);
      mixer[0].out *= 2;
      if (style.qkv_bias) mixer[1].out *= 2;
    }
    kind.tensors.erase(kind.tensors.begin(),
                       kind.tensors.begin() + static_cast<std::ptrdiff_t>(attention_tensors));
    kind.tensors.insert(kind.tensors.begin(), mixer.begin(), mixer.end());
    spec.layer_kind_of[index] = InternKind(spec, std::move(kind));
  }
  DropUnusedKinds(spec);
  if (mtp_layers > 0) {
    spec.notes.push_back(absl::StrCat(
        "qwen3_next: the checkpoint's ", mtp_layers,
        " MTP layer(s) are not loaded by transformers and are not counted (mtp.* weights)"));
  }
  return absl::OkStatus();
}

}  // namespace

FLEETPLAN_FAMILY(qwen3_next) {
  registry.AddText({.model_types = {"qwen3_next"}, .build = BuildQwen3Next});
}

}  // namespace fleetplan::estimator::internal
