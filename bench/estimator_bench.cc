// Cost of one memory estimate on an already parsed ModelSpec; the placement planner calls it for
// every (model, GPU type, parallelism) candidate. Goal: <= 5 us.
//
//   ./build/bench/estimator_bench --benchmark_min_time=0.5

#include <fstream>
#include <sstream>
#include <string>

#include "benchmark/benchmark.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"

namespace fleetplan::estimator {
namespace {

std::string ReadModel(const std::string& slug) {
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/" + slug + ".json");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ModelSpec Spec(const std::string& slug) { return *ParseModelConfig(ReadModel(slug)); }

EstimateRequest VllmRequest(int64_t tp, int64_t pp) {
  EstimateRequest r;
  r.engine = Engine::kVllm;
  r.gpu_memory_bytes = 85017493504;
  r.parallelism = {.tp = tp, .pp = pp};
  r.vllm = {.gpu_memory_utilization = 0.9, .max_model_len = 8192};
  r.concurrency = 16;
  r.context_tokens = 8192;
  return r;
}

void RunEstimate(benchmark::State& state, const ModelSpec& spec, const EstimateRequest& req) {
  for (auto _ : state) {
    auto e = Estimate(spec, req);
    benchmark::DoNotOptimize(e);
  }
}

void BM_VllmLlama8B_Tp1(benchmark::State& state) {
  static const ModelSpec spec = Spec("llama-3.1-8b-instruct");
  RunEstimate(state, spec, VllmRequest(1, 1));
}
BENCHMARK(BM_VllmLlama8B_Tp1);

void BM_VllmLlama70B_Tp4Pp2(benchmark::State& state) {
  static const ModelSpec spec = Spec("llama-3.3-70b-instruct-fp8-dynamic");
  RunEstimate(state, spec, VllmRequest(4, 2));
}
BENCHMARK(BM_VllmLlama70B_Tp4Pp2);

// llama.cpp from a config: the GGUF conversion (gguf_convert.h) runs on every call, then the
// layout; -c 32768, 4 slots, every layer on one GPU. The planner calls it per GPU count.
void BM_LlamaCppFromConfig_Llama70B_Q4KM(benchmark::State& state) {
  static const ModelSpec spec = Spec("llama-3.3-70b-instruct-fp8-dynamic");
  EstimateRequest r;
  r.engine = Engine::kLlamaCpp;
  r.gpu_memory_bytes = 85017493504;
  r.parallelism = {.tp = 1, .pp = 2};
  r.llama_cpp.file_type = "q4_K_M";
  r.llama_cpp.n_ctx = 32768;
  r.llama_cpp.n_parallel = 4;
  r.llama_cpp.n_gpu_layers = 81;
  RunEstimate(state, spec, r);
}
BENCHMARK(BM_LlamaCppFromConfig_Llama70B_Q4KM);

void BM_VllmDeepseekV2Lite_Tp2(benchmark::State& state) {
  static const ModelSpec spec = Spec("deepseek-v2-lite");
  RunEstimate(state, spec, VllmRequest(2, 1));
}
BENCHMARK(BM_VllmDeepseekV2Lite_Tp2);

void BM_VllmGemma3_27B_Hybrid(benchmark::State& state) {
  static const ModelSpec spec = Spec("gemma-3-27b-it");
  RunEstimate(state, spec, VllmRequest(2, 1));
}
BENCHMARK(BM_VllmGemma3_27B_Hybrid);

void BM_HfLlama8B_Generate(benchmark::State& state) {
  static const ModelSpec spec = Spec("llama-3.1-8b");
  EstimateRequest r{.engine = Engine::kHfTransformers, .gpu_memory_bytes = 85017493504};
  r.hf = {.generate = true, .batch = 8, .prompt_tokens = 2048};
  RunEstimate(state, spec, r);
}
BENCHMARK(BM_HfLlama8B_Generate);

void BM_TrainingQwen05B_Zero3(benchmark::State& state) {
  static const ModelSpec spec = Spec("qwen2.5-0.5b");
  EstimateRequest r{.engine = Engine::kTraining, .gpu_memory_bytes = 85017493504};
  r.parallelism.dp = 8;
  r.training = {.param_dtype = DType::kFloat32,
                .autocast_bf16 = true,
                .zero_stage = 3,
                .batch = 4,
                .seq_tokens = 2048};
  RunEstimate(state, spec, r);
}
BENCHMARK(BM_TrainingQwen05B_Zero3);

void BM_ParseConfig_Llama70B(benchmark::State& state) {
  static const std::string text = ReadModel("llama-3.3-70b-instruct-fp8-dynamic");
  for (auto _ : state) {
    auto spec = ParseModelConfig(text);
    benchmark::DoNotOptimize(spec);
  }
}
BENCHMARK(BM_ParseConfig_Llama70B);

}  // namespace
}  // namespace fleetplan::estimator

BENCHMARK_MAIN();
