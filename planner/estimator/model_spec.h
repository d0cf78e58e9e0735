#ifndef FLEETPLAN_PLANNER_ESTIMATOR_MODEL_SPEC_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_MODEL_SPEC_H_

// ModelSpec: what the estimator knows about a model, parsed from a Hugging Face config.json
// (config_parser.h). A model is described as the list of its weight tensors, grouped the way the
// hardware sees them:
//   - first-stage tensors (token/position embeddings, the vision tower and projector): they live on
//     pipeline stage 0;
//   - decoder layers, each of one LayerKind (dense, MoE, sliding-window ...), split evenly over
//     pipeline stages;
//   - last-stage tensors (final norm, lm_head): they live on the last pipeline stage.
// Each tensor says how tensor parallelism shards it (column, row, vocab, replicated), whether it is
// an expert (split by expert parallelism) and whether a weight-quantization method applies to it.
// From this one description we derive the exact parameter count (what transformers instantiates),
// the bytes per GPU rank under any precision and parallelism, and the KV-cache layout.
//
// A ModelSpec is an immutable value: parse once, share freely between threads.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fleetplan::estimator {

// Element types of weights, activations and KV cache.
enum class DType : uint8_t { kFloat32, kBFloat16, kFloat16, kFloat8, kInt8 };

inline constexpr int64_t DTypeBytes(DType d) {
  switch (d) {
    case DType::kFloat32:
      return 4;
    case DType::kBFloat16:
    case DType::kFloat16:
      return 2;
    case DType::kFloat8:
    case DType::kInt8:
      return 1;
  }
  return 2;
}

const char* DTypeName(DType d);

// What a tensor is; decides whether quantization applies and where it sits.
enum class TensorRole : uint8_t {
  kLinear,        // a decoder Linear weight (attention or MLP): quantizable
  kExpertLinear,  // an MoE expert's weight: quantizable, split by expert parallelism
  kEmbedding,     // token embedding (vocab-parallel)
  kLmHead,        // output projection (vocab-parallel); absent when tied to the embedding
  kNorm,          // norm weights and biases
  kBias,          // Linear biases (kept in the model dtype by every method here)
  kExpertBias,    // an MoE expert's bias (gpt-oss)
  kRouter,        // MoE router (gate); never quantized by the methods here
  kVision,        // vision tower and projector: replicated on every TP rank, never quantized
  kOther,         // position embeddings, attention sinks, small parameters
};

// How tensor parallelism splits a tensor (vLLM's parallel linear layers).
enum class TpSplit : uint8_t {
  kReplicated,  // every rank holds all of it
  kColumn,      // output dim split (ColumnParallelLinear, QKV's q part, gate/up)
  kRow,         // input dim split (RowParallelLinear: o_proj, down_proj)
  kKvHeads,     // k/v projections: split by KV head, replicated once tp > num_key_value_heads
  kVocab,       // vocabulary split (VocabParallelEmbedding / ParallelLMHead)
  kHeads,       // split by attention head (attention sinks)
};

struct Tensor {
  const char* name = "";  // short name for reports, e.g. "q_proj"
  int64_t out = 0;        // output features (rows); a 1-D tensor has out = length, in = 1
  int64_t in = 1;         // input features (columns)
  int64_t copies = 1;     // identical tensors, e.g. one per routed expert
  TensorRole role = TensorRole::kLinear;
  TpSplit split = TpSplit::kReplicated;
  // For kKvHeads / kHeads: how many heads `out` holds (out is a multiple of it).
  int64_t heads = 0;

  int64_t elements() const { return out * in * copies; }
};

// Attention of one layer, as far as the KV cache and attention activations care.
struct AttentionSpec {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;    // q/k head dim (MLA: qk_nope_head_dim + qk_rope_head_dim)
  int64_t v_head_dim = 0;  // v head dim (equal to head_dim except MLA)
  // MLA (DeepSeek-V2/V3): engines cache the compressed latent kv_lora_rank + qk_rope_head_dim per
  // token per layer, shared by all heads and not split by TP.
  bool mla = false;
  int64_t kv_lora_rank = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t sliding_window = 0;  // tokens; 0 = full attention
  // Chunked local attention (Llama 4): each token attends within its chunk of this many tokens.
  // Only SGLang's hybrid SWA pool reads it (sglang_model.cc); the other engines' models count these
  // layers as full attention (vLLM's hybrid KV manager left them full by default from PR #21761,
  // later releases keep a chunk: an over-estimate there).
  int64_t attention_chunk = 0;
  // Cross-attention to the encoded image (mllama): K and V are projections of the vision states,
  // cached once per image, not per token of the sequence.
  bool cross_attention = false;
  // Linear attention (qwen3_next's gated delta net): no per-token cache; each sequence keeps a
  // convolution state of linear_conv_dim channels x linear_conv_kernel and a recurrent state of
  // num_heads x head_dim x v_head_dim (the value heads, key dim, value dim).
  bool linear_attention = false;
  int64_t linear_conv_dim = 0;
  int64_t linear_conv_kernel = 0;

