#ifndef FLEETPLAN_STORAGE_STORE_TEST_UTIL_H_
#define FLEETPLAN_STORAGE_STORE_TEST_UTIL_H_

// Builders for storage tests and benchmarks (tests only).

#include <cstdint>
#include <string>
#include <vector>

#include "planner/common/units.h"
#include "storage/placement_store.h"

namespace fleetplan::storage::testing {

inline GpuType MakeGpuType(const std::string& name, int64_t memory_bytes = 80 * kGiB) {
  return GpuType{.name = name, .memory_bytes = memory_bytes};
}

// A node with `gpus` GPUs of `gpu_type`, in NVLink domains of `domain_size`.
inline Node MakeNode(const std::string& name, int64_t gpus, const std::string& gpu_type,
                     const std::string& pool = "pool-a", int64_t domain_size = 8) {
  Node n{.name = name, .pool = pool, .zone = "zone-1", .rack = "rack-1"};
  for (int64_t i = 0; i < gpus; ++i) {
    n.gpus.push_back(
        placement::Gpu{.index = i, .gpu_type = gpu_type, .nvlink_domain = i / domain_size});
  }
  return n;
}

inline ModelRecord MakeModel(const std::string& name) {
  return ModelRecord{.name = name,
                     .config_json = R"({"model_type": "llama"})",
                     .model_type = "llama",
                     .params = 8'000'000'000,
                     .weights_bytes = 16'000'000'000,
                     .kv_bytes_per_token = 131072};
}

// One replica on `gpus` of `node` (index i gets rank i), `bytes` each.
inline Placement MakePlacement(const std::string& node, const std::vector<int64_t>& gpus,
                               int64_t bytes, const std::string& model = "m",
                               const std::string& deployment = "d") {
  Placement p{.deployment = deployment, .model = model, .tp = static_cast<int64_t>(gpus.size())};
  for (size_t i = 0; i < gpus.size(); ++i) {
    p.ranks.push_back(placement::PlacementRank{
        .rank = static_cast<int64_t>(i), .gpu = placement::GpuRef{node, gpus[i]}, .bytes = bytes});
  }
  return p;
}

}  // namespace fleetplan::storage::testing

#endif  // FLEETPLAN_STORAGE_STORE_TEST_UTIL_H_
