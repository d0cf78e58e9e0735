#ifndef FLEETPLAN_PLANNER_PLACEMENT_PACKING_STATE_H_
#define FLEETPLAN_PLANNER_PLACEMENT_PACKING_STATE_H_

// The fleet as the packing loops see it while they place replicas: NVLink domains per GPU type
// (the index every strategy searches), and per GPU the free bytes and whether nothing is placed on
// it yet. Built once per plan from the immutable snapshot (which it points into) and copied per
// packing pass; flat arrays indexed through Slot() so the loops do no map lookups.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "planner/placement/fleet.h"

namespace fleetplan::placement {

struct DomainState {
  size_t node = 0;  // index into snapshot.nodes
  int64_t domain = 0;
  const GpuType* type = nullptr;
  std::vector<int64_t> gpus;   // positions in node.gpus: schedulable GPUs of this domain and type
  int64_t size = 0;            // all GPUs of this domain and type, schedulable or not
  int64_t free_exclusive = 0;  // schedulable GPUs nothing is placed on (kept while packing)
};

class PackingState {
 public:
  explicit PackingState(const FleetSnapshot& snapshot);

  const FleetSnapshot& snapshot() const { return *snap_; }
  const Node& node(const DomainState& d) const { return snap_->nodes[d.node]; }
  const std::vector<DomainState>& domains() const { return domains_; }
  DomainState& domain(size_t id) { return domains_[id]; }
  // Domains of one GPU type (empty for a type with none).
  const std::vector<size_t>& DomainsOfType(const std::string& type) const;
  const std::map<std::string, std::vector<size_t>>& by_type() const { return by_type_; }

  // Per-GPU state, by node index and position in node.gpus.
  int64_t free_bytes(size_t node, int64_t gpu) const { return free_bytes_[Slot(node, gpu)]; }
  bool untouched(size_t node, int64_t gpu) const { return untouched_[Slot(node, gpu)] != 0; }

  // Records `bytes` placed on a GPU of domain `domain_id` for deployment `deployment`.
  void Place(size_t domain_id, int64_t gpu, int64_t bytes, const std::string& deployment);

  // Nodes and zones a deployment already has a replica on (spread constraints).
  bool UsesNode(const std::string& deployment, const std::string& node) const;
  bool UsesZone(const std::string& deployment, const std::string& zone) const;

 private:
  size_t Slot(size_t node, int64_t gpu) const { return offset_[node] + static_cast<size_t>(gpu); }

  const FleetSnapshot* snap_;
  std::vector<DomainState> domains_;  // ordered by node, domain, type
  std::map<std::string, std::vector<size_t>> by_type_;
  std::vector<size_t> offset_;       // node -> first slot of its GPUs
  std::vector<int64_t> free_bytes_;  // per slot
  std::vector<char> untouched_;      // per slot: schedulable and nothing placed
  std::map<std::string, std::set<std::string>> used_nodes_, used_zones_;  // per deployment
};

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_PACKING_STATE_H_
