#include "planner/placement/headroom_index.h"

#include <algorithm>
#include <limits>
#include <set>

namespace fleetplan::placement {
namespace {

int64_t Clamp(absl::int128 v) {
  if (v > absl::int128(std::numeric_limits<int64_t>::max()))
    return std::numeric_limits<int64_t>::max();
  return v < 0 ? 0 : static_cast<int64_t>(v);
}

const GpuType* FindType(const std::vector<GpuType>& types, const std::string& name) {
  auto it = std::lower_bound(types.begin(), types.end(), name,
                             [](const GpuType& t, const std::string& n) { return t.name < n; });
  return it != types.end() && it->name == name ? &*it : nullptr;
}

}  // namespace

void HeadroomIndex::Sums::Add(const Sums& o, int sign) {
  total += sign * o.total;
  reserved += sign * o.reserved;
  committed += sign * o.committed;
  free += sign * o.free;
  gpus += sign * o.gpus;
  free_gpus += sign * o.free_gpus;
  for (size_t i = 0; i < gpus_by_risk.size(); ++i) gpus_by_risk[i] += sign * o.gpus_by_risk[i];
  for (const auto& [size, count] : o.free_domains) {
    auto it = free_domains.emplace(size, 0).first;
    it->second += sign * count;
    if (it->second == 0) free_domains.erase(it);
  }
}

Headroom HeadroomIndex::Sums::ToHeadroom(const std::string& key) const {
  Headroom h{.key = key,
             .total_bytes = Clamp(total),
             .reserved_bytes = Clamp(reserved),
             .committed_bytes = Clamp(committed),
             .free_bytes = Clamp(free),
             .gpus = gpus,
             .free_gpus = free_gpus,
             .largest_free_nvlink_domain = free_domains.empty() ? 0 : free_domains.rbegin()->first};
  for (size_t i = gpus_by_risk.size(); i-- > 0;) {
    if (gpus_by_risk[i] > 0) {
      h.risk = static_cast<Risk>(i);
      break;
    }
  }
  FinishHeadroom(h);
  return h;
}

HeadroomIndex::NodeSums HeadroomIndex::Contribution(const Node& node,
                                                    const std::vector<GpuType>& types) {
  NodeSums c;
  std::map<int64_t, int64_t> free_in_domain;
  std::map<std::pair<std::string, int64_t>, int64_t> typed;
  for (const Gpu& gpu : node.gpus) {
    const Headroom g = GpuHeadroomOf(node, gpu, FindType(types, gpu.gpu_type));
    Sums s;
    s.total = g.total_bytes;
    s.reserved = g.reserved_bytes;
    s.committed = g.committed_bytes;
    s.free = g.free_bytes;
    s.gpus = 1;
    s.free_gpus = g.free_gpus;
    s.gpus_by_risk[static_cast<size_t>(g.risk)] = 1;
    c.all.Add(s, 1);
    c.by_type[gpu.gpu_type].Add(s, 1);
    if (g.free_gpus == 1) {
      ++free_in_domain[gpu.nvlink_domain];
      ++typed[{gpu.gpu_type, gpu.nvlink_domain}];
    }
  }
  for (const auto& [domain, free] : free_in_domain) ++c.all.free_domains[free];
  for (const auto& [key, free] : typed) ++c.by_type[key.first].free_domains[free];
  return c;
}

void HeadroomIndex::Apply(const Node& node, const NodeSums& c, int sign) {
  fleet_.Add(c.all, sign);
  Sums& pool = pools_[node.pool];
  pool.Add(c.all, sign);
  if (pool.gpus == 0) pools_.erase(node.pool);
  for (const auto& [type, sums] : c.by_type) {
    Sums& t = types_[type];
    t.Add(sums, sign);
    if (t.gpus == 0) types_.erase(type);
  }
}

HeadroomIndex::HeadroomIndex(const FleetSnapshot& snapshot) {
  for (const Node& node : snapshot.nodes) Apply(node, Contribution(node, snapshot.gpu_types), 1);
}

void HeadroomIndex::Replace(const Node* before, const Node* after,
                            const std::vector<GpuType>& types) {
  if (before != nullptr) Apply(*before, Contribution(*before, types), -1);
  if (after != nullptr) Apply(*after, Contribution(*after, types), 1);
}

Headroom HeadroomIndex::Fleet() const { return fleet_.ToHeadroom(""); }

std::vector<Headroom> HeadroomIndex::Pools() const {
  std::vector<Headroom> out;
  for (const auto& [name, sums] : pools_) out.push_back(sums.ToHeadroom(name));
  return out;
}

std::vector<Headroom> HeadroomIndex::Types() const {
  std::vector<Headroom> out;
  for (const auto& [name, sums] : types_) out.push_back(sums.ToHeadroom(name));
  return out;
}

Headroom HeadroomIndex::Pool(const std::string& name) const {
  auto it = pools_.find(name);
  return it == pools_.end() ? Headroom{.key = name} : it->second.ToHeadroom(name);
}

Headroom HeadroomIndex::Type(const std::string& name) const {
  auto it = types_.find(name);
  return it == types_.end() ? Headroom{.key = name} : it->second.ToHeadroom(name);
}

FleetHeadroom TouchedHeadroomAfter(const FleetSnapshot& snapshot, const HeadroomIndex& index,
                                   const std::vector<PlacementRank>& ranks) {
  // The touched nodes, with the ranks reserved on their GPUs.
  std::map<std::string, Node> after;
  for (const PlacementRank& rank : ranks) {
    auto it = after.find(rank.gpu.node);
    if (it == after.end()) {
      const Node* n = snapshot.FindNode(rank.gpu.node);
      if (n == nullptr) continue;
      it = after.emplace(rank.gpu.node, *n).first;
    }
    for (Gpu& g : it->second.gpus) {
      if (g.index == rank.gpu.index) g.reserved_bytes += rank.bytes;
    }
  }
  HeadroomIndex updated = index;  // copies sums per pool and type, not the fleet
  std::set<std::string> pools, types;
  FleetHeadroom out{.generation = snapshot.generation};
  for (const auto& [name, node] : after) {
    updated.Replace(snapshot.FindNode(name), &node, snapshot.gpu_types);
    pools.insert(node.pool);
    for (const Gpu& g : node.gpus) types.insert(g.gpu_type);
    // The node's own headroom: a one-node snapshot's fleet line.
    FleetSnapshot one{.gpu_types = snapshot.gpu_types};
    one.nodes.push_back(node);
    Headroom h = ComputeHeadroom(one, false).nodes.front();
    out.nodes.push_back(std::move(h));
  }
  out.fleet = updated.Fleet();
  for (const std::string& p : pools) out.pools.push_back(updated.Pool(p));
  for (const std::string& t : types) out.gpu_types.push_back(updated.Type(t));
  return out;
}

}  // namespace fleetplan::placement
