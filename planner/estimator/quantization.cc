#include "planner/estimator/quantization.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace fleetplan::estimator {
namespace {

using json = nlohmann::json;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t IntOr(const json& obj, const char* key, int64_t fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return fallback;
  return it->get<int64_t>();
}

std::string StrOr(const json& obj, const char* key, const std::string& fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

bool BoolOr(const json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}

void ReadIgnore(const json& obj, const char* key, QuantSpec& q) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return;
  for (const json& v : *it) {
    if (v.is_string()) q.ignore.push_back(v.get<std::string>());
  }
}

absl::StatusOr<QuantSpec> FromOverride(const std::string& method, int64_t group_size) {
  QuantSpec q;
  q.name = method;
  if (method == "none") return QuantSpec{};
  if (method == "fp8") {
    q.method = QuantSpec::Method::kFp8;
  } else if (method == "int8" || method == "w8a8") {
    q.method = QuantSpec::Method::kInt8;
  } else if (method == "gptq" || method == "awq" || method == "w4a16") {
    q.method = QuantSpec::Method::kInt4;
    if (group_size == 0 || group_size < -1) {
      return absl::InvalidArgumentError(
          absl::StrCat("group_size=", group_size, " must be -1 (per channel) or >= 1"));
    }
    q.group_size = group_size;
    q.has_zero_points = method == "awq";
  } else if (method == "bnb-nf4" || method == "nf4" || method == "bitsandbytes") {
    q.method = QuantSpec::Method::kNf4;
  } else if (method == "bnb-int8") {
    q.method = QuantSpec::Method::kInt8;
  } else if (method == "mxfp4") {
    q.method = QuantSpec::Method::kMxfp4;
    q.experts_only = true;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantization=\"", method,
        "\" is not one of none, fp8, int8, w8a8, gptq, awq, w4a16, bnb-nf4, bnb-int8, mxfp4"));
  }
  return q;
}

absl::StatusOr<QuantSpec> FromCompressedTensors(const json& config) {
  QuantSpec q;
  q.name = "compressed-tensors";
  ReadIgnore(config, "ignore", q);
  auto groups = config.find("config_groups");
  if (groups != config.end() && groups->is_object() && !groups->empty()) {
    const json& group = groups->begin().value();
    auto weights = group.find("weights");
    if (weights == group.end() || !weights->is_object()) {
      return absl::InvalidArgumentError(
          "quantization_config.config_groups: first group has no \"weights\" object");
    }
    const int64_t bits = IntOr(*weights, "num_bits", 8);
    const std::string type = StrOr(*weights, "type", "int");
    const std::string strategy = StrOr(*weights, "strategy", "channel");
    if (bits == 8 && type == "float") {
      q.method = QuantSpec::Method::kFp8;
      q.per_tensor_scale = strategy == "tensor";
      if (strategy == "block") {
        auto block = weights->find("block_structure");
        if (block != weights->end() && block->is_array() && block->size() == 2) {
          q.block_rows = (*block)[0].get<int64_t>();
          q.block_cols = (*block)[1].get<int64_t>();
        } else {
          q.block_rows = q.block_cols = 128;
        }
      }
    } else if (bits == 8) {
      q.method = QuantSpec::Method::kInt8;
    } else if (bits == 4 && type == "float") {
      q.method = QuantSpec::Method::kMxfp4;  // nvfp4/mxfp4 style 4-bit float with group scales
    } else if (bits == 4) {
      q.method = QuantSpec::Method::kInt4;
      q.group_size = strategy == "group" ? IntOr(*weights, "group_size", 128) : -1;
      q.has_zero_points = !BoolOr(*weights, "symmetric", true);
      q.has_g_idx = StrOr(*weights, "actorder", "") == "group";
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("quantization_config: compressed-tensors weights num_bits=", bits,
                       " type=\"", type, "\" is not supported (8-bit int/float, 4-bit int)"));
    }
    return q;
  }
  // Simplified form {"quant_method": ..., "bits": N, "group_size": G, "format": ...}.
  const int64_t bits = IntOr(config, "bits", 8);
  const std::string format = StrOr(config, "format", "");
  if (bits == 4) {
    q.method = QuantSpec::Method::kInt4;
    q.group_size = IntOr(config, "group_size", 128);
  } else if (absl::StrContains(format, "float")) {
    q.method = QuantSpec::Method::kFp8;
  } else {
    q.method = QuantSpec::Method::kInt8;
  }
  return q;
}

}  // namespace

