#include "planner/placement/filters.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "planner/placement/fit.h"

namespace fleetplan::placement {

bool Allowed(const std::vector<std::string>& allowed, const std::string& value) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

bool NodeAllowed(const DeploymentSpec& d, const Node& n) {
  return Allowed(d.pools, n.pool) && Allowed(d.zones, n.zone);
}

bool SpreadAllows(const PackingState& st, const DeploymentSpec& d, const Node& n) {
  switch (d.spread) {
    case Spread::kNone:
      return true;
    case Spread::kNodes:
      return !st.UsesNode(d.name, n.name);
    case Spread::kZones:
      return !st.UsesZone(d.name, n.zone);
  }
  return true;
}

int64_t KeepBytes(const DeploymentSpec& d, const GpuType& type) {
  return static_cast<int64_t>(std::ceil(d.min_free_ratio * static_cast<double>(type.memory_bytes)));
}

std::vector<int64_t> EligibleGpus(const PackingState& st, const DomainState& dom,
                                  const DeploymentSpec& d, int64_t bytes) {
  std::vector<int64_t> out;
  const Node& n = st.node(dom);
  const int64_t keep = KeepBytes(d, *dom.type);
  for (int64_t gi : dom.gpus) {
    if (n.gpus[static_cast<size_t>(gi)].gpu_type != dom.type->name) continue;
    const bool ok =
        d.shared ? FitsOnGpu(st.free_bytes(dom.node, gi), bytes, keep) : st.untouched(dom.node, gi);
    if (ok) out.push_back(gi);
  }
  return out;
}

std::map<std::string, int64_t> LargestDomains(const PackingState& st, const DeploymentSpec& d) {
  std::map<std::string, int64_t> out;
  for (const auto& [type, ids] : st.by_type()) {
    for (size_t id : ids) {
      const DomainState& dom = st.domains()[id];
      if (!NodeAllowed(d, st.node(dom))) continue;
      out[type] = std::max(out[type], dom.size);
    }
  }
  return out;
}

int64_t MostDomainsInOnePool(const PackingState& st, const DeploymentSpec& d, const GpuType& type,
                             int64_t tp) {
  std::map<std::string, int64_t> per_pool;
  int64_t most = 0;
  for (size_t id : st.DomainsOfType(type.name)) {
    const DomainState& dom = st.domains()[id];
    const Node& n = st.node(dom);
    if (!NodeAllowed(d, n) || dom.size < tp) continue;
    most = std::max(most, ++per_pool[n.pool]);
  }
  return most;
}

int64_t SpreadTargets(const PackingState& st, const DeploymentSpec& d, const GpuType& type,
                      int64_t tp) {
  std::set<std::string> targets;
  for (size_t id : st.DomainsOfType(type.name)) {
    const DomainState& dom = st.domains()[id];
    const Node& n = st.node(dom);
    if (!NodeAllowed(d, n) || dom.size < tp) continue;
    targets.insert(d.spread == Spread::kZones ? n.zone : n.name);
  }
  return static_cast<int64_t>(targets.size());
}

}  // namespace fleetplan::placement
