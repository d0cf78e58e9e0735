#include "planner/placement/fleet.h"

#include <algorithm>

#include "planner/placement/fit.h"

namespace fleetplan::placement {

const char* NodeStateName(NodeState s) {
  switch (s) {
    case NodeState::kActive:
      return "active";
    case NodeState::kCordoned:
      return "cordoned";
    case NodeState::kDraining:
      return "draining";
    case NodeState::kDown:
      return "down";
  }
  return "?";
}

std::optional<NodeState> ParseNodeState(const std::string& s) {
  for (NodeState state :
       {NodeState::kActive, NodeState::kCordoned, NodeState::kDraining, NodeState::kDown}) {
    if (s == NodeStateName(state)) return state;
  }
  return std::nullopt;
}

const char* PlacementStateName(PlacementState s) {
  switch (s) {
    case PlacementState::kReserved:
      return "reserved";
    case PlacementState::kCommitted:
      return "committed";
    case PlacementState::kReleased:
      return "released";
  }
  return "?";
}

NodeList::NodeList(std::initializer_list<Node> nodes) {
  nodes_.reserve(nodes.size());
  for (const Node& n : nodes) nodes_.push_back(std::make_shared<Node>(n));
}

NodeList::NodeList(std::vector<Node> nodes) {
  nodes_.reserve(nodes.size());
  for (Node& n : nodes) nodes_.push_back(std::make_shared<Node>(std::move(n)));
}

Node& NodeList::Mutable(size_t i) {
  // use_count() == 1: no other list holds it, and none can start to (they would copy this list).
  if (nodes_[i].use_count() != 1) nodes_[i] = std::make_shared<Node>(*nodes_[i]);
  return *nodes_[i];
}

const GpuType* FleetSnapshot::FindGpuType(const std::string& name) const {
  auto it = std::lower_bound(gpu_types.begin(), gpu_types.end(), name,
                             [](const GpuType& t, const std::string& n) { return t.name < n; });
  return it != gpu_types.end() && it->name == name ? &*it : nullptr;
}

const Node* FleetSnapshot::FindNode(const std::string& name) const {
  auto it = std::lower_bound(nodes.begin(), nodes.end(), name,
                             [](const Node& n, const std::string& s) { return n.name < s; });
  return it != nodes.end() && it->name == name ? &*it : nullptr;
}

int64_t FleetSnapshot::FreeBytes(const Gpu& gpu) const {
  const GpuType* type = FindGpuType(gpu.gpu_type);
  if (type == nullptr) return 0;
  return placement::FreeBytes(type->memory_bytes, gpu.committed_bytes + gpu.reserved_bytes);
}

}  // namespace fleetplan::placement
