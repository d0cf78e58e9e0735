#include "planner/placement/packing_state.h"

#include <algorithm>
#include <tuple>

#include "planner/placement/fit.h"

namespace fleetplan::placement {
namespace {

// What a node contributes to the layout; a node whose shape is unchanged keeps its domains.
bool SameShape(const Node& a, const Node& b) {
  if (a.name != b.name || a.state != b.state || a.pool != b.pool || a.zone != b.zone ||
      a.gpus.size() != b.gpus.size()) {
    return false;
  }
  for (size_t i = 0; i < a.gpus.size(); ++i) {
    const Gpu& x = a.gpus[i];
    const Gpu& y = b.gpus[i];
    if (x.index != y.index || x.gpu_type != y.gpu_type || x.nvlink_domain != y.nvlink_domain ||
        x.healthy != y.healthy) {
      return false;
    }
  }
  return true;
}

bool SameTypes(const std::vector<GpuType>& a, const std::vector<GpuType>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].memory_bytes != b[i].memory_bytes) return false;
  }
  return true;
}

const GpuType* FindType(const std::vector<GpuType>& types, const std::string& name) {
  auto it = std::lower_bound(types.begin(), types.end(), name,
                             [](const GpuType& t, const std::string& n) { return t.name < n; });
  return it != types.end() && it->name == name ? &*it : nullptr;
}

}  // namespace

PackingState::PackingState(const FleetSnapshot& s) : snap_(&s) { Build(); }

PackingState::PackingState(const FleetSnapshot& s, const PackingState& previous,
                           const std::vector<size_t>& changed)
    : snap_(&s) {
  bool reuse = s.nodes.size() == previous.snap_->nodes.size() &&
               SameTypes(s.gpu_types, previous.layout_->types);
  for (size_t i = 0; reuse && i < changed.size(); ++i) {
    reuse = changed[i] < s.nodes.size() &&
            SameShape(s.nodes[changed[i]], previous.snap_->nodes[changed[i]]);
  }
  if (!reuse) {
    Build();
    return;
  }
  layout_ = previous.layout_;
  free_bytes_ = previous.free_bytes_;
  untouched_ = previous.untouched_;
  free_exclusive_ = previous.free_exclusive_;
  for (size_t ni : changed) FillNode(ni);
}

void PackingState::Build() {
  const FleetSnapshot& s = *snap_;
  auto layout = std::make_shared<Layout>();
  layout->types = s.gpu_types;
  size_t total = 0;
  layout->offset.reserve(s.nodes.size());
  for (const Node& n : s.nodes) {
    layout->offset.push_back(total);
    total += n.gpus.size();
  }
  const GpuType* last_type = nullptr;
  std::vector<DomainState> local;  // this node's domains (few): linear lookup, no map
  for (size_t ni = 0; ni < s.nodes.size(); ++ni) {
    const Node& n = s.nodes[ni];
    local.clear();
    for (size_t gi = 0; gi < n.gpus.size(); ++gi) {
      const Gpu& g = n.gpus[gi];
      if (last_type == nullptr || last_type->name != g.gpu_type)
        last_type = FindType(layout->types, g.gpu_type);
      const GpuType* type = last_type;
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
      if (Schedulable(n, g)) dom->gpus.push_back(static_cast<int64_t>(gi));
    }
    std::sort(local.begin(), local.end(), [](const DomainState& a, const DomainState& b) {
      return std::tie(a.domain, a.type->name) < std::tie(b.domain, b.type->name);
    });
    layout->first_domain.push_back(layout->domains.size());
    for (DomainState& dom : local) {
      layout->by_type[dom.type->name].push_back(layout->domains.size());
      int64_t& largest = layout->largest_by_type[dom.type->name];
      largest = std::max(largest, dom.size);
      ++layout->sizes_by_type_and_pool[dom.type->name][n.pool][dom.size];
      layout->domains.push_back(std::move(dom));
    }
  }
  layout->first_domain.push_back(layout->domains.size());
  layout_ = std::move(layout);
  free_bytes_ = CowArray<int64_t>(total, 0);
  untouched_ = CowArray<char>(total, 0);
  free_exclusive_ = CowArray<int64_t>(layout_->domains.size(), 0);
  for (size_t ni = 0; ni < s.nodes.size(); ++ni) FillNode(ni);
}

void PackingState::FillNode(size_t ni) {
  const Node& n = snap_->nodes[ni];
  const Layout& layout = *layout_;
  for (size_t gi = 0; gi < n.gpus.size(); ++gi) {
    const Gpu& g = n.gpus[gi];
    const GpuType* type = FindType(layout.types, g.gpu_type);
    const bool ok = type != nullptr && Schedulable(n, g);
    const int64_t used = g.committed_bytes + g.reserved_bytes;
    const size_t slot = layout.offset[ni] + gi;
    free_bytes_.Mutable(slot) = ok ? FreeBytes(type->memory_bytes, used) : 0;
    untouched_.Mutable(slot) = ok && used == 0 ? 1 : 0;
  }
  for (size_t id = layout.first_domain[ni]; id < layout.first_domain[ni + 1]; ++id) {
    int64_t free = 0;
    for (int64_t gi : layout.domains[id].gpus) free += untouched_[Slot(ni, gi)];
    free_exclusive_.Mutable(id) = free;
  }
}

const std::vector<size_t>& PackingState::DomainsOfType(const std::string& type) const {
  static const std::vector<size_t> kNone;
  auto it = layout_->by_type.find(type);
  return it == layout_->by_type.end() ? kNone : it->second;
}

void PackingState::Place(size_t domain_id, int64_t gpu, int64_t bytes,
                         const std::string& deployment) {
  const DomainState& dom = layout_->domains[domain_id];
  const size_t slot = Slot(dom.node, gpu);
  free_bytes_.Mutable(slot) -= bytes;
  if (untouched_[slot]) {
    untouched_.Mutable(slot) = 0;
    --free_exclusive_.Mutable(domain_id);
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
