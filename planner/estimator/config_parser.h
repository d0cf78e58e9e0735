#ifndef FLEETPLAN_PLANNER_ESTIMATOR_CONFIG_PARSER_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_CONFIG_PARSER_H_

// Parses the text of a Hugging Face config.json into a ModelSpec.
//
// Families with exact parameter counts (equal to what transformers instantiates): llama, mistral,
// mixtral, qwen2, qwen2_moe, qwen3, qwen3_moe, deepseek_v2, deepseek_v3, gemma, gemma2, gemma3 /
// gemma3_text, phi, phi3, granite, gpt_oss, opt, and the VLM wrappers gemma3, llava, llava_next,
// qwen2_5_vl / qwen2_vl (vision tower + projector + language model). kimi_vl parses with an
// approximate vision tower (custom code; noted in ModelSpec::notes). An unknown model_type with
// standard decoder fields falls back to a generic llama-like decoder and says so
// (ModelSpec::generic_fallback and a note).
//
// Errors are INVALID_ARGUMENT naming the field path and value, e.g.
//   text_config.num_key_value_heads=0 must be >= 1
// Keys starting with '_' are ignored.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {

struct ParseOptions {
  // Overrides the checkpoint's quantization_config: "", "none", "fp8", "int8", "w8a8", "gptq",
  // "awq", "w4a16", "bnb-nf4", "bnb-int8", "mxfp4". Empty keeps the config's.
  std::string quantization;
  // Group size for a W4A16 override (GPTQ/AWQ default 128).
  int64_t group_size = 128;
};

absl::StatusOr<ModelSpec> ParseModelConfig(absl::string_view config_json,
                                           const ParseOptions& options = {});

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_CONFIG_PARSER_H_
