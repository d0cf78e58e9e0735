#ifndef FLEETPLAN_PLANNER_PLACEMENT_FLEET_H_
#define FLEETPLAN_PLANNER_PLACEMENT_FLEET_H_

// Domain types of the fleet: GPU types, nodes and their GPUs, model catalog entries, placements,
// and the FleetSnapshot the planner works on. Plain values, shared by storage/ (which persists
// them) and planner/placement (which plans on them). No behaviour beyond small lookups.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fleetplan::placement {

struct GpuType {
  std::string name;          // e.g. "H100-80GB-HBM3"
  int64_t memory_bytes = 0;  // total as the driver reports it (cudaMemGetInfo)
  int64_t memory_bandwidth_bytes_per_second = 0;
  double bf16_tflops = 0;
  double cost_per_hour = 0;       // 0: unknown
  int64_t nvlink_generation = 0;  // 0: none
};

enum class NodeState : uint8_t { kActive, kCordoned, kDraining, kDown };
const char* NodeStateName(NodeState s);
// Parses "active" | "cordoned" | "draining" | "down".
std::optional<NodeState> ParseNodeState(const std::string& s);

struct Gpu {
  int64_t index = 0;
  std::string gpu_type;
  int64_t nvlink_domain = 0;  // GPUs of one node with the same domain can do TP together
  bool healthy = true;
  std::string uuid;  // optional; joins with DCGM metrics
  // Filled by snapshots: bytes held by committed placements and unexpired reservations, and the
  // fleet generation at which anything about this GPU last changed.
  int64_t committed_bytes = 0;
  int64_t reserved_bytes = 0;
  int64_t changed_generation = 0;
};

struct Node {
  std::string name;
  std::string pool;
  std::string zone;
  std::string rack;
  std::map<std::string, std::string> labels;
  NodeState state = NodeState::kActive;
  int64_t inter_node_bandwidth_bytes_per_second = 0;
  std::vector<Gpu> gpus;  // ordered by index
  int64_t version = 0;    // bumped by every update (etag)
};

struct ModelRecord {
  std::string name;
  std::string config_json;   // the original config.json text
  std::string quantization;  // override ("" = the checkpoint's own)
  // Summary the estimator derived, so listing is cheap.
  std::string model_type;
  int64_t params = 0;
  int64_t weights_bytes = 0;       // unsharded, in the checkpoint's dtype and quantization
  int64_t kv_bytes_per_token = 0;  // unsharded, model dtype
  int64_t created_unix_ms = 0;
  // A model imported from a GGUF file's header (llama.cpp): that header as JSON
  // (fleetplan.v1.GgufModel), and config_json is empty. Exactly one of the two is set. A list
  // (ListModels) carries "{}" here for such a model, not the header.
  std::string gguf_json;
};

// A deployment as stored: the model and how many replicas, with the planner's full specification
// (engine profile, workload, constraints) kept as JSON text the store does not interpret.
struct DeploymentRecord {
  std::string name;
  std::string model;  // catalog model name
  int64_t replicas = 1;
  std::string spec_json;  // engine profile, workload, constraints
  int64_t created_unix_ms = 0;
};

struct GpuRef {
  std::string node;
  int64_t index = 0;
  bool operator==(const GpuRef&) const = default;
  bool operator<(const GpuRef& o) const { return node != o.node ? node < o.node : index < o.index; }
};

// One rank of a placed replica: which GPU, and the bytes reserved on it (ranks differ: embeddings
// on the first pipeline stage, lm_head on the last).
struct PlacementRank {
  int64_t rank = 0;
  GpuRef gpu;
  int64_t bytes = 0;
};

enum class PlacementState : uint8_t { kReserved, kCommitted, kReleased };
const char* PlacementStateName(PlacementState s);

struct Placement {
  int64_t id = 0;  // assigned by the store
  std::string deployment;
  std::string model;
  int64_t replica = 0;
  int64_t tp = 1;
  int64_t pp = 1;
  int64_t ep = 1;
  std::vector<PlacementRank> ranks;
  PlacementState state = PlacementState::kCommitted;
  std::string request_id;
  int64_t created_unix_ms = 0;
  int64_t expires_unix_ms = 0;  // reservations only; 0 = never
};

