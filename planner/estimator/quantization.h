#ifndef FLEETPLAN_PLANNER_ESTIMATOR_QUANTIZATION_H_
#define FLEETPLAN_PLANNER_ESTIMATOR_QUANTIZATION_H_

// Weight quantization: parsing quantization_config (or an override) into a QuantSpec, and the
// bytes one (possibly TP-sharded) weight tensor occupies under it.
//
// Storage layouts (bytes per weight element plus scale/zero tensors), as the engines allocate them:
//   fp8 (fp8 / compressed-tensors float8): 1 B per element + fp32 scales: one per tensor, one per
//       output channel, or one per 128x128 block (weight_block_size). vLLM keeps scales in fp32
//       (vllm/model_executor/layers/quantization/fp8.py, compressed_tensors_w8a8_fp8.py).
//   int8 W8A8 (compressed-tensors int): 1 B + one fp32 scale per output channel.
//   W4A16 (GPTQ, AWQ, compressed-tensors pack-quantized): 0.5 B (int4 packed in int32) + one fp16
//       scale per group of `group_size` input elements per output channel; asymmetric schemes add
//       packed int4 zero points per group; GPTQ act-order adds an int32 g_idx per input row.
//   bitsandbytes nf4/fp4: 0.5 B + one fp32 absmax per 64 elements. bitsandbytes int8: 1 B + fp32
//       row scales.
//   MXFP4 (OCP microscaling, gpt-oss): 0.5 B + one 8-bit exponent per 32 elements.
// Norms, biases, embeddings, lm_head, MoE routers and vision towers stay in the model dtype.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json_fwd.hpp"
#include "planner/estimator/model_spec.h"

namespace fleetplan::estimator {

// `config` may be null (no quantization_config). `override_method` ("" keeps the config's) is one
// of: none, fp8, int8, w8a8, gptq, awq, w4a16, bnb-nf4, bnb-int8, mxfp4.
absl::StatusOr<QuantSpec> ParseQuantization(const nlohmann::json* config,
                                            const std::string& override_method,
                                            int64_t override_group_size);

// True when `quant` stores tensor `t` quantized.
bool IsQuantized(const QuantSpec& quant, const Tensor& t);

// Bytes of `copies` tensors of shape [out, in] (already sharded) whose unquantized element type is
// `dtype`.
int64_t WeightBytes(const QuantSpec& quant, const Tensor& t, int64_t out, int64_t in,
                    int64_t copies, DType dtype);

}  // namespace fleetplan::estimator

#endif  // FLEETPLAN_PLANNER_ESTIMATOR_QUANTIZATION_H_
