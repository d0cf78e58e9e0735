#include "planner/placement/headroom.h"

#include <algorithm>
#include <limits>
#include <map>

#include "planner/placement/fit.h"

namespace fleetplan::placement {
namespace {

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? std::numeric_limits<int64_t>::max() : 0;
  return sum;
}

void Add(Headroom& into, const Headroom& gpu) {
  into.total_bytes = SaturatingAdd(into.total_bytes, gpu.total_bytes);
  into.reserved_bytes = SaturatingAdd(into.reserved_bytes, gpu.reserved_bytes);
  into.committed_bytes = SaturatingAdd(into.committed_bytes, gpu.committed_bytes);
  into.free_bytes = SaturatingAdd(into.free_bytes, gpu.free_bytes);
  into.gpus += gpu.gpus;
  into.free_gpus += gpu.free_gpus;
  into.risk = std::max(into.risk, gpu.risk);
}

}  // namespace

void FinishHeadroom(Headroom& h) {
  h.headroom_ratio = h.total_bytes > 0
                         ? static_cast<double>(h.free_bytes) / static_cast<double>(h.total_bytes)
                         : 0.0;
}

Headroom GpuHeadroomOf(const Node& node, const Gpu& gpu, const GpuType* type) {
  const int64_t total = type != nullptr ? type->memory_bytes : 0;
  const int64_t used = SaturatingAdd(gpu.committed_bytes, gpu.reserved_bytes);
  const bool schedulable = Schedulable(node, gpu);
  Headroom g{.key = node.name + "/" + std::to_string(gpu.index),
             .total_bytes = total,
             .reserved_bytes = gpu.reserved_bytes,
             .committed_bytes = gpu.committed_bytes,
             .free_bytes = schedulable ? FreeBytes(total, used) : 0,
             .risk = RiskOfUse(used, total),
             .gpus = 1,
             .free_gpus = schedulable && used == 0 ? 1 : 0};
  g.largest_free_nvlink_domain = g.free_gpus;
  FinishHeadroom(g);
  return g;
}

FleetHeadroom ComputeHeadroom(const FleetSnapshot& snapshot, bool include_gpus) {
  FleetHeadroom out;
  out.generation = snapshot.generation;
  std::map<std::string, Headroom> pools, types;
  for (const Node& node : snapshot.nodes) {
    Headroom node_h{.key = node.name};
    std::map<int64_t, int64_t> free_in_domain;
    std::map<std::pair<std::string, int64_t>, int64_t> typed;  // per GPU type and domain
    for (const Gpu& gpu : node.gpus) {
      const Headroom g = GpuHeadroomOf(node, gpu, snapshot.FindGpuType(gpu.gpu_type));
      if (g.free_gpus == 1) {
        ++free_in_domain[gpu.nvlink_domain];
        ++typed[{gpu.gpu_type, gpu.nvlink_domain}];
      }
      Add(node_h, g);
      Add(pools[node.pool], g);
      Add(types[gpu.gpu_type], g);
      Add(out.fleet, g);
      if (include_gpus) {
        out.gpus.push_back(GpuHeadroom{.node = node.name,
                                       .index = gpu.index,
                                       .pool = node.pool,
                                       .gpu_type = gpu.gpu_type,
                                       .uuid = gpu.uuid,
                                       .headroom = g});
      }
    }
    for (const auto& [domain, free] : free_in_domain) {
      node_h.largest_free_nvlink_domain = std::max(node_h.largest_free_nvlink_domain, free);
      Headroom& pool = pools[node.pool];
      pool.largest_free_nvlink_domain = std::max(pool.largest_free_nvlink_domain, free);
      out.fleet.largest_free_nvlink_domain = std::max(out.fleet.largest_free_nvlink_domain, free);
    }
    // Per GPU type: the largest free domain made of that type.
    for (const auto& [key, free] : typed) {
      Headroom& t = types[key.first];
      t.largest_free_nvlink_domain = std::max(t.largest_free_nvlink_domain, free);
    }
    FinishHeadroom(node_h);
    out.nodes.push_back(node_h);
  }
  for (auto& [name, h] : pools) {
    h.key = name;
    FinishHeadroom(h);
    out.pools.push_back(h);
  }
  for (auto& [name, h] : types) {
    h.key = name;
    FinishHeadroom(h);
    out.gpu_types.push_back(h);
  }
  FinishHeadroom(out.fleet);
  return out;
}

FleetHeadroom HeadroomAfter(FleetSnapshot snapshot, const std::vector<PlacementRank>& ranks,
                            bool include_gpus) {
  for (const PlacementRank& rank : ranks) {
    auto node =
        std::lower_bound(snapshot.nodes.begin(), snapshot.nodes.end(), rank.gpu.node,
                         [](const Node& n, const std::string& name) { return n.name < name; });
    if (node == snapshot.nodes.end() || node->name != rank.gpu.node) continue;
    for (Gpu& g : snapshot.nodes.Mutable(static_cast<size_t>(node - snapshot.nodes.begin())).gpus) {
      if (g.index == rank.gpu.index) g.reserved_bytes = SaturatingAdd(g.reserved_bytes, rank.bytes);
    }
  }
  return ComputeHeadroom(snapshot, include_gpus);
}

}  // namespace fleetplan::placement
