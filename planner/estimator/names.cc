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
                 {Engine::kSglang, "sglang"}});
  return *kNames;
}

const Vocabulary<FlashAttn>& FlashAttnNames() {
  static const auto* const kNames = new Vocabulary<FlashAttn>(
      "flash attention",
      {{FlashAttn::kAuto, "auto"}, {FlashAttn::kOn, "on", {"1"}}, {FlashAttn::kOff, "off", {"0"}}});
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