  bool operator==(const AttentionSpec&) const = default;
};

// The MLP of one layer, for activation estimates.
struct MlpSpec {
  int64_t intermediate_size = 0;  // dense MLP (or 0 for a pure-MoE layer)
  bool gated = true;              // gate+up (SwiGLU/GeGLU) vs fc1 only
  int64_t num_experts = 0;        // routed experts (0 = dense layer)
  int64_t experts_per_token = 0;
  int64_t expert_intermediate_size = 0;
  int64_t shared_intermediate_size = 0;  // shared experts' total intermediate size

  bool operator==(const MlpSpec&) const = default;
};

struct LayerKind {
  std::string name;  // "dense", "moe", "dense/sliding" ...
  AttentionSpec attention;
  MlpSpec mlp;
  std::vector<Tensor> tensors;
};

// The vision tower of a vision-language model.
struct VisionSpec {
  std::string
      model_type;  // "siglip_vision_model", "clip_vision_model", "moonvit", "qwen2_5_vl" ...
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t patch_size = 0;
  int64_t image_size = 0;     // fixed input resolution (0 when dynamic, e.g. Qwen2.5-VL)
  int64_t spatial_merge = 1;  // tokens merged per side before the LM (Qwen2.5-VL, Kimi-VL: 2)
  // The tower's block as config.json writes it, for rules that read it raw: whether it is under
  // "vision_config", and its "num_hidden_layers" and "hidden_size" there (0: absent; Qwen2-VL
  // writes depth and, as hidden_size, the LM's width). SGLang's VLM fraction reads these.
  bool in_vision_config = false;
  int64_t config_num_hidden_layers = 0;
  int64_t config_hidden_size = 0;
  // How images become LM tokens.
  enum class TokenRule : uint8_t {
    kFixed,
    kPatchesMerged,
    kLlavaNext,
    kPerTile,
    kTiles,    // InternVL: the image cut into image_size tiles by aspect ratio (+ a thumbnail)
    kSlices,   // MiniCPM-V: the image resized plus a grid of slices, each resampled to a query set
    kHdCrops,  // Phi-3-vision: 336-px crops of the HD-transformed image plus a global view
    kPixtral,  // Pixtral: native resolution (longest edge <= image_size), a break token per row
    // Mllama: max_tiles tiles per image through the tower, read by the language model's
    // cross-attention layers; the prompt holds fixed_tokens_per_image (1) <|image|> token.
    kCrossAttention,
  } token_rule = TokenRule::kFixed;
  // kFixed: Gemma-3 256, LLaVA 576 ...; kLlavaNext: the base image; kTiles: per tile; kSlices: the
  // resampler's queries per slice; kHdCrops: per crop after the 2 x 2 merge (144).
  int64_t fixed_tokens_per_image = 0;
  bool image_newline = false;  // kLlavaNext: a newline token per row of tile features
  std::vector<std::pair<int64_t, int64_t>> grid_pinpoints;  // kLlavaNext: (height, width) options
  // kTiles: the tile counts the processor may choose and whether a thumbnail tile is added when
  // it cuts the image (fixed_tokens_per_image is per tile). kSlices: max_tiles is max_slice_nums;
  // kHdCrops: max_tiles is num_crops.
  int64_t min_tiles = 1;
  int64_t max_tiles = 1;
  bool thumbnail = false;
  int64_t slice_resolution = 0;  // kSlices: scale_resolution, the side of a slice's target area
  // Layers after the feature layer the model reads (LLaVA's vision_feature_layer -2: 1). They are
  // instantiated by transformers but cut from an exported graph.
  int64_t unused_tail_layers = 0;
  // Mllama: of num_layers, the gated global layers after the local stack.
  int64_t global_layers = 0;
  std::string note;           // an assumption the config could not settle, said with every estimate
  std::vector<Tensor> tower;  // vision encoder tensors
  std::vector<Tensor> projector;  // multimodal projector tensors
};

