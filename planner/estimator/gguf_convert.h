#ifndef FLEETPLAN_PLANNER_ESTIMATOR_GGUF_CONVERT_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_GGUF_CONVERT_H_

// The GGUF header llama.cpp's own tools would write for a Hugging Face model, so a model can be
// estimated on llama.cpp before anyone converts it (and --compare-engines can show llama.cpp from a
// config.json). Two steps, each following its source (llama.cpp, 2025-2026):
//
//   convert   convert_hf_to_gguf.py: tensor names and shapes per architecture (blk.N.attn_q ...,
//             ne0 = the input features; experts as 3-D [in, out, n_expert] ffn_*_exps; Phi-3's
//             fused attn_qkv and ffn_up), 1-D tensors (norms, biases) and the MoE router
//             (ffn_gate_inp) in f32, every other tensor in the --outtype (f32, f16, bf16, q8_0).
//   quantize  llama-quantize (src/llama-quant.cpp tensor_allows_quantization and
//             llama_tensor_get_type_impl): the file type's default type for each 2-D/3-D weight
//             except norms and the router; the output (or a tied token_embd) in q6_K; the k-quant
//             mixes' attn_v/attn_qkv and ffn_down in more bits on the layers use_more_bits picks;
//             8-expert models' attn_v/attn_k in q8_0 and attn_output in q5_K; a row whose length
//             the type's block does not divide falls back (q4_K -> q5_0, q5_K -> q5_1,
//             q6_K -> q8_0, then f16), as tensor_type_fallback does. No importance matrix.
//
// Weights from a real GGUF are exact; from this conversion they are what those tools write for
// the config's shapes (the tests check them against published file sizes).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "planner/estimator/gguf.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {

// The file types this converter writes, as llama-quantize names them (f16 ... q4_K_M).
const std::vector<std::string>& GgufFileTypes();

// The header of `spec`'s text model as a GGUF of `file_type` (GgufFileTypes, case-insensitive).
// INVALID_ARGUMENT naming `field` (e.g. "llama_cpp.file_type") for an unknown type, and naming the
// model_type for an architecture llama.cpp's converter does not write the way modelled here.
absl::StatusOr<GgufFile> GgufFromModel(const ModelSpec& spec, const std::string& field,
                                       const std::string& file_type);

// llama.cpp's architecture name for `spec` ("llama", "qwen2", "gemma3" ...), or "" when this
// converter does not handle it.
std::string GgufArchitecture(const ModelSpec& spec);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_GGUF_CONVERT_H_
