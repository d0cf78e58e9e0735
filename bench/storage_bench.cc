// Storage speed: LoadSnapshot of a 10,000-node x 8-GPU fleet with existing placements, and
// commit throughput (one fsync per commit, synchronous=FULL).
//
//   ./build/bench/storage_bench --benchmark_min_time=1

#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>

#include "benchmark/benchmark.h"
#include "storage/sql_store.h"
#include "storage/store_test_util.h"

namespace fleetplan::storage {
namespace {

using testing::MakeGpuType;
using testing::MakeModel;
using testing::MakeNode;
using testing::MakePlacement;

constexpr int kNodes = 10000;

std::string BenchDir() {
  std::string dir =
      std::filesystem::temp_directory_path() / ("fleetplan_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// A store with 10,000 nodes of 8 GPUs (H100/A100 mixed, 4 pools) and one 2-GPU placement on
// every fourth node. Built once per process.
SqlStore& BigFleet() {
  static SqlStore* store = [] {
    const std::string path = BenchDir() + "/big.db";
    std::filesystem::remove(path);
    auto s = SqlStore::Open({.path = path});
    (*s)->CreateGpuType(MakeGpuType("H100", 80 * kGiB)).IgnoreError();
    (*s)->CreateGpuType(MakeGpuType("A100", 80 * kGiB)).IgnoreError();
    (*s)->CreateModel(MakeModel("m")).IgnoreError();
    for (int i = 0; i < kNodes; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "node-%05d", i);
      (*s)->CreateNode(
              MakeNode(name, 8, i % 3 == 0 ? "A100" : "H100", "pool-" + std::to_string(i % 4)))
          .IgnoreError();
    }
    for (int i = 0; i < kNodes; i += 4) {
      char name[32];
      std::snprintf(name, sizeof(name), "node-%05d", i);
      auto gen = (*s)->FleetGeneration();
      (*s)->CommitPlacements({.request_id = "seed-" + std::to_string(i),
                              .snapshot_generation = *gen,
                              .placements = {MakePlacement(name, {0, 1}, 30 * kGiB)}})
          .IgnoreError();
    }
    return s->release();
  }();
  return *store;
}

void BM_LoadSnapshot_10kNodes_80kGpus(benchmark::State& state) {
  SqlStore& store = BigFleet();
  int64_t gpus = 0;
  for (auto _ : state) {
    auto snap = store.LoadSnapshot();
    gpus = 0;
    for (const auto& n : snap->nodes) gpus += static_cast<int64_t>(n.gpus.size());
    benchmark::DoNotOptimize(snap);
  }
  state.counters["gpus"] = static_cast<double>(gpus);
}
BENCHMARK(BM_LoadSnapshot_10kNodes_80kGpus)->Unit(benchmark::kMillisecond);

void BM_CommitPlacement(benchmark::State& state) {
  SqlStore& store = BigFleet();
  std::mt19937_64 rng(7);
  int64_t i = 0;
  for (auto _ : state) {
    char name[32];
    std::snprintf(name, sizeof(name), "node-%05d", static_cast<int>(1 + (rng() % (kNodes - 1))));
    auto gen = store.FleetGeneration();
    auto r = store.CommitPlacements({.request_id = "bench-" + std::to_string(i++),
                                     .snapshot_generation = *gen,
                                     .placements = {MakePlacement(name, {4, 5}, 1 << 20)}});
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CommitPlacement)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fleetplan::storage

BENCHMARK_MAIN();
