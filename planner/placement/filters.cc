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

namespace {

// Whether GPU `gi` of `dom` can take a rank of `bytes` for `d` (dom.gpus are schedulable GPUs of
// the domain's type by construction).
bool Eligible(const PackingState& st, const DomainState& dom, const DeploymentSpec& d,
              int64_t bytes, int64_t keep, int64_t gi) {
  return d.shared ? FitsOnGpu(st.free_bytes(dom.node, gi), bytes, keep)
                  : st.untouched(dom.node, gi);
}

}  // namespace

Eligibility CountEligible(const PackingState& st, const DomainState& dom, const DeploymentSpec& d,
                          int64_t bytes) {
  Eligibility e;
  const int64_t keep = KeepBytes(d, *dom.type);
  for (int64_t gi : dom.gpus) {
    if (!Eligible(st, dom, d, bytes, keep, gi)) continue;
    ++e.count;
    e.free_bytes += st.free_bytes(dom.node, gi);
  }
  return e;
}

std::vector<int64_t> EligibleGpus(const PackingState& st, const DomainState& dom,
                                  const DeploymentSpec& d, int64_t bytes) {
  std::vector<int64_t> out;
  const int64_t keep = KeepBytes(d, *dom.type);
  for (int64_t gi : dom.gpus) {
    if (Eligible(st, dom, d, bytes, keep, gi)) out.push_back(gi);
  }
  return out;
}

std::map<std::string, int64_t> LargestDomains(const PackingState& st, const DeploymentSpec& d) {
  if (d.pools.empty() && d.zones.empty()) return st.largest_domain_by_type();
  std::map<std::string, int64_t> out;
  for (const auto& [type, ids] : st.by_type()) {
    int64_t largest = -1;
    for (size_t id : ids) {
      const DomainState& dom = st.domains()[id];
      if (NodeAllowed(d, st.node(dom))) largest = std::max(largest, dom.size);
    }
    if (largest >= 0) out[type] = largest;
  }
  return out;
}

int64_t MostDomainsInOnePool(const PackingState& st, const DeploymentSpec& d, const GpuType& type,
                             int64_t tp) {
  if (d.pools.empty() && d.zones.empty()) {
    int64_t most = 0;
    auto it = st.domain_sizes_by_type_and_pool().find(type.name);
    if (it == st.domain_sizes_by_type_and_pool().end()) return 0;
    for (const auto& [pool, sizes] : it->second) {
      int64_t n = 0;
      for (auto s = sizes.lower_bound(tp); s != sizes.end(); ++s) n += s->second;
      most = std::max(most, n);
    }
    return most;
  }
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
