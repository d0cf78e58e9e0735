#include "planner/placement/packing_state.h"

#include <algorithm>
#include <tuple>

#include "planner/placement/fit.h"

namespace fleetplan::placement {

PackingState::PackingState(const FleetSnapshot& s) : snap_(&s) {
  size_t total = 0;
  offset_.reserve(s.nodes.size());
  for (const Node& n : s.nodes) {
    offset_.push_back(total);
    total += n.gpus.size();
  }
  free_bytes_.resize(total);
  untouched_.resize(total);
  const GpuType* last_type = nullptr;
  std::vector<DomainState> local;  // this node's domains (few): linear lookup, no map
  for (size_t ni = 0; ni < s.nodes.size(); ++ni) {
    const Node& n = s.nodes[ni];
    local.clear();
    for (size_t gi = 0; gi < n.gpus.size(); ++gi) {
      const Gpu& g = n.gpus[gi];
      if (last_type == nullptr || last_type->name != g.gpu_type)
        last_type = s.FindGpuType(g.gpu_type);
      const GpuType* type = last_type;
      const bool ok = type != nullptr && Schedulable(n, g);
      const int64_t used = g.committed_bytes + g.reserved_bytes;
      const size_t slot = offset_[ni] + gi;
      free_bytes_[slot] = ok ? FreeBytes(type->memory_bytes, used) : 0;
      untouched_[slot] = ok && used == 0 ? 1 : 0;
      if (type == nullptr) continue;
      DomainState* dom = nullptr;
      for (DomainState& d : local) {
        if (d.domain == g.nvlink_domain && d.type == type) dom = &d;
      }
      if (dom == nullptr) {
        local.push_back(DomainState{.node = ni, .domain = g.nvlink_domain, .type = type});
        dom = &local.back();
      }
      ++dom->size;
      if (ok) dom->gpus.push_back(static_cast<int64_t>(gi));
      if (untouched_[slot]) ++dom->free_exclusive;
    }
    std::sort(local.begin(), local.end(), [](const DomainState& a, const DomainState& b) {
      return std::tie(a.domain, a.type->name) < std::tie(b.domain, b.type->name);
    });
    for (DomainState& dom : local) {
      by_type_[dom.type->name].push_back(domains_.size());
      domains_.push_back(std::move(dom));
    }
  }
}

const std::vector<size_t>& PackingState::DomainsOfType(const std::string& type) const {
  static const std::vector<size_t> kNone;
  auto it = by_type_.find(type);
  return it == by_type_.end() ? kNone : it->second;
}

void PackingState::Place(size_t domain_id, int64_t gpu, int64_t bytes,
                         const std::string& deployment) {
  DomainState& dom = domains_[domain_id];
  const size_t slot = Slot(dom.node, gpu);
  free_bytes_[slot] -= bytes;
  if (untouched_[slot]) {
    untouched_[slot] = 0;
    --dom.free_exclusive;
  }
  const Node& n = snap_->nodes[dom.node];
  used_nodes_[deployment].insert(n.name);
  used_zones_[deployment].insert(n.zone);
}

bool PackingState::UsesNode(const std::string& deployment, const std::string& node) const {
  auto it = used_nodes_.find(deployment);
  return it != used_nodes_.end() && it->second.count(node) > 0;
}

bool PackingState::UsesZone(const std::string& deployment, const std::string& zone) const {
  auto it = used_zones_.find(deployment);
  return it != used_zones_.end() && it->second.count(zone) > 0;
}

}  // namespace fleetplan::placement
