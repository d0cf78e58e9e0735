// Fuzz target: the inventory readers of `fleetplan nodes import` -- `kubectl get nodes -o json`,
// nvidia-smi's GPU CSV and `nvidia-smi topo -m` -- and the Kubernetes reconcile. The first byte
// picks the reader, the rest is the file. Invariants: no crash or UB; errors are Status values
// with bounded messages; an accepted inventory has nodes with named GPU types, unique GPU indexes
// and non-negative NVLink domains; a created GPU type has positive memory; reconciling an import
// with itself keeps every node.

#include <cstdint>
#include <set>
#include <string>

#include "clients/inventory_sources.h"
#include "tests/fuzz/fuzz_util.h"

namespace fleetplan::fuzz {
namespace {

v1::GpuType Type(const std::string& name, int64_t bytes) {
  v1::GpuType t;
  t.set_name(name);
  t.set_memory_bytes(bytes);
  return t;
}

void CheckInventory(const cli::ImportedInventory& in) {
  for (const v1::Node& n : in.nodes.nodes()) {
    Check(!n.name().empty(), "an imported node has a name");
    Check(n.gpus_size() > 0, "an imported node has GPUs");
    std::set<int64_t> indexes;
    for (const v1::Gpu& g : n.gpus()) {
      Check(!g.gpu_type().empty(), "every GPU has a type");
      Check(g.nvlink_domain() >= 0, "NVLink domains are >= 0");
      Check(indexes.insert(g.index()).second, "GPU indexes are unique within a node");
    }
  }
  for (const v1::GpuType& t : in.new_gpu_types) {
    Check(!t.name().empty() && t.memory_bytes() > 0, "a created GPU type has a name and memory");
  }
}

}  // namespace
}  // namespace fleetplan::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetplan;
  if (size == 0) return 0;
  const uint8_t which = data[0] & 3;  // 0 kubectl, 1 nvidia-smi, 2 and 3 topology
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  cli::GpuTypeOptions types{
      .registered = {fuzz::Type("H100-80GB", 85017493504), fuzz::Type("A100-40GB", 42508723978)},
      .create = (data[0] & 4) != 0};
  if (which == 0) {
    cli::KubernetesOptions o{
        .pool = "gpu", .pool_label = "pool", .cluster = "c", .gpu_types = types};
    auto in = cli::FromKubernetesNodes(text, "nodes.json", o);
    if (!in.ok()) {
      fuzz::Check(in.status().message().size() < 64 * 1024, "error messages are bounded");
      return 0;
    }
    fuzz::CheckInventory(*in);
    // A later run that finds the same nodes (with usage on them) keeps every one.
    v1::ListNodesResponse owned = in->nodes;
    for (v1::Node& n : *owned.mutable_nodes()) n.mutable_gpus(0)->set_committed_bytes(1);
    cli::ImportedInventory later = *in;
    later.nodes.mutable_nodes()->Clear();
    cli::Reconcile(owned, later);
    fuzz::Check(later.nodes.nodes_size() == owned.nodes_size(), "reconcile never drops a node");
    for (const v1::Node& n : later.nodes.nodes()) {
      fuzz::Check(n.state() != v1::NODE_STATE_DOWN, "nodes holding placements are not taken down");
    }
  } else if (which == 1) {
    // CSV, then (after a NUL) an optional topology.
    const size_t cut = text.find('\0');
    const std::string csv = text.substr(0, cut);
    const std::string topo = cut == std::string::npos ? "" : text.substr(cut + 1);
    cli::NvidiaSmiOptions o{.node = "n", .pool = "p", .gpu_types = types};
    auto in = cli::FromNvidiaSmi(csv, "gpus.csv", topo, "topo.txt", o);
    if (!in.ok()) {
      fuzz::Check(in.status().message().size() < 64 * 1024, "error messages are bounded");
      return 0;
    }
    fuzz::CheckInventory(*in);
  } else {
    auto domains = cli::ParseNvidiaTopology(text, "topo.txt");
    if (!domains.ok()) return 0;
    for (size_t g = 0; g < domains->size(); ++g) {
      fuzz::Check((*domains)[g] >= 0 && (*domains)[g] <= static_cast<int64_t>(g),
                  "domains are numbered by their lowest GPU");
    }
  }
  return 0;
}
