// Fuzz target: a vLLM startup log as `fleetplan validate --vllm-log` reads it (clients/vllm_log.h)
// -> a calibration case -> the estimator's scoring of it. Invariants: no crash or UB; errors are
// Status values with bounded messages; counts never negative; a case that builds scores without
// crashing.

#include <cstdint>
#include <string>

#include "clients/vllm_log.h"
#include "planner/estimator/calibration.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetplan;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto log = cli::ParseVllmLog(text, "fuzz.log");
  if (!log.ok()) {
    fuzz::Check(log.status().message().size() < 4096, "error messages are bounded");
    return 0;
  }
  for (const char* count : {"num_gpu_blocks", "kv_cache_tokens"}) {
    auto it = log->measured.find(count);
    fuzz::Check(it == log->measured.end() || it->second >= 0, "counts are never negative");
  }
  auto c = cli::CaseFromLog(*log, {.case_id = "f",
                                   .model_path = "m.json",
                                   .gpu = "H100-80GB",
                                   .gpu_total_bytes = 85017493504,
                                   .gpu_total_source = "fuzz"});
  if (!c.ok()) return 0;
  static const std::string kModel = R"({"model_type": "qwen2", "hidden_size": 896,
      "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
      "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
      "tie_word_embeddings": true, "torch_dtype": "bfloat16"})";
  (void)estimator::ScoreCase(c->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                             kModel);
  return 0;
}
