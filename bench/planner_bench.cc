// Planner speed on a synthetic fleet of 10,000 nodes x 8 GPUs of mixed types (H100 in domains of 8,
// A100-40GB in domains of 4) across 8 pools, a quarter of the nodes already holding placements.
// Goals: one deployment p99 <= 5 ms; a batch of 1,000 deployments <= 1 s.
//
//   ./build-release/bench/planner_bench --benchmark_min_time=1

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "benchmark/benchmark.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/placement/planner.h"

namespace fleetplan::placement {
namespace {

const estimator::ModelSpec& Model(const std::string& slug) {
  static auto* cache = new std::map<std::string, estimator::ModelSpec>();
  auto it = cache->find(slug);
  if (it != cache->end()) return it->second;
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/" + slug + ".json");
  std::stringstream ss;
  ss << in.rdbuf();
  return cache->emplace(slug, *estimator::ParseModelConfig(ss.str())).first->second;
}

const FleetSnapshot& BigFleet() {
  static const FleetSnapshot* snap = [] {
    auto* s = new FleetSnapshot{
        .generation = 1,
        .gpu_types = {
            GpuType{.name = "A100-40GB", .memory_bytes = 42505273344, .cost_per_hour = 1.2},
            GpuType{.name = "H100", .memory_bytes = 85017493504, .cost_per_hour = 2.5}}};
    for (int i = 0; i < 10000; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "node-%05d", i);
      const bool h100 = i % 3 != 0;
      Node n{.name = name,
             .pool = "pool-" + std::to_string(i % 8),
             .zone = "zone-" + std::to_string(i % 3)};
      for (int g = 0; g < 8; ++g) {
        n.gpus.push_back(Gpu{.index = g,
                             .gpu_type = h100 ? "H100" : "A100-40GB",
                             .nvlink_domain = h100 ? 0 : g / 4});
      }
      if (i % 4 == 0) {
        for (int g = 0; g < 3; ++g) n.gpus[static_cast<size_t>(g)].committed_bytes = 30 * kGiB;
      }
      s->nodes.push_back(std::move(n));
    }
    return s;
  }();
  return *snap;
}

DeploymentSpec Dep(int i) {
  static const char* kModels[] = {
      "llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "llama-3.3-70b-instruct-fp8-dynamic",
      "mixtral-8x7b-v0.1-4l",  "qwen2.5-0.5b",        "deepseek-v2-lite"};
  const std::string slug = kModels[i % 6];
  return DeploymentSpec{.name = "dep-" + std::to_string(i),
                        .model = slug,
                        .spec = &Model(slug),
                        .vllm = {.max_model_len = 8192},
                        .concurrency = 8 + i % 24,
                        .context_tokens = 4096 + 1024 * (i % 5),
                        .replicas = 1 + i % 2};
}

void BM_PlanOneDeployment_80kGpus(benchmark::State& state) {
  const FleetSnapshot& s = BigFleet();
  int i = 0;
  std::vector<double> ms;
  for (auto _ : state) {
    PlacementRequest req{{Dep(i++)}};
    const auto t0 = std::chrono::steady_clock::now();
    auto plan = PlanPlacement(s, req, {.strategy = Strategy::kPack});
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    benchmark::DoNotOptimize(plan);
  }
  std::sort(ms.begin(), ms.end());
  state.counters["p50_ms"] = ms[ms.size() / 2];
  state.counters["p99_ms"] = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
}
BENCHMARK(BM_PlanOneDeployment_80kGpus)->Unit(benchmark::kMillisecond)->Iterations(500);

void BM_PlanBatchOf1000_80kGpus(benchmark::State& state) {
  const FleetSnapshot& s = BigFleet();
  PlacementRequest req;
  for (int i = 0; i < 1000; ++i) req.deployments.push_back(Dep(i));
  int64_t placed = 0, gpus = 0;
  double gap = 0;
  for (auto _ : state) {
    auto plan = PlanPlacement(s, req, {.strategy = Strategy::kPack});
    placed = static_cast<int64_t>(plan->replicas.size());
    gpus = plan->gpus_used;
    gap = plan->gap;
    benchmark::DoNotOptimize(plan);
  }
  state.counters["replicas_placed"] = static_cast<double>(placed);
  state.counters["gpus_used"] = static_cast<double>(gpus);
  state.counters["gap_to_lower_bound_pct"] = 100 * gap;
}
BENCHMARK(BM_PlanBatchOf1000_80kGpus)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace fleetplan::placement

BENCHMARK_MAIN();