// Weight quantization, from quantization_config or an override.
struct QuantSpec {
  enum class Method : uint8_t {
    kNone,
    kFp8,    // 8-bit float weights, per-tensor/channel/block scales (fp8, compressed-tensors)
    kInt8,   // 8-bit int weights with per-channel scales (W8A8 compressed-tensors, bnb int8)
    kInt4,   // W4A16: GPTQ, AWQ, compressed-tensors pack-quantized; per-group fp16 scales
    kNf4,    // bitsandbytes 4-bit (nf4/fp4), absmax per block of 64
    kMxfp4,  // OCP MXFP4: 4-bit values + one 8-bit scale per 32 (gpt-oss experts)
  } method = Method::kNone;
  std::string name;        // quant_method as written ("compressed-tensors", "gptq", ...)
  int64_t group_size = 0;  // kInt4: values per scale group (-1/0: per channel)
  int64_t block_rows = 0;  // kFp8 block scales (weight_block_size), 0 = per channel/tensor
  int64_t block_cols = 0;
  bool per_tensor_scale = false;    // kFp8 with strategy "tensor"
  bool has_zero_points = false;     // kInt4 asymmetric (AWQ, GPTQ sym=false)
  bool has_g_idx = false;           // GPTQ act-order index
  bool experts_only = false;        // kMxfp4 in gpt-oss: only expert weights are quantized
  std::vector<std::string> ignore;  // module name patterns left unquantized

  bool quantized() const { return method != Method::kNone; }
};

struct ModelSpec {
  std::string model_type;         // as written in config.json (text model's for VLM wrappers)
  std::string wrapper_type;       // VLM wrapper model_type ("gemma3", "llava_next" ...) or ""
  bool generic_fallback = false;  // unknown model_type parsed as a generic decoder
  // Memory-relevant config fields no family builder consumed (e.g. experts of a family parsed as
  // dense): the estimate is of a model that differs from the checkpoint.
  std::vector<std::string> unconsumed_fields;
  std::vector<std::string> notes;  // what the parser assumed

  // True when the parser did not fully understand the config: an unknown model_type, or fields
  // that change memory it did not read. Such estimates are marked unverified; the planner refuses
  // to place them unless a deployment allows it.
  bool unverified() const { return generic_fallback || !unconsumed_fields.empty(); }

  DType dtype = DType::kBFloat16;  // torch_dtype of the checkpoint
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  // An EAGLE3 head's config (the engines' llama_eagle3.py): the reduced vocabulary its lm_head and
  // draft_id_to_target_id map cover, and the width of the target whose hidden states its fc reads
  // (0: vocab_size and hidden_size).
  int64_t draft_vocab_size = 0;
  int64_t target_hidden_size = 0;
  int64_t num_layers = 0;
  int64_t max_position_embeddings = 0;
  int64_t rotary_dim = 0;  // rotary embedding width (0 = no RoPE)
  bool tie_word_embeddings = false;
  double final_logit_softcapping = 0;  // Gemma-2: extra copies of the logits
  // A bidirectional encoder (BERT, RoBERTa, XLM-RoBERTa: families/bert.cc): every layer attends to
  // the whole input at once, so no engine keeps a KV cache and nothing is generated; engines run
  // it as one forward per batch (vLLM's pooling runner). encoder_token_outputs is what its head
  // emits per token: vocab_size logits (a masked-LM head), num_labels (token classification) or 0
  // (hidden states, or a per-sequence pooler / classifier).
  bool encoder_only = false;
  int64_t encoder_token_outputs = 0;

  std::vector<Tensor> first_stage;  // embeddings (+ vision tower/projector via `vision`)
  std::vector<Tensor> last_stage;   // final norm, lm_head
  std::vector<LayerKind> layer_kinds;
  std::vector<int> layer_kind_of;  // size num_layers: index into layer_kinds
  std::optional<VisionSpec> vision;
  QuantSpec quant;
  // The MTP / next-n layers (num_nextn_predict_layers: DeepSeek-V3, GLM-4.5) as vLLM's MTP drafter
  // builds them (ReadMtpModule). Not part of the transformers model, so not in num_params(); they
  // take memory only when speculative decoding uses them (VllmConfig::speculative_method).
  std::shared_ptr<ModelSpec> mtp;

  // Parameter count as transformers instantiates it (tied weights once, quantization ignored).
  int64_t num_params() const;
  int64_t num_language_params() const;
  int64_t num_vision_params() const;
  // True when any layer is MoE.
  bool is_moe() const;
  // True when some layer cross-attends to the encoded image (mllama).
  bool has_cross_attention() const;
  // True when some layer is linear attention with a per-sequence state (qwen3_next).
  bool has_linear_attention() const;
  // Largest attention head count over layers (TP must divide it).
  const AttentionSpec& attention(int layer) const {
    return layer_kinds[static_cast<size_t>(layer_kind_of[static_cast<size_t>(layer)])].attention;
  }
};

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_MODEL_SPEC_H_
