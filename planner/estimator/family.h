#ifndef FLEETPLAN_PLANNER_ESTIMATOR_FAMILY_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_FAMILY_H_

// Internal: the model-family registry and the shared tensor builders the families use.
//
// A family is one file in planner/estimator/families/ (plus its test beside it) that defines
//   FLEETPLAN_FAMILY(name) { registry.AddText({...}); }        // text decoders
// and/or registry.AddWrapper({...}) for vision-language wrappers. CMake finds every file there
// and generates the index that calls each registration (families_index.cc), so adding a family
// edits nothing else.
//
// Builders fill a ModelSpec from the config's fields. Most decoders are llama-like and only say
// what differs (DecoderTraits: biases, norms, tied embeddings, the sliding-window pattern, the
// routed-expert geometry) and let BuildDecoder do the rest.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "planner/common/status_macros.h"
#include "planner/estimator/config_fields.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator::internal {

// ---- Tensor builders ----------------------------------------------------------------------------

Tensor Linear(const char* name, int64_t in, int64_t out, TpSplit split,
              TensorRole role = TensorRole::kLinear);
Tensor Vec(const char* name, int64_t n, TensorRole role, TpSplit split = TpSplit::kReplicated);
// Bias of a linear layer split like its weight (column-split biases shard; row-split replicate).
Tensor BiasOf(const Tensor& weight);
void AddLinear(std::vector<Tensor>& t, Tensor w, bool bias);

// What varies between the llama-like decoder families.
struct DecoderStyle {
  bool qkv_bias = false;
  bool o_bias = false;
  bool mlp_bias = false;
  bool qk_norm = false;          // per-head RMSNorm on q and k (qwen3, gemma3)
  int norms_per_layer = 2;       // 2 (llama), 4 (gemma2/3 sandwich), 1 (phi parallel block)
  bool layernorm_bias = false;   // LayerNorm with bias (phi, opt)
  bool gated_mlp = true;         // gate/up/down vs fc1/fc2
  bool attention_sinks = false;  // gpt-oss: one learned logit per head
};

void AddAttention(std::vector<Tensor>& t, const AttentionSpec& a, int64_t hidden,
                  const DecoderStyle& style);
void AddDenseMlp(std::vector<Tensor>& t, int64_t hidden, int64_t inter, const DecoderStyle& style);
void AddNorms(std::vector<Tensor>& t, int64_t hidden, const DecoderStyle& style);
// Routed experts: `count` gated experts of H -> I -> H. Expert tensors split by EP (copies) and,
// without EP, by TP inside each expert like a dense MLP.
void AddExperts(std::vector<Tensor>& t, int64_t hidden, int64_t inter, int64_t count, bool bias);
void AddRouter(std::vector<Tensor>& t, int64_t hidden, int64_t experts, bool bias);

// Interns a layer kind (same name, attention, MLP and tensor count) and returns its index.
int InternKind(ModelSpec& spec, LayerKind kind);
// Removes the kinds no layer uses (after a family re-kinded layers) and renumbers the rest.
void DropUnusedKinds(ModelSpec& spec);
// hidden_size, num_hidden_layers and vocab_size: named alike in every family.
absl::Status ReadCoreDims(const Fields& f, ModelSpec& spec);
// The final RMSNorm and, unless tied to the embedding, the lm_head: on the last pipeline stage.
void AddFinalNormAndHead(ModelSpec& spec);
// The token embedding on the first stage.
void AddEmbedding(ModelSpec& spec);

// The num_nextn_predict_layers MTP layers into spec.mtp (after the decoder is built: each is a copy
// of the last layer's kind), as vLLM's drafter builds them (deepseek_mtp.py, glm4_moe_mtp.py
// DeepSeekMultiTokenPredictorLayer): enorm and hnorm, eh_proj (2H -> H, no bias, replicated),
// the decoder layer, and shared_head's norm and vocab-split head; the embedding is the target's
// (v1 spec_decode load_eagle_model shares it).
absl::Status ReadMtpModule(const Fields& f, ModelSpec& spec);

// ---- Llama-like decoders ------------------------------------------------------------------------

// Routed experts of a decoder: which layers are sparse and their geometry.
struct MoeGeometry {
  int64_t experts = 0, top_k = 0, expert_inter = 0, shared_inter = 0;
  bool shared_gate = false, expert_bias = false, router_bias = false;
  std::vector<bool> sparse;  // per layer
  int64_t dense_inter = 0;   // the dense layers' intermediate size
};

struct DecoderTraits {
  // Reads the family's style fields (biases ...) into `style` and may set the tied default.
  std::function<absl::Status(const Fields&, DecoderStyle& style, bool& tie_default)> style;
  bool softcapping = false;  // reads final_logit_softcapping (Gemma)
  // Sliding window per layer when the config has no layer_types; `window` is sliding_window.
  // Null: no sliding layers unless layer_types says so.
  std::function<absl::Status(const Fields&, int64_t window, std::vector<int64_t>& windows)>
      window_pattern;
  // Routed experts; null for a dense family (intermediate_size is then required).
  std::function<absl::Status(const Fields&, int64_t layers, MoeGeometry& moe)> moe;
  // layer_types may name linear_attention layers: built as full attention here, the family
  // replaces their attention tensors afterwards (qwen3_next). Elsewhere such a layer is an error.
  bool linear_layers = false;
};

// The number of tensors AddAttention adds first to each layer BuildDecoder builds (a family that
// replaces a layer's attention swaps exactly these).
size_t AttentionTensorCount(const AttentionSpec& a, int64_t hidden, const DecoderStyle& style);

