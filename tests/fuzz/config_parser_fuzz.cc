// Fuzz target: config.json text -> ModelSpec -> estimates on a fixed H100 for vLLM,
// hf-transformers and training. Invariants: no crash or UB, errors are Status (never exceptions),
// byte counts never negative, and an accepted config parses and estimates identically twice.
//
// Seeds: tests/data/calibration/models (real configs).

#include <cstdint>
#include <string>

#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/vllm.h"
#include "tests/fuzz/fuzz_util.h"

namespace fleetplan::fuzz {
namespace {

constexpr int64_t kH100 = 85017493504;

void EstimateEveryEngine(const estimator::ModelSpec& spec, std::vector<int64_t>& totals) {
  for (estimator::Engine engine : {estimator::Engine::kVllm, estimator::Engine::kHfTransformers,
                                   estimator::Engine::kTraining}) {
    estimator::EstimateRequest req{.engine = engine, .gpu_memory_bytes = kH100};
    req.concurrency = 4;
    req.context_tokens = 4096;
    auto e = estimator::Estimate(spec, req);
    if (!e.ok()) {
      totals.push_back(-static_cast<int64_t>(e.status().code()));
      continue;
    }
    CheckEstimate(*e);
    totals.push_back(e->max_total_bytes);
  }
  estimator::EstimateRequest vllm{.engine = estimator::Engine::kVllm, .gpu_memory_bytes = kH100,
                                  .concurrency = 8, .context_tokens = 2048};
  auto fit = estimator::FitVllm(spec, vllm);
  if (fit.ok()) {
    CheckEstimate(fit->estimate);
    Check(!fit->fits || (fit->gpu_memory_utilization > 0 && fit->gpu_memory_utilization <= 0.99),
          "a fitting utilization is in (0, 0.99]");
    totals.push_back(fit->estimate.max_total_bytes);
  }
}

}  // namespace
}  // namespace fleetplan::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto spec = fleetplan::estimator::ParseModelConfig(text);
  if (!spec.ok()) {
    fleetplan::fuzz::Check(spec.status().message().size() < 4096, "error messages are bounded");
    return 0;
  }
  std::vector<int64_t> first, second;
  fleetplan::fuzz::EstimateEveryEngine(*spec, first);
  auto again = fleetplan::estimator::ParseModelConfig(text);
  fleetplan::fuzz::Check(again.ok() && again->num_params() == spec->num_params(),
                         "an accepted config parses identically twice");
  fleetplan::fuzz::EstimateEveryEngine(*again, second);
  fleetplan::fuzz::Check(first == second, "an accepted config re-estimates identically");
  return 0;
}
