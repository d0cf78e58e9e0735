#ifndef FLEETPLAN_PLANNER_PLACEMENT_PACKING_STATE_H_
#define FLEETPLAN_PLANNER_PLACEMENT_PACKING_STATE_H_

// The fleet as the packing loops see it while they place replicas: NVLink domains per GPU type
// (the index every strategy searches), and per GPU the free bytes and whether nothing is placed on
// it yet; per domain its wholly free GPUs.
//
// Two parts: the layout (which domains exist, their GPUs, the per-type index; immutable and shared
// by every copy) and the usage (arrays shared page by page, CowArray). So a plan copies what it
// touches, not the fleet, and the server's live fleet state keeps one PackingState current by
// re-reading only the nodes a write changed (the incremental constructor) instead of rebuilding it
// per plan. Points into the snapshot it was built on, which must outlive it.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "planner/placement/fleet.h"

namespace fleetplan::placement {

// A fixed-size array of T shared between copies page by page: copying it copies one pointer per
// 4,096 elements, and a write copies only the page it lands in if another copy still shares it.
// So a plan's private copy of the fleet's usage costs what the plan touches, not the fleet.
template <typename T>
class CowArray {
 public:
  static constexpr size_t kPageBits = 12;
  static constexpr size_t kPage = size_t{1} << kPageBits;

  CowArray() = default;
  CowArray(size_t n, T value) : size_(n) {
    for (size_t i = 0; i < n; i += kPage) {
      pages_.push_back(std::make_shared<std::vector<T>>(std::min(kPage, n - i), value));
    }
  }
  size_t size() const { return size_; }
  T operator[](size_t i) const { return (*pages_[i >> kPageBits])[i & (kPage - 1)]; }
  // The element, writable: its page is copied first when another array shares it (use_count 1:
  // only this array holds the page, and none can start to without copying this array).
  T& Mutable(size_t i) {
    std::shared_ptr<std::vector<T>>& page = pages_[i >> kPageBits];
    if (page.use_count() != 1) page = std::make_shared<std::vector<T>>(*page);
    return (*page)[i & (kPage - 1)];
  }

 private:
  size_t size_ = 0;
  std::vector<std::shared_ptr<std::vector<T>>> pages_;
};

struct DomainState {
  size_t node = 0;  // index into snapshot.nodes
  int64_t domain = 0;
  const GpuType* type = nullptr;  // the layout's own copy of the GPU type
  std::vector<int64_t> gpus;  // positions in node.gpus: schedulable GPUs of this domain and type
  int64_t size = 0;           // all GPUs of this domain and type, schedulable or not
};

class PackingState {
 public:
  explicit PackingState(const FleetSnapshot& snapshot);
  // `snapshot` is `previous`'s snapshot with only the nodes at `changed` (positions, same in both)
  // replaced: reuses the layout when none of them changed shape (GPUs, types, domains, state,
  // pool, zone) and re-reads just their usage; otherwise builds anew. The same result as
  // PackingState(snapshot) either way.
  PackingState(const FleetSnapshot& snapshot, const PackingState& previous,
               const std::vector<size_t>& changed);

  const FleetSnapshot& snapshot() const { return *snap_; }
  const Node& node(const DomainState& d) const { return snap_->nodes[d.node]; }
  const std::vector<DomainState>& domains() const { return layout_->domains; }
  // Domains of one GPU type (empty for a type with none).
  const std::vector<size_t>& DomainsOfType(const std::string& type) const;
  const std::map<std::string, std::vector<size_t>>& by_type() const { return layout_->by_type; }
  // Over the whole fleet: the largest domain of each GPU type, and per type, pool and domain size
  // the number of domains (so requests without pool or zone filters need no scan).
  const std::map<std::string, int64_t>& largest_domain_by_type() const {
    return layout_->largest_by_type;
  }
  const std::map<std::string, std::map<std::string, std::map<int64_t, int64_t>>>&
  domain_sizes_by_type_and_pool() const {
    return layout_->sizes_by_type_and_pool;
  }

  // Per-GPU state, by node index and position in node.gpus.
  int64_t free_bytes(size_t node, int64_t gpu) const { return free_bytes_[Slot(node, gpu)]; }
  bool untouched(size_t node, int64_t gpu) const { return untouched_[Slot(node, gpu)] != 0; }
  // Schedulable GPUs of domain `id` that nothing is placed on (kept while packing).
  int64_t free_exclusive(size_t id) const { return free_exclusive_[id]; }

  // Records `bytes` placed on a GPU of domain `domain_id` for deployment `deployment`.
  void Place(size_t domain_id, int64_t gpu, int64_t bytes, const std::string& deployment);

  // Nodes and zones a deployment already has a replica on (spread constraints).
  bool UsesNode(const std::string& deployment, const std::string& node) const;
  bool UsesZone(const std::string& deployment, const std::string& zone) const;

  // Whether the layout object is shared with `other` (tests of the incremental path).
  bool SharesLayoutWith(const PackingState& other) const { return layout_ == other.layout_; }

 private:
  struct Layout {
    std::vector<GpuType> types;        // what DomainState::type points into
    std::vector<DomainState> domains;  // ordered by node, domain, type
    std::map<std::string, std::vector<size_t>> by_type;
    std::vector<size_t> offset;        // node -> first slot of its GPUs
    std::vector<size_t> first_domain;  // node -> its first domain (domains of a node are adjacent)
    std::map<std::string, int64_t> largest_by_type;
    std::map<std::string, std::map<std::string, std::map<int64_t, int64_t>>> sizes_by_type_and_pool;
  };
  size_t Slot(size_t node, int64_t gpu) const {
    return layout_->offset[node] + static_cast<size_t>(gpu);
  }
  void Build();
  // Free bytes and untouched for the GPUs of node `ni`, and its domains' free_exclusive.
  void FillNode(size_t ni);

  const FleetSnapshot* snap_;
  std::shared_ptr<const Layout> layout_;
  CowArray<int64_t> free_bytes_;      // per slot
  CowArray<char> untouched_;          // per slot: schedulable and nothing placed
  CowArray<int64_t> free_exclusive_;  // per domain
  std::map<std::string, std::set<std::string>> used_nodes_, used_zones_;  // per deployment
};

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_PACKING_STATE_H_