absl::StatusOr<QuantSpec> ParseQuantization(const json* config, const std::string& override_method,
                                            int64_t override_group_size) {
  if (!override_method.empty()) {
    return FromOverride(absl::AsciiStrToLower(override_method), override_group_size);
  }
  if (config == nullptr) return QuantSpec{};
  const std::string method = absl::AsciiStrToLower(StrOr(*config, "quant_method", ""));
  if (method.empty()) {
    return absl::InvalidArgumentError("quantization_config.quant_method is missing");
  }
  QuantSpec q;
  q.name = method;
  if (method == "compressed-tensors") return FromCompressedTensors(*config);
  if (method == "fp8" || method == "fbgemm_fp8") {
    q.method = QuantSpec::Method::kFp8;
    auto block = config->find("weight_block_size");
    if (block != config->end() && block->is_array() && block->size() == 2 &&
        (*block)[0].is_number_integer() && (*block)[1].is_number_integer()) {
      q.block_rows = (*block)[0].get<int64_t>();
      q.block_cols = (*block)[1].get<int64_t>();
      if (q.block_rows <= 0 || q.block_cols <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("quantization_config.weight_block_size=", block->dump(), " must be > 0"));
      }
    }
    ReadIgnore(*config, "modules_to_not_convert", q);
    return q;
  }
  if (method == "gptq" || method == "awq" || method == "marlin" || method == "gptq_marlin" ||
      method == "awq_marlin") {
    const int64_t bits = IntOr(*config, "bits", IntOr(*config, "w_bit", 4));
    if (bits == 8) {
      q.method = QuantSpec::Method::kInt8;
      return q;
    }
    if (bits != 4) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantization_config.bits=", bits, " is not supported (4 or 8)"));
    }
    q.method = QuantSpec::Method::kInt4;
    q.group_size = IntOr(*config, "group_size", IntOr(*config, "q_group_size", 128));
    if (q.group_size == 0 || q.group_size < -1) {
      return absl::InvalidArgumentError(
          absl::StrCat("quantization_config.group_size=", q.group_size, " must be -1 or >= 1"));
    }
    q.has_zero_points = absl::StartsWith(method, "awq") || !BoolOr(*config, "sym", true) ||
                        absl::StartsWith(method, "gptq");  // GPTQ stores qzeros even when sym
    q.has_g_idx = absl::StartsWith(method, "gptq") && BoolOr(*config, "desc_act", false);
    ReadIgnore(*config, "modules_to_not_convert", q);
    return q;
  }
  if (method == "bitsandbytes") {
    if (BoolOr(*config, "load_in_8bit", false)) {
      q.method = QuantSpec::Method::kInt8;
    } else {
      q.method = QuantSpec::Method::kNf4;
    }
    ReadIgnore(*config, "llm_int8_skip_modules", q);
    return q;
  }
  if (method == "mxfp4") {
    q.method = QuantSpec::Method::kMxfp4;
    q.experts_only = true;
    ReadIgnore(*config, "modules_to_not_convert", q);
    return q;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "quantization_config.quant_method=\"", method,
      "\" is not supported (compressed-tensors, fp8, gptq, awq, bitsandbytes, mxfp4)"));
}

bool IsQuantized(const QuantSpec& quant, const Tensor& t) {
  if (!quant.quantized()) return false;
  if (t.role == TensorRole::kExpertLinear) return true;
  if (t.role != TensorRole::kLinear) return false;
  if (quant.experts_only) return false;
  for (const std::string& pattern : quant.ignore) {
    // Module names in ignore lists are full paths or regexes ("model.layers.*.self_attn",
    // "re:.*self_attn.*"); match by the sub-module they name.
    const bool attention = absl::StrContains(t.name, "_proj") &&
                           (absl::StartsWith(t.name, "q") || absl::StartsWith(t.name, "k") ||
                            absl::StartsWith(t.name, "v") || absl::StartsWith(t.name, "o"));
    if (attention && absl::StrContains(pattern, "attn")) return false;
    if (!attention && absl::StrContains(pattern, "mlp") && !absl::StrContains(pattern, "gate")) {
      return false;
    }
  }
  return true;
}

int64_t WeightBytes(const QuantSpec& quant, const Tensor& t, int64_t out, int64_t in,
                    int64_t copies, DType dtype) {
  const int64_t elements = out * in * copies;
  if (!IsQuantized(quant, t)) return elements * DTypeBytes(dtype);
  switch (quant.method) {
    case QuantSpec::Method::kNone:
      return elements * DTypeBytes(dtype);
    case QuantSpec::Method::kFp8: {
      int64_t scales = 0;
      if (quant.block_rows > 0) {
        scales = CeilDiv(out, quant.block_rows) * CeilDiv(in, quant.block_cols);
      } else if (quant.per_tensor_scale) {
        scales = 1;
      } else {
        scales = out;
      }
      return elements + scales * copies * 4;
    }
    case QuantSpec::Method::kInt8:
      return elements + out * copies * 4;
    case QuantSpec::Method::kInt4: {
      const int64_t groups_per_row = quant.group_size > 0 ? CeilDiv(in, quant.group_size) : 1;
      int64_t bytes = CeilDiv(elements, 2) + groups_per_row * out * copies * 2;
      if (quant.has_zero_points) bytes += CeilDiv(groups_per_row * out * copies, 2);
      if (quant.has_g_idx) bytes += in * copies * 4;
      return bytes;
    }
    case QuantSpec::Method::kNf4:
      return CeilDiv(elements, 2) + CeilDiv(elements, 64) * 4;
    case QuantSpec::Method::kMxfp4:
      return CeilDiv(elements, 2) + CeilDiv(elements, 32);
  }
  return elements * DTypeBytes(dtype);
}

}  // namespace fleetplan::estimator