absl::Status BuildDecoder(const Fields& f, const DecoderTraits& traits, ModelSpec& spec);

// Sliding-window patterns shared by several families.
absl::Status AllLayersSlide(const Fields& f, int64_t window, std::vector<int64_t>& windows);
// Biases as the config's attention_bias / mlp_bias say (llama, mistral, granite ...).
absl::Status BiasesFromConfig(const Fields& f, DecoderStyle& style, bool& tie_default);
// The Qwen families' sliding window: layers from max_window_layers on, when use_sliding_window.
absl::Status QwenWindowPattern(const Fields& f, int64_t window, std::vector<int64_t>& windows);
// The Qwen MoE geometry: num_experts, num_experts_per_tok, moe_intermediate_size, sparse every
// decoder_sparse_step layers except mlp_only_layers; qwen2_moe adds a gated shared expert.
absl::Status QwenMoeGeometry(const Fields& f, int64_t layers, bool shared_expert, MoeGeometry& moe);

// ---- Vision towers ------------------------------------------------------------------------------

// A ViT encoder layer stack of `layers` identical layers (q, k, v, o with biases; gated or plain
// MLP; LayerNorm or RMSNorm pairs).
void AddVisionLayer(std::vector<Tensor>& t, int64_t d, int64_t inter, int64_t layers,
                    bool gated_mlp, bool rms_norm);
Tensor VisionTensor(const char* name, int64_t out, int64_t in = 1);
// The patch merger of Qwen2-VL and MoonViT: a norm of `norm_elements`, then a two-layer MLP with
// biases over merge x merge patches concatenated (`merged` wide) into the language model's width.
// `qwen_names`: Qwen's tensor names (merger.ln_q, merger.mlp.*), else MoonViT's.
void AddPatchMerger(VisionSpec& vs, bool qwen_names, int64_t norm_elements, int64_t merged,
                    int64_t out);
// A ViT's hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, patch_size and
// image_size (at least patch_size).
absl::Status ReadVisionCore(const Fields& v, VisionSpec& vs);
// SigLIP or CLIP towers as LLaVA and Gemma-3 use them (patch embedding, positions, layers, post
// norm, SigLIP's attention-pooling head when used). Fills image_size and the fixed token count.
absl::Status BuildSiglipOrClipTower(const Fields& v, bool use_head_default, VisionSpec& vs);
// Pixtral's tower (transformers models/pixtral PixtralVisionModel): an unbiased patch convolution,
// ln_pre, layers of RMSNorm + q/k/v/o + RMSNorm + gated MLP, all without biases; 2-D RoPE (no
// position table). Sets TokenRule::kPixtral with spatial_merge = `merge` (LLaVA-Pixtral 1,
// Mistral-3 spatial_merge_size).
absl::Status BuildPixtralTower(const Fields& v, int64_t merge, VisionSpec& vs);
// The wrapper's vision_feature_layer (LLaVA, Mistral-3): an index (default `default_layer`) sets
// vs.unused_tail_layers, the layers after it; a list is concatenated. Returns how many layers'
// features the projector reads. INVALID_ARGUMENT names the field when out of range.
absl::StatusOr<int64_t> ReadVisionFeatureLayer(const Fields& top, int64_t default_layer,
                                               VisionSpec& vs);

// ---- The registry -------------------------------------------------------------------------------

struct TextFamily {
  std::vector<std::string> model_types;
  // Other model_type spellings of the same architecture (a VLM's text part named after the
  // wrapper): parsed by this family and reported as model_types[0].
  std::vector<std::string> aliases;
  // Builds the language model from `f` (the config, or its text_config).
  std::function<absl::Status(const Fields& f, const std::string& model_type, ModelSpec& spec)>
      build;
};

struct WrapperFamily {
  std::vector<std::string> model_types;
  // text_config.model_type when the config leaves it out (transformers' default).
  std::string default_text_type;
  // Where the language model's config sits (InternVL's remote code: llm_config).
  std::string text_config_key = "text_config";
  // A flat config (the language model's fields at the top level, MiniCPM-V, Phi-3-vision): the
  // text family to build it with, read from the config (nullptr: default_text_type).
  std::function<absl::StatusOr<std::string>(const Fields& top)> flat_text_type;
  // Where the vision tower's config sits (Phi-3-vision: img_processor).
  std::string vision_config_key = "vision_config";
  // Builds the vision tower and projector (`v` is the vision config, `top` the whole config).
  std::function<absl::StatusOr<VisionSpec>(const Fields& v, const Fields& top,
                                           const std::string& wrapper, int64_t text_hidden)>
      build_vision;
  std::string note;  // added to ModelSpec::notes (e.g. "parameter count not verified")
};

class FamilyRegistry {
 public:
  void AddText(TextFamily family);
  void AddWrapper(WrapperFamily family);
  // The family of `model_type` (a model type or an alias); `canonical` gets the name to report.
  const TextFamily* FindText(const std::string& model_type, std::string* canonical) const;
  const WrapperFamily* FindWrapper(const std::string& model_type) const;
  std::vector<std::string> TextTypes() const;

 private:
  std::vector<TextFamily> text_;
  std::vector<WrapperFamily> wrappers_;
};

// Every registered family (built once, from families_index.cc).
const FamilyRegistry& Families();

#define FLEETPLAN_FAMILY(name) \
  void RegisterFamily_##name(::fleetplan::estimator::internal::FamilyRegistry& registry)

}  // namespace fleetplan::estimator::internal

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_FAMILY_H_
