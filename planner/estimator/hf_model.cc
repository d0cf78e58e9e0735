// transformers (PyTorch eager) inference memory on one GPU, as torch.cuda.max_memory_allocated
// sees it, plus the CUDA context and allocator reserve for the device total.
//
// peak = weights + cuBLAS workspace + input ids + KV cache + the largest transient phase:
//   prefill, per decoder layer (the largest layer kind wins), bytes per token at dtype size a:
//     dense gated MLP  a (3 I + 4 H)   act(gate) + up + their product, next to the residual,
//                                      the attention output, the residual sum and the normed input
//     plain MLP        a (2 I + 4 H)   fc1 output and its activation
//     MoE grouped_mm   a (k (H + 4 I_e) + 4 H)   the token copies per routed expert, the fused
//                                      gate_up output, act(gate) and its product with up
//                                      (transformers integrations/moe.py grouped_mm path)
//     eager attention  + B heads S^2 x kEagerScoreBytes + one [B, S, S] mask per mask type
//   logits: [B, 1, V] (logits_to_keep=1) or [B, S, V] with the final hidden states; Gemma's
//     final-logit softcapping holds a second copy.
//   generate adds the decode steps: the cache grows by torch.cat (one layer's old and new copy at
//     once) and MoE layers gather each (sequence, expert) weight for the single-token step.
// The dynamic cache holds every token of the prompt during prefill, also for sliding-window
// layers: their tensors become views of the full-length storage (calibration README section 6).

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/rank_layout.h"