// The nodes of a snapshot, each held by a shared pointer: copying a NodeList copies pointers, not
// nodes, so a fleet generation that changed three nodes shares every other node with the one
// before it (the server's live fleet state, storage/live_fleet.h). Reads look like a
// std::vector<Node>; a write (Mutable) first copies a node that another list still shares, so a
// list handed to a reader never changes under it. Not thread-safe to write; safe to read from
// many threads once no one writes it.
class NodeList {
 public:
  class const_iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = Node;
    using difference_type = std::ptrdiff_t;
    using pointer = const Node*;
    using reference = const Node&;
    const_iterator() = default;
    explicit const_iterator(std::vector<std::shared_ptr<Node>>::const_iterator it) : it_(it) {}
    reference operator*() const { return **it_; }
    pointer operator->() const { return it_->get(); }
    reference operator[](difference_type n) const { return *it_[n]; }
    const_iterator& operator++() { return ++it_, *this; }
    const_iterator operator++(int) { return const_iterator(it_++); }
    const_iterator& operator--() { return --it_, *this; }
    const_iterator operator--(int) { return const_iterator(it_--); }
    const_iterator& operator+=(difference_type n) { return it_ += n, *this; }
    const_iterator& operator-=(difference_type n) { return it_ -= n, *this; }
    friend const_iterator operator+(const_iterator a, difference_type n) { return a += n; }
    friend const_iterator operator+(difference_type n, const_iterator a) { return a += n; }
    friend const_iterator operator-(const_iterator a, difference_type n) { return a -= n; }
    friend difference_type operator-(const const_iterator& a, const const_iterator& b) {
      return a.it_ - b.it_;
    }
    friend auto operator<=>(const const_iterator& a, const const_iterator& b) = default;
    friend bool operator==(const const_iterator& a, const const_iterator& b) = default;

   private:
    std::vector<std::shared_ptr<Node>>::const_iterator it_;
  };

  NodeList() = default;
  NodeList(std::initializer_list<Node> nodes);
  NodeList(std::vector<Node> nodes);  // NOLINT: a vector of nodes reads as a node list

  size_t size() const { return nodes_.size(); }
  bool empty() const { return nodes_.empty(); }
  const Node& operator[](size_t i) const { return *nodes_[i]; }
  const Node& front() const { return *nodes_.front(); }
  const Node& back() const { return *nodes_.back(); }
  const_iterator begin() const { return const_iterator(nodes_.begin()); }
  const_iterator end() const { return const_iterator(nodes_.end()); }

  void reserve(size_t n) { nodes_.reserve(n); }
  void push_back(Node node) { nodes_.push_back(std::make_shared<Node>(std::move(node))); }
  // The node at `i`, writable: copied first when another list shares it.
  Node& Mutable(size_t i);
  // Puts `node` at `i` (replacing), inserts it before `i`, or removes the node at `i`.
  void Replace(size_t i, Node node) { nodes_[i] = std::make_shared<Node>(std::move(node)); }
  void Insert(size_t i, Node node) {
    nodes_.insert(nodes_.begin() + static_cast<std::ptrdiff_t>(i),
                  std::make_shared<Node>(std::move(node)));
  }
  void Erase(size_t i) { nodes_.erase(nodes_.begin() + static_cast<std::ptrdiff_t>(i)); }
  // True when both lists hold the very same node object at these positions (not merely equal).
  bool SameNode(size_t i, const NodeList& other, size_t j) const {
    return nodes_[i] == other.nodes_[j];
  }

 private:
  std::vector<std::shared_ptr<Node>> nodes_;
};

// A consistent picture of the fleet at one generation, read in one transaction.
struct FleetSnapshot {
  int64_t generation = 0;
  std::vector<GpuType> gpu_types;  // ordered by name
  NodeList nodes;                  // ordered by name

  const GpuType* FindGpuType(const std::string& name) const;
  const Node* FindNode(const std::string& name) const;
  // placement::FreeBytes of the GPU (never negative), or 0 for an unknown type.
  int64_t FreeBytes(const Gpu& gpu) const;
};

}  // namespace fleetplan::placement

#endif  // FLEETPLAN_PLANNER_PLACEMENT_FLEET_H_
