// Cost of one /metrics scrape of a 10,000-node x 8-GPU fleet (per-GPU series are the point of this
// tool, so they must be cheap): time and exposition size.
//
//   ./build-release/bench/metrics_bench --benchmark_min_time=2

#include <unistd.h>

#include <filesystem>

#include "benchmark/benchmark.h"
#include "server/metrics.h"
#include "storage/sql_store.h"
#include "storage/store_test_util.h"

namespace fleetplan::server {
namespace {

storage::SqlStore& BigFleet() {
  static storage::SqlStore* store = [] {
    const std::string path = std::filesystem::temp_directory_path() /
                             ("fleetplan_metrics_bench_" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path);
    auto s = storage::SqlStore::Open({.path = path});
    (*s)->CreateGpuType(storage::testing::MakeGpuType("H100", 80 * kGiB)).IgnoreError();
    for (int i = 0; i < 10000; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "node-%05d", i);
      placement::Node n =
          storage::testing::MakeNode(name, 8, "H100", "pool-" + std::to_string(i % 8));
      for (auto& g : n.gpus) g.uuid = std::string("GPU-") + name + "-" + std::to_string(g.index);
      (*s)->CreateNode(n).IgnoreError();
    }
    return s->release();
  }();
  return *store;
}

// One scrape at `detail`, optionally gzipped as the /metrics handler does for Prometheus.
void Scrape(benchmark::State& state, MetricsDetail detail, bool gzip) {
  storage::LiveFleet fleet(&BigFleet());
  auto metrics = Metrics::Start("", &fleet, nullptr, detail);
  size_t bytes = 0, sent = 0;
  for (auto _ : state) {
    std::string text = (*metrics)->Scrape();
    bytes = text.size();
    sent = bytes;
    if (gzip) sent = Gzip(text).size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["sent_bytes"] = static_cast<double>(sent);
}

void BM_Scrape_10kNodes_80kGpus(benchmark::State& state) {
  Scrape(state, MetricsDetail::kGpu, false);
}
BENCHMARK(BM_Scrape_10kNodes_80kGpus)->Unit(benchmark::kMillisecond);

void BM_ScrapeGzip_10kNodes_80kGpus(benchmark::State& state) {
  Scrape(state, MetricsDetail::kGpu, true);
}
BENCHMARK(BM_ScrapeGzip_10kNodes_80kGpus)->Unit(benchmark::kMillisecond);

void BM_ScrapePerNode_10kNodes(benchmark::State& state) {
  Scrape(state, MetricsDetail::kNode, true);
}
BENCHMARK(BM_ScrapePerNode_10kNodes)->Unit(benchmark::kMillisecond);

void BM_ScrapePerPool_10kNodes(benchmark::State& state) {
  Scrape(state, MetricsDetail::kPool, true);
}
BENCHMARK(BM_ScrapePerPool_10kNodes)->Unit(benchmark::kMillisecond);

// The parts: the snapshot alone, and building the metric families without serialising them.
void BM_Snapshot_10kNodes(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(BigFleet().LoadSnapshot());
}
BENCHMARK(BM_Snapshot_10kNodes)->Unit(benchmark::kMillisecond);

void BM_Headroom_10kNodes(benchmark::State& state) {
  auto snap = BigFleet().LoadSnapshot();
  for (auto _ : state) benchmark::DoNotOptimize(placement::ComputeHeadroom(*snap, true));
}
BENCHMARK(BM_Headroom_10kNodes)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace fleetplan::server

BENCHMARK_MAIN();