namespace fleetplan::estimator {

using internal::CeilDiv;
using internal::RankContext;

namespace {

// Transient bytes per token of the largest layer kind in a prefill forward.
int64_t LayerPrefillPerToken(const RankContext& c, const LayerKind& kind) {
  const int64_t h = c.spec.hidden_size;
  const MlpSpec& m = kind.mlp;
  int64_t mlp = 0;
  if (m.num_experts > 0) {
    const int64_t routed = m.experts_per_token * (h + 4 * m.expert_intermediate_size);
    const int64_t shared = m.shared_intermediate_size > 0 ? 3 * m.shared_intermediate_size + h : 0;
    mlp = std::max(routed, shared) + 4 * h;
  } else {
    mlp = (m.gated ? 3 : 2) * m.intermediate_size + 4 * h;
  }
  const AttentionSpec& a = kind.attention;
  const int64_t q_dim = a.num_heads * a.head_dim;
  const int64_t kv_dim = a.mla ? a.num_heads * (a.head_dim + a.v_head_dim)
                               : a.num_kv_heads * (a.head_dim + a.v_head_dim);
  // residual, normed input, q/k/v, rotated q/k, attention output.
  const int64_t attention = 2 * h + 2 * q_dim + 2 * kv_dim + q_dim;
  return std::max(mlp, attention) * c.a;
}

// KV bytes per token summed over layers, split by whether the layer slides.
struct KvPerToken {
  int64_t full = 0;
  int64_t sliding = 0;
  int64_t cross = 0;   // cross-attention layers: per row of the encoded image, not per token
  int64_t state = 0;   // linear-attention layers: per sequence, whatever its length
  int64_t window = 0;  // smallest sliding window
  int mask_types = 1;
};

KvPerToken KvLayout(const RankContext& c) {
  KvPerToken kv;
  if (c.spec.encoder_only) return kv;  // an encoder's forward returns no past_key_values
  for (int64_t l = 0; l < c.spec.num_layers; ++l) {
    const AttentionSpec& a = c.spec.attention(static_cast<int>(l));
    // transformers' DynamicCache stores K and V per layer; DeepSeek's MLA stores the latent
    // (kv_lora_rank + rope dims) as one head.
    const int64_t bytes = a.mla ? (a.kv_lora_rank + a.qk_rope_head_dim) * c.kv_elem
                                : a.num_kv_heads * (a.head_dim + a.v_head_dim) * c.kv_elem;
    if (a.linear_attention) {
      // Qwen3NextDynamicCache: conv_states [conv_dim, kernel] in the model dtype and the chunked
      // delta rule's final recurrent state [Hv, Dk, Dv], kept in fp32.
      kv.state += internal::LinearStateBytes(a, 1, a.linear_conv_kernel, c.a, 4);
    } else if (a.cross_attention) {
      kv.cross += bytes;
    } else if (a.sliding_window > 0) {
      kv.sliding += bytes;
      kv.window = kv.window == 0 ? a.sliding_window : std::min(kv.window, a.sliding_window);
    } else {
      kv.full += bytes;
    }
  }
  if (kv.sliding > 0 && kv.full > 0) kv.mask_types = 2;
  return kv;
}

// Tokens a sliding layer's tensors hold after `tokens` tokens: DynamicSlidingWindowLayer keeps
// window - 1.
int64_t SlidingTokens(int64_t tokens, int64_t window) { return std::min(tokens, window - 1); }

// Rows of K/V the cross-attention layers cache per image (mllama: every tile's class token and
// patches, the tower's padding sliced off; MllamaForConditionalGeneration.forward).
int64_t CrossAttentionRows(const VisionSpec& v) {
  const int64_t side = v.image_size / v.patch_size;
  return v.max_tiles * (side * side + 1);
}

int64_t VisionTokensPerImage(const VisionSpec& v, int64_t height, int64_t width) {
  if (v.image_size > 0 && (height == 0 || width == 0)) {
    height = width = v.image_size;
  }
  if (v.token_rule == VisionSpec::TokenRule::kPatchesMerged || v.image_size == 0) {
    return (height / v.patch_size) * (width / v.patch_size);
  }
  return (v.image_size / v.patch_size) * (v.image_size / v.patch_size);
}

// One forward of the vision encoder over batch x images images.
struct VisionForward {
  int64_t weights = 0;
  int64_t pixels = 0;      // the pixel_values input
  int64_t activation = 0;  // the largest encoder layer's transient tensors
};

VisionForward VisionTowerForward(const RankContext& c, const HfConfig& h) {
  const VisionSpec& v = *c.spec.vision;
  VisionForward f;
  for (const Tensor& t : v.tower) f.weights += internal::RankTensorBytes(c, t);
  int64_t images = h.batch * std::max<int64_t>(h.images, 1);
  int64_t patches = VisionTokensPerImage(v, h.image_height, h.image_width);
  const int64_t height = h.image_height > 0 ? h.image_height : v.image_size;
  const int64_t width = h.image_width > 0 ? h.image_width : v.image_size;
  f.pixels = images * 3 * height * width * c.a;
  if (v.token_rule == VisionSpec::TokenRule::kTiles ||
      v.token_rule == VisionSpec::TokenRule::kSlices ||
      v.token_rule == VisionSpec::TokenRule::kHdCrops ||
      v.token_rule == VisionSpec::TokenRule::kPixtral ||
      v.token_rule == VisionSpec::TokenRule::kCrossAttention) {
    // Each tile, slice or crop is its own pass through the tower (a batch of them).
    const VisionPasses p = VisionTowerPasses(c.spec, images, h.image_height, h.image_width);
    images = p.batch;
    patches = p.tokens;
    f.pixels = images * 3 * patches * v.patch_size * v.patch_size * c.a;
  }
  const int64_t tokens = images * patches;
  const int64_t d = v.hidden_size;
  // Encoder layer: fc1 output and its activation next to the residual stream, the normed input,
  // the attention output and the residual sum; eager attention adds the score matrices.
  const int64_t per_token = (2 * v.intermediate_size + 4 * d) * c.a;
  int64_t scores = 0;
  if (h.eager_attention) scores = images * v.num_heads * patches * patches * kEagerScoreBytes;
  f.activation = tokens * per_token + scores;
  if (v.token_rule == VisionSpec::TokenRule::kCrossAttention) {
    // MllamaVisionModel.forward: the global layers attend over all tiles of an image at once,
    // under the aspect-ratio mask [image, 1, tiles x P, tiles x P] in the model dtype (built by a
    // matmul: two of them live); the local stack runs with output_hidden_states, so its
    // num_hidden_layers + 1 hidden states stay until the intermediate layers are stacked.
    const int64_t seqs = h.batch * std::max<int64_t>(h.images, 1);
    const int64_t per_image = tokens / seqs;
    const int64_t mask = seqs * per_image * per_image * c.a * 2;
    const int64_t global_scores =
        h.eager_attention ? seqs * v.num_heads * per_image * per_image * kEagerScoreBytes : 0;
    const int64_t hidden_states = (v.num_layers - v.global_layers + 1) * tokens * d * c.a;
    f.activation = hidden_states + mask + std::max(tokens * per_token + scores, global_scores);
  }
  return f;
}

}  // namespace

absl::Status EstimateHf(const RankContext& c, MemoryEstimate& out) {
  const ModelSpec& spec = c.spec;
  const HfConfig& h = c.req.hf;
  StageMemory s;
  s.num_layers = spec.num_layers;
  s.cuda_context_bytes = kCudaContextBytes;
  if (h.vision_tower_only) {
    if (!spec.vision) {
      return absl::InvalidArgumentError("vision_tower_only needs a vision-language model");
    }
    const VisionForward f = VisionTowerForward(c, h);
    s.weights_bytes = f.weights;
    s.engine_overhead_bytes = kCublasWorkspaceBytes + f.pixels;
    s.activation_peak_bytes = f.activation;
  } else {
    s.weights_bytes = internal::StageWeights(c, 0, 0, spec.num_layers);
    const int64_t b = h.batch;
    // Images become language-model tokens in the prompt (their vision tower is in the weights).
    const int64_t prompt =
        h.prompt_tokens + h.images * ImageTokens(spec, h.image_height, h.image_width);
    const int64_t t = b * prompt;
    const int64_t v = spec.vocab_size;
    const int64_t hid = spec.hidden_size;
    const KvPerToken kv = KvLayout(c);

    // Prefill: transient peak of the largest layer, or of the logits.
    int64_t layer_per_token = 0;
    int64_t heads = 0;
    for (const LayerKind& kind : spec.layer_kinds) {
      layer_per_token = std::max(layer_per_token, LayerPrefillPerToken(c, kind));
      heads = std::max(heads, kind.attention.num_heads);
    }
    int64_t layer_peak = t * layer_per_token;
    // Cross-attention layers (mllama) attend from the prompt to every image's cached rows.
    const int64_t cross_rows =
        kv.cross > 0 && h.images > 0 ? b * h.images * CrossAttentionRows(*spec.vision) : 0;
    if (h.eager_attention) {
      const int64_t scores = b * heads * prompt * prompt * kEagerScoreBytes;
      const int64_t masks = kv.mask_types * b * prompt * prompt * c.a;
      layer_peak = std::max(layer_peak, scores + masks + t * 4 * hid * c.a);
      // A cross-attention layer's [B, heads, S, images x rows] scores.
      layer_peak =
          std::max(layer_peak, heads * prompt * cross_rows * kEagerScoreBytes + t * 4 * hid * c.a);
    }
    const int64_t softcap_copies = spec.final_logit_softcapping > 0 ? 2 : 1;
    int64_t logits_peak = 0;
    if (spec.encoder_only) {
      // The head's per-token outputs (MLM logits over every position, token labels) next to the
      // transformed hidden states; a pooler or sequence classifier reads one row per sequence.
      const int64_t outputs = spec.encoder_token_outputs;
      logits_peak = outputs > 0 ? t * (outputs * c.a + 2 * hid * c.a) : 0;
    } else if (h.all_logits && !h.generate) {
      logits_peak = t * (softcap_copies * v * c.a + 2 * hid * c.a);
    } else {
      logits_peak = b * softcap_copies * v * c.a;
    }
    // Cross-attention layers cache their K/V of every image once (mllama), next to the prompt's.
    const int64_t kv_cross = cross_rows * kv.cross;
    const int64_t kv_prefill =
        t * (kv.full + kv.sliding) + kv_cross + b * kv.state;  // views keep the storage
    int64_t activation = std::max(layer_peak, logits_peak);
    int64_t kv_at_peak = kv_prefill;
    int64_t inputs = t * 8;  // int64 input ids
    // _prepare_cross_attention_mask: [B, 1, S, images x rows] in the model dtype for the forward.
    inputs += cross_rows * prompt * c.a;
    if (h.generate) {
      inputs += t * 8;  // attention mask
      // Decode: the cache for prompt + new - 1 tokens, one layer copied by torch.cat, logits of
      // the step in the model dtype and in fp32 (generate upcasts them), MoE expert gathers.
      const int64_t tokens = prompt + std::max<int64_t>(h.new_tokens - 1, 0);
      const int64_t sliding_tokens = kv.window > 0 ? SlidingTokens(tokens, kv.window) : 0;
      const int64_t kv_decode =
          b * (kv.full * tokens + kv.sliding * sliding_tokens + kv.state) + kv_cross;
      int64_t largest_layer = 0;
      int64_t gather = 0;
      for (const LayerKind& kind : spec.layer_kinds) {
        const AttentionSpec& a = kind.attention;
        largest_layer =
            std::max(largest_layer, a.num_kv_heads * (a.head_dim + a.v_head_dim) * c.kv_elem);
        if (kind.mlp.num_experts > 0) {
          gather = std::max(gather, b * kind.mlp.experts_per_token * 3 * hid *
                                        kind.mlp.expert_intermediate_size * c.a);
        }
      }
      const int64_t decode_transient = b * tokens * largest_layer + b * v * (c.a + 4) + gather;
      if (kv_decode + decode_transient > kv_prefill + activation) {
        kv_at_peak = kv_decode;
        activation = decode_transient;
      }
    }
    if (h.images > 0) {
      // The vision tower encodes the images before the language model's prefill (no KV yet);
      // its transient peak can exceed the prefill's for large images or eager attention.
      const VisionForward f = VisionTowerForward(c, h);
      inputs += f.pixels;
      activation = std::max(activation, f.activation - kv_at_peak);
    }
    s.kv_cache_bytes = kv_at_peak;
    s.engine_overhead_bytes = kCublasWorkspaceBytes + inputs;
    s.activation_peak_bytes = activation;
  }
  s.torch_peak_allocated_bytes =
      s.weights_bytes + s.engine_overhead_bytes + s.kv_cache_bytes + s.activation_peak_bytes;
  // The caching allocator reserves beyond what is allocated: whole 2 MiB/20 MiB segments and
  // blocks freed but not returned. calibration: peak_reserved / peak_allocated - 1 is 2-30 % of
  // the transient part; we reserve a quarter of the transient tensors.
  s.fragmentation_bytes = (s.activation_peak_bytes + s.kv_cache_bytes) / 4;
  s.total_bytes = s.torch_peak_allocated_bytes + s.cuda_context_bytes + s.fragmentation_bytes;
  out.stages.push_back(s);
  return absl::OkStatus();
}

}  // namespace fleetplan::estimator
