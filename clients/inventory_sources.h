#ifndef FLEETPLAN_CLIENTS_INVENTORY_SOURCES_H_
#define FLEETPLAN_CLIENTS_INVENTORY_SOURCES_H_

// Inventories other tools already hold, read into the nodes `fleetplan nodes import` sends
// through ImportNodes (the one path into the store):
//  - Kubernetes: `kubectl get nodes -o json` with NVIDIA GPU Feature Discovery labels;
//  - bare metal: `nvidia-smi --query-gpu=index,uuid,name,memory.total,pci.bus_id --format=csv`
//    and, for NVLink domains, `nvidia-smi topo -m`.
// Facts about the formats: ../shared/reference/inventory.md (label keys from NVIDIA's
// k8s-device-plugin docs/gpu-feature-discovery/README.md). Pure functions of the text and the
// options (the registered GPU types come in as an argument), so they are unit-tested and fuzzed
// without a server. Never throw; every error names the file, the node or row, the field and value.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "fleetplan/v1/inventory.pb.h"

namespace fleetplan::cli {

// Labels an importer adds, so a later run knows which nodes it owns.
inline constexpr char kSourceLabel[] = "fleetplan.io/source";
inline constexpr char kClusterLabel[] = "fleetplan.io/cluster";

// How GPUs of one node group into NVLink domains when the source does not say.
enum class NvlinkRule {
  kAuto,  // one domain per node for SXM/HGX modules, one per GPU otherwise (see SharesNvSwitch)
  kNode,  // one domain per node
  kNone,  // one domain per GPU (no tensor parallelism across GPUs)
};
absl::StatusOr<NvlinkRule> ParseNvlinkRule(const std::string& text);

// Product name -> fleetplan GPU type.
struct GpuTypeOptions {
  std::vector<v1::GpuType> registered;              // the server's GPU types
  std::map<std::string, std::string> explicit_map;  // product (any spelling) -> type name
  bool create = false;  // an unknown product becomes a new GPU type instead of an error
};

struct KubernetesOptions {
  std::string pool;        // pool of every node, unless pool_label gives one
  std::string pool_label;  // label key whose value is the node's pool
  std::string zone_label = "topology.kubernetes.io/zone";
  std::string rack_label;  // empty: no rack
  std::string cluster;     // kept as the kClusterLabel label; scopes the reconcile
  NvlinkRule nvlink = NvlinkRule::kAuto;
  GpuTypeOptions gpu_types;
};

struct NvidiaSmiOptions {
  std::string node;  // required
  std::string pool;  // required
  std::string zone;
  std::string rack;
  std::map<std::string, std::string> labels;
  NvlinkRule nvlink = NvlinkRule::kAuto;  // without a topology file
  GpuTypeOptions gpu_types;
};

struct ImportedInventory {
  v1::ListNodesResponse nodes;             // what ImportNodes gets, in file order
  std::vector<v1::GpuType> new_gpu_types;  // to create first (GpuTypeOptions::create)
  std::vector<std::string> notes;          // nodes skipped and why, types created
};

// `source` names the file in errors.
absl::StatusOr<ImportedInventory> FromKubernetesNodes(const std::string& text,
                                                      const std::string& source,
                                                      const KubernetesOptions& options);

// `topology` may be empty (no file): domains then follow options.nvlink.
absl::StatusOr<ImportedInventory> FromNvidiaSmi(const std::string& csv,
                                                const std::string& csv_source,
                                                const std::string& topology,
                                                const std::string& topology_source,
                                                const NvidiaSmiOptions& options);

// `nvidia-smi topo -m`: the NVLink domain of each GPU (GPUs joined by NV# links, transitively,
// share one; numbered 0.. in order of their lowest GPU). Indexed by the GPU's row number.
absl::StatusOr<std::vector<int64_t>> ParseNvidiaTopology(const std::string& text,
                                                         const std::string& source);

// Reconciles a Kubernetes import with the nodes a previous import of the same cluster created
// (`owned`, as ListNodes returns them, with usage): a node that vanished, or that Kubernetes says
// is down, is marked down — or cordoned, with a note, while it holds committed placements (the
// store refuses to take such a node down, and Kubernetes is no reason to drop placements); a GPU
// that vanished while it holds placements is kept, marked unhealthy. Never deletes a node.
void Reconcile(const v1::ListNodesResponse& owned, ImportedInventory& imported);

// "NVIDIA-H100-80GB-HBM3", "NVIDIA H100 80GB HBM3" -> "h100-80gb-hbm3" (lower case, runs of spaces
// and underscores as '-', no "nvidia-" prefix).
std::string NormalizedProduct(const std::string& product);

}  // namespace fleetplan::cli

#endif  // FLEETPLAN_CLIENTS_INVENTORY_SOURCES_H_
