// The estimator's vocabularies (planner/common/names.h): the words for engines, dtypes, KV-cache
// dtypes and optimizers that the config parser, the CLI, the server and the calibration reader
// accept.

#include "planner/estimator/estimator.h"

namespace fleetplan::estimator {

const Vocabulary<Engine>& EngineNames() {
  static const auto* const kNames = new Vocabulary<Engine>(
      "engine", {{Engine::kVllm, "vllm"},
                 {Engine::kHfTransformers, "hf-transformers", {"hf", "transformers"}},
                 {Engine::kTraining, "training"},
                 {Engine::kLlamaCpp, "llama.cpp", {"llamacpp", "llama-cpp"}},
                 {Engine::kSglang, "sglang"},
                 {Engine::kOpenvino, "openvino", {"openvino-genai", "ov"}}});
  return *kNames;
}

const Vocabulary<OvDevice>& OvDeviceNames() {
  static const auto* const kNames = new Vocabulary<OvDevice>(
      "openvino device", {{OvDevice::kCpu, "cpu", {"CPU"}}, {OvDevice::kGpu, "gpu", {"GPU"}}});
  return *kNames;
}

const Vocabulary<OvWeightFormat>& OvWeightFormatNames() {
  static const auto* const kNames = new Vocabulary<OvWeightFormat>(
      "weight format", {{OvWeightFormat::kFp32, "fp32"},
                        {OvWeightFormat::kFp16, "fp16"},
                        {OvWeightFormat::kInt8Asym, "int8_asym", {"int8"}},
                        {OvWeightFormat::kInt8Sym, "int8_sym"},
                        {OvWeightFormat::kInt4Asym, "int4_asym", {"int4"}},
                        {OvWeightFormat::kInt4Sym, "int4_sym"}});
  return *kNames;
}

const Vocabulary<OvKvPrecision>& OvKvPrecisionNames() {
  static const auto* const kNames = new Vocabulary<OvKvPrecision>(
      "KV-cache precision", {{OvKvPrecision::kDefault, "default", {"auto"}},
                             {OvKvPrecision::kU8, "u8", {"i8", "int8"}},
                             {OvKvPrecision::kU4, "u4", {"int4"}},
                             {OvKvPrecision::kF16, "f16", {"fp16"}},
                             {OvKvPrecision::kBf16, "bf16"},
                             {OvKvPrecision::kF32, "f32", {"fp32"}}});
  return *kNames;
}

const Vocabulary<OvInferencePrecision>& OvInferencePrecisionNames() {
  static const auto* const kNames = new Vocabulary<OvInferencePrecision>(
      "inference precision", {{OvInferencePrecision::kDefault, "default", {"auto"}},
                              {OvInferencePrecision::kF32, "f32", {"fp32"}},
                              {OvInferencePrecision::kBf16, "bf16"},
                              {OvInferencePrecision::kF16, "f16", {"fp16"}}});
  return *kNames;
}

const Vocabulary<FlashAttn>& FlashAttnNames() {
  static const auto* const kNames = new Vocabulary<FlashAttn>(
      "flash attention",
      {{FlashAttn::kAuto, "auto"}, {FlashAttn::kOn, "on", {"1"}}, {FlashAttn::kOff, "off", {"0"}}});
  return *kNames;
}

const Vocabulary<SpeculativeMethod>& SpeculativeMethodNames() {
  static const auto* const kNames = new Vocabulary<SpeculativeMethod>(
      "speculative method", {{SpeculativeMethod::kDraftModel, "draft_model", {"draft"}},
                             {SpeculativeMethod::kMtp, "mtp", {"deepseek_mtp", "glm4_moe_mtp"}},
                             {SpeculativeMethod::kNgram, "ngram", {"n-gram"}},
                             {SpeculativeMethod::kEagle, "eagle", {}},
                             {SpeculativeMethod::kEagle3, "eagle3", {}}});
  return *kNames;
}

const Vocabulary<SglangSpeculative>& SglangSpeculativeNames() {
  static const auto* const kNames = new Vocabulary<SglangSpeculative>(
      "sglang speculative algorithm",
      {{SglangSpeculative::kNone, "none", {""}},
       {SglangSpeculative::kEagle, "EAGLE", {"eagle"}},
       {SglangSpeculative::kEagle3, "EAGLE3", {"eagle3"}},
       {SglangSpeculative::kNextn, "NEXTN", {"nextn", "mtp"}},
       {SglangSpeculative::kStandalone, "STANDALONE", {"standalone"}},
       {SglangSpeculative::kNgram, "NGRAM", {"ngram"}}});
  return *kNames;
}

const Vocabulary<DType>& ComputeDTypeNames() {
  static const auto* const kNames =
      new Vocabulary<DType>("dtype", {{DType::kBFloat16, "bfloat16", {"bf16"}},
                                      {DType::kFloat16, "float16", {"fp16", "half"}},
                                      {DType::kFloat32, "float32", {"fp32", "float"}}});
  return *kNames;
}

const Vocabulary<KvCacheDType>& KvCacheDTypeNames() {
  static const auto* const kNames = new Vocabulary<KvCacheDType>(
      "KV-cache dtype", {{KvCacheDType::kAuto, "auto"},
                         {KvCacheDType::kBFloat16, "bfloat16", {"bf16"}},
                         {KvCacheDType::kFloat16, "float16", {"fp16", "half"}},
                         {KvCacheDType::kFp8, "fp8"},
                         {KvCacheDType::kFp8E4M3, "fp8_e4m3"},
                         {KvCacheDType::kFp8E5M2, "fp8_e5m2"}});
  return *kNames;
}

int64_t KvElementBytes(KvCacheDType kv, DType compute) {
  switch (kv) {
    case KvCacheDType::kAuto:
      return DTypeBytes(compute);
    case KvCacheDType::kBFloat16:
    case KvCacheDType::kFloat16:
      return 2;
    case KvCacheDType::kFp8:
    case KvCacheDType::kFp8E4M3:
    case KvCacheDType::kFp8E5M2:
      return 1;
  }
  return DTypeBytes(compute);
}

const Vocabulary<Optimizer>& OptimizerNames() {
  static const auto* const kNames = new Vocabulary<Optimizer>(
      "optimizer", {{Optimizer::kAdamW, "adamw"},
                    {Optimizer::kSgd, "sgd"},
                    {Optimizer::kAdamW8bit, "adamw-8bit", {"adamw_8bit", "adamw8bit"}}});
  return *kNames;
}

}  // namespace fleetplan::estimator
