#include "planner/placement/failure.h"

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"
#include "planner/placement/packing_state.h"
#include "planner/placement/planner.h"

namespace fleetplan::placement {
namespace {

constexpr int64_t kMaxGpusPerNode = limits::kMaxGpusPerNode;

bool OnFailed(const Placement& p, const std::set<std::string>& failed) {
  return std::any_of(p.ranks.begin(), p.ranks.end(),
                     [&](const PlacementRank& r) { return failed.count(r.gpu.node) > 0; });
}

}  // namespace

double FailureImpact::absorbed_ratio() const {
  return displaced.empty() ? 1.0
                           : static_cast<double>(absorbed) / static_cast<double>(displaced.size());
}

absl::StatusOr<FailureImpact> SimulateFailure(const FleetSnapshot& snapshot,
                                              const FailureScenario& scenario,
                                              const std::vector<Placement>& active,
                                              const std::map<std::string, DeploymentSpec>& specs,
                                              const PlannerOptions& options) {
  if (scenario.nodes.empty() && scenario.zones.empty()) {
    return absl::InvalidArgumentError("name the nodes or zones that fail");
  }
  std::set<std::string> failed;
  for (const std::string& name : scenario.nodes) {
    if (snapshot.FindNode(name) == nullptr) {
      return absl::NotFoundError(absl::StrCat("node \"", name, "\" not found"));
    }
    failed.insert(name);
  }
  for (const std::string& zone : scenario.zones) {
    bool any = false;
    for (const Node& n : snapshot.nodes) {
      if (n.zone != zone) continue;
      failed.insert(n.name);
      any = true;
    }
    if (!any) return absl::NotFoundError(absl::StrCat("zone \"", zone, "\" has no nodes"));
  }
  FailureImpact impact;
  impact.failed_nodes.assign(failed.begin(), failed.end());

  // The survivors: a copy sharing every node but the failed ones, which go down.
  FleetSnapshot survivors = snapshot;
  for (size_t i = 0; i < survivors.nodes.size(); ++i) {
    if (failed.count(survivors.nodes[i].name) > 0)
      survivors.nodes.Mutable(i).state = NodeState::kDown;
  }
  PackingState state(survivors);

  // Displaced placements, grouped by deployment in id order; surviving replicas mark the nodes and
  // zones their deployment already uses (spread), without bytes: theirs are in the snapshot.
  std::map<std::string, std::vector<const Placement*>> displaced;
  // (node position, GPU index) -> (domain, position in node.gpus), for schedulable GPUs.
  std::unordered_map<int64_t, std::pair<size_t, int64_t>> slot_of;
  auto key = [](size_t node, int64_t gpu) {
    return static_cast<int64_t>(node) * (kMaxGpusPerNode + 1) + gpu;
  };
  for (size_t id = 0; id < state.domains().size(); ++id) {
    const DomainState& d = state.domains()[id];
    for (int64_t pos : d.gpus) {
      slot_of[key(d.node, state.node(d).gpus[static_cast<size_t>(pos)].index)] = {id, pos};
    }
  }
  auto node_position = [&](const std::string& name) -> std::optional<size_t> {
    auto it = std::lower_bound(survivors.nodes.begin(), survivors.nodes.end(), name,
                               [](const Node& n, const std::string& v) { return n.name < v; });
    if (it == survivors.nodes.end() || it->name != name) return std::nullopt;
    return static_cast<size_t>(it - survivors.nodes.begin());
  };
  std::vector<const Placement*> sorted;
  for (const Placement& p : active) sorted.push_back(&p);
  std::sort(sorted.begin(), sorted.end(),
            [](const Placement* a, const Placement* b) { return a->id < b->id; });
  for (const Placement* p : sorted) {
    if (OnFailed(*p, failed)) {
      displaced[p->deployment].push_back(p);
      impact.displaced.push_back(*p);
      continue;
    }
    for (const PlacementRank& r : p->ranks) {
      const std::optional<size_t> node = node_position(r.gpu.node);
      if (!node || r.gpu.index < 0 || r.gpu.index > kMaxGpusPerNode) continue;
      auto it = slot_of.find(key(*node, r.gpu.index));
      if (it != slot_of.end()) state.Place(it->second.first, it->second.second, 0, p->deployment);
    }
  }

  PlacementRequest request;
  std::vector<const std::vector<const Placement*>*> order;
  for (const auto& [name, list] : displaced) {
    auto spec = specs.find(name);
    if (spec == specs.end() || (spec->second.spec == nullptr && spec->second.gguf == nullptr)) {
      for (size_t i = 0; i < list.size(); ++i) impact.without_spec.push_back(name);
      continue;
    }
    DeploymentSpec d = spec->second;
    d.name = name;
    d.replicas = static_cast<int64_t>(list.size());
    request.deployments.push_back(std::move(d));
    order.push_back(&list);
  }
  if (!request.deployments.empty()) {
    ASSIGN_OR_RETURN(impact.replan, PlanPlacement(state, request, options));
  }
  impact.replan.snapshot_generation = snapshot.generation;
  // The replan numbers each deployment's replicas 0..k-1: give them the displaced ones' numbers.
  auto original = [&](const std::string& deployment, int64_t r) {
    for (size_t i = 0; i < request.deployments.size(); ++i) {
      if (request.deployments[i].name != deployment) continue;
      const auto& list = *order[i];
      if (r >= 0 && static_cast<size_t>(r) < list.size())
        return list[static_cast<size_t>(r)]->replica;
    }
    return r;
  };
  for (ReplicaPlacement& r : impact.replan.replicas) r.replica = original(r.deployment, r.replica);
  for (Unplaced& u : impact.replan.unplaced) u.replica = original(u.deployment, u.replica);
  impact.absorbed = static_cast<int64_t>(impact.replan.replicas.size());
  return impact;
}

}  // namespace fleetplan::placement
