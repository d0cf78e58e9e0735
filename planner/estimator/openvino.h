#ifndef FLEETPLAN_PLANNER_ESTIMATOR_OPENVINO_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_OPENVINO_H_

// OpenVINO GenAI (LLMPipeline, VLMPipeline, ContinuousBatchingPipeline; OpenVINO Model Server runs
// the same) on one device: an x86 CPU, whose memory is the host's, or one Intel GPU. The memory
// model is openvino_model.cc (Estimate with Engine::kOpenvino); the rules it follows:
//
// Weights: each IR of the exported folder (optimum-intel's export: openvino_language_model,
// openvino_text_embeddings_model, openvino_vision_embeddings_model [+ merger/resampler] for a VLM;
// one openvino_model for an LLM) holds its constants as NNCF stored them
// (nncf/quantization/algorithms/weight_compression): fp16/fp32 as is; int8 u8/i8 values with one
// fp16 scale (and, asymmetric, one u8 zero point) per output channel; int4 u4/i4 values with one
// fp16 scale (and a u4 zero point) per group of group_size inputs of each output channel. Only the
// matrices of linear layers and embeddings are compressed; norms, biases, convolutions and position
// tables stay fp16. With int4 (all_layers=False) the embedding and the lm_head stay int8_asym
// (NNCF's backup precision), and optimum-intel compresses a VLM's vision and embedding models to
// int8_asym whenever the language model is compressed. A VLM's language model takes inputs_embeds,
// so a tied lm_head is its own copy there, beside the embedding model's; the vision graph ends at
// the feature layer the model uses (LLaVA's vision_feature_layer -2 drops the last layer).
//
// Intermediate buffers: each compiled model keeps its infer request's buffers for its lifetime, so
// the pipeline holds the vision encoder's and the language model's at once. Their size is the
// reference study's assumption (../shared/reference/openvino-vlm-s0.md): buffers are reused
// across blocks, so a model needs the largest set of tensors live at one op of one block, plus its
// inputs and outputs; RoPE is not in place (rotated q and k are new tensors); attention is the
// fused ScaledDotProductAttention node (no [heads, S, S] scores) unless the vision tower uses an
// explicit mask, which is then an input. Activations are in the inference precision.
//
// KV cache: stateful pipelines keep K and V for every token of the sequence in the model's state
// (the plugin's KV_CACHE_PRECISION: u8 on x86 CPUs, f16 on GPUs). Continuous batching allocates
// blocks of 32 tokens (CPU) or 16 (GPU) (continuous_batching/cache/kv_cache_manager.hpp):
// cache_size GB of them, or num_kv_blocks; with neither it grows as sequences need and copies the
// old cache into the new one (old and new live at once: a risk). u8/u4 store per token, head and
// group an fp32 scale and zero point (8 bytes) beside the values (the CPU plugin's by-token
// quantization, src/plugins/intel_cpu/src/nodes/kernels/scaled_attn/attn_quant.cpp).

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {

// Bytes of `copies` weight matrices [out, in] stored as `format` (int4 in groups of `group_size`
// inputs, -1 or 0: one group per row).
int64_t OvWeightBytes(OvWeightFormat format, int64_t group_size, int64_t out, int64_t in,
                      int64_t copies);

// The language model's weight compression a request resolves to: the config's weight_format when
// set, else what a quantized checkpoint's quantization_config says (GPTQ/AWQ int4 with its group
// size and zero points, int8), else fp16 (optimum-cli's default). Other quantizations are refused.
// The estimate and the launch line both take it from here.
struct OvWeights {
  OvWeightFormat format = OvWeightFormat::kFp16;
  int64_t group_size = 128;
};
absl::StatusOr<OvWeights> OvResolvedWeights(const ModelSpec& spec, const OpenvinoConfig& config);

// The KV precision a request resolves to (its default depends on the device) and the bytes one
// token's row of `head_size` elements takes in it with groups of `group_size` (0: the whole head).
OvKvPrecision OvResolvedKvPrecision(const OpenvinoConfig& config);
int64_t OvKvRowBytes(OvKvPrecision precision, int64_t head_size, int64_t group_size);

// Tokens per KV block on the device (continuous batching).
int64_t OvBlockTokens(OvDevice device);

// Reads the weight compression optimum-intel wrote into an exported folder's openvino_config.json
// ("dtype" fp32 | fp16 | int8 | int4 and quantization_config's bits, sym, group_size, ratio,
// all_layers) into `config` (weight_format_set). INVALID_ARGUMENT names the field and value of a
// file that is not such a config.
absl::Status ApplyOpenvinoConfigJson(absl::string_view text, OpenvinoConfig& config);

// The commands that realise an estimate: optimum-cli's export with the weight compression, then
// OpenVINO Model Server with the device and the KV cache size.
std::string OpenvinoLaunchCommand(const std::string& model, const ModelSpec& spec,
                                  const EstimateRequest& request, const MemoryEstimate& estimate);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_OPENVINO_H_
