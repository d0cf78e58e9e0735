// `fleetplan nodes import` and `nodes export`. Every source ends in the same ImportNodes batches,
// so a Kubernetes or nvidia-smi import obeys exactly the store's rules for a hand-written file.

#include "clients/commands_import.h"

#include <map>
#include <ostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "clients/deployments_file.h"
#include "clients/inventory_sources.h"
#include "clients/rpc_util.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"

namespace fleetplan::cli {
namespace {

// An inventory as a file: what import reads (no usage, no etag).
v1::ListNodesResponse InventoryOf(v1::ListNodesResponse nodes) {
  nodes.clear_next_page_token();
  for (v1::Node& n : *nodes.mutable_nodes()) {
    n.clear_etag();
    for (v1::Gpu& g : *n.mutable_gpus()) {
      g.clear_committed_bytes();
      g.clear_reserved_bytes();
    }
  }
  return nodes;
}

// Splits `nodes` into requests of at most kImportBatchNodes nodes and kImportBatchBytes bytes
// (each one transaction on the server).
std::vector<v1::ImportNodesRequest> ImportBatches(const v1::ListNodesResponse& nodes) {
  constexpr int kImportBatchNodes = 5000;
  constexpr size_t kImportBatchBytes = 8 << 20;
  std::vector<v1::ImportNodesRequest> batches(1);
  size_t bytes = 0;
  for (const v1::Node& n : nodes.nodes()) {
    const size_t size = n.ByteSizeLong();
    if (batches.back().nodes_size() > 0 &&
        (batches.back().nodes_size() >= kImportBatchNodes || bytes + size > kImportBatchBytes)) {
      batches.emplace_back();
      bytes = 0;
    }
    *batches.back().add_nodes() = n;
    bytes += size;
  }
  return batches;
}

// Sends `nodes` (read from `path`) through ImportNodes in batches and prints the outcome.
int SendImport(const Invocation& inv, const std::string& path, const v1::ListNodesResponse* nodes) {
  if (nodes->nodes_size() == 0) {
    return Usage(inv, "nodes import",
                 absl::StrCat(path,
                              ": no nodes (expected {\"nodes\": [...]} "
                              "or a list of nodes)"));
  }
  // Names unique across the whole file (the server checks within each batch).
  std::map<std::string, int> seen;
  for (int i = 0; i < nodes->nodes_size(); ++i) {
    auto [it, fresh] = seen.emplace(nodes->nodes(i).name(), i);
    if (!fresh) {
      return Usage(inv, "nodes import",
                   absl::StrCat(path, ": nodes[", i, "] \"", it->first, "\" repeats nodes[",
                                it->second, "]"));
    }
  }
  std::vector<v1::ImportNodesRequest> batches = ImportBatches(*nodes);
  const bool validate_only = inv.flags.GetBool("validate-only");
  // A file in several batches is checked whole before any batch is written.
  const bool check_first = batches.size() > 1 || validate_only;
  v1::ImportNodesResponse total;
  for (int pass = check_first ? 0 : 1; pass < (validate_only ? 1 : 2); ++pass) {
    total.Clear();
    for (size_t b = 0; b < batches.size(); ++b) {
      v1::ImportNodesRequest& req = batches[b];
      req.set_validate_only(pass == 0);
      if (!inv.flags.GetString("request-id").empty() && pass == 1) {
        req.set_request_id(absl::StrCat(inv.flags.GetString("request-id"), "-", b));
      }
      v1::ImportNodesResponse resp;
      const std::string what = batches.size() > 1 ? absl::StrCat("nodes import (batch ", b + 1,
                                                                 " of ", batches.size(), ")")
                                                  : "nodes import";
      int rc = CallRpc<v1::InventoryService>(
          inv, what, [&](auto& stub, auto& ctx) { return stub.ImportNodes(&ctx, req, &resp); });
      if (rc != kExitOk) {
        if (pass == 1 && b > 0) {
          inv.err << "fleetplan nodes import: batches 1-" << b << " of " << batches.size()
                  << " were written before this failure; re-run the import to finish\n";
        }
        return rc;
      }
      total.set_created(total.created() + resp.created());
      total.set_updated(total.updated() + resp.updated());
      total.set_unchanged(total.unchanged() + resp.unchanged());
      for (auto& r : *resp.mutable_results()) *total.add_results() = std::move(r);
    }
  }
  return Print(inv, total, [&](const v1::ImportNodesResponse& r) {
    inv.out << (validate_only ? "valid: " : "imported: ") << r.results_size() << " nodes ("
            << r.created() << " created, " << r.updated() << " updated, " << r.unchanged()
            << " unchanged)\n";
  });
}

// The server's GPU types, for mapping products.
int RegisteredGpuTypes(const Invocation& inv, std::vector<v1::GpuType>& out) {
  v1::ListGpuTypesResponse resp;
  int rc = CallRpc<v1::InventoryService>(inv, "nodes import", [&](auto& stub, auto& ctx) {
    return stub.ListGpuTypes(&ctx, v1::ListGpuTypesRequest(), &resp);
  });
  out.assign(resp.gpu_types().begin(), resp.gpu_types().end());
  return rc;
}

// Creates the GPU types an import found (--create-gpu-types); one that appeared meanwhile is fine.
int CreateGpuTypes(const Invocation& inv, const std::vector<v1::GpuType>& types) {
  for (const v1::GpuType& t : types) {
    v1::CreateGpuTypeRequest req;
    *req.mutable_gpu_type() = t;
    v1::GpuType resp;
    std::ostringstream quiet;
    Invocation q{inv.flags, inv.positional, inv.output, inv.out, quiet};
    int rc = CallRpc<v1::InventoryService>(q, "nodes import", [&](auto& stub, auto& ctx) {
      return stub.CreateGpuType(&ctx, req, &resp);
    });
    if (rc != kExitOk && quiet.str().find("ALREADY_EXISTS") == std::string::npos) {
      inv.err << quiet.str();
      return rc;
    }
  }
  return kExitOk;
}

absl::StatusOr<GpuTypeOptions> TypeOptions(const Invocation& inv) {
  GpuTypeOptions o;
  ASSIGN_OR_RETURN(o.explicit_map,
                   ParseKeyValues("gpu-type-map", inv.flags.GetString("gpu-type-map")));
  o.create = inv.flags.GetBool("create-gpu-types");
  return o;
}

// Reads the Kubernetes or nvidia-smi source into nodes (reconciled with what an earlier
// Kubernetes import of the cluster made). Returns an exit code; `imported` is filled on success.
int ReadForeignSource(const Invocation& inv, std::string& path, ImportedInventory& imported) {
  const FlagSet& f = inv.flags;
  auto types = TypeOptions(inv);
  if (!types.ok()) return Usage(inv, "nodes import", std::string(types.status().message()));
  auto nvlink = ParseNvlinkRule(f.GetString("nvlink"));
  if (!nvlink.ok()) return Usage(inv, "nodes import", std::string(nvlink.status().message()));
  if (int rc = RegisteredGpuTypes(inv, types->registered); rc != kExitOk) return rc;
  absl::StatusOr<ImportedInventory> read;
  if (f.IsSet("from-kubernetes")) {
    path = f.GetString("from-kubernetes");
    auto text = ReadFileText("Kubernetes node list", path);
    if (!text.ok()) return ReportError(inv.err, "nodes import", text.status());
    KubernetesOptions o{.pool = f.GetString("pool"),
                        .pool_label = f.GetString("pool-label"),
                        .zone_label = f.GetString("zone-label"),
                        .rack_label = f.GetString("rack-label"),
                        .cluster = f.GetString("cluster"),
                        .nvlink = *nvlink,
                        .gpu_types = *std::move(types)};
    read = FromKubernetesNodes(*text, path, o);
    if (read.ok()) {
      v1::ListNodesRequest owned_filter;
      (*owned_filter.mutable_labels())[kSourceLabel] = "kubernetes";
      if (!o.cluster.empty()) (*owned_filter.mutable_labels())[kClusterLabel] = o.cluster;
      v1::ListNodesResponse owned;
      if (int rc = ListAllNodes(inv, "nodes import", owned_filter, owned); rc != kExitOk) return rc;
      Reconcile(owned, *read);
    }
  } else {
    path = f.GetString("from-nvidia-smi");
    auto csv = ReadFileText("nvidia-smi GPU list", path);
    if (!csv.ok()) return ReportError(inv.err, "nodes import", csv.status());
    std::string topo_text;
    const std::string topo_path = f.GetString("topology");
    if (!topo_path.empty()) {
      auto topo = ReadFileText("nvidia-smi topology", topo_path);
      if (!topo.ok()) return ReportError(inv.err, "nodes import", topo.status());
      topo_text = *std::move(topo);
      if (topo_text.empty()) {
        return Usage(inv, "nodes import", absl::StrCat(topo_path, ": empty topology file"));
      }
    }
    auto labels = ParseKeyValues("label", f.GetString("label"));
    if (!labels.ok()) return Usage(inv, "nodes import", std::string(labels.status().message()));
    NvidiaSmiOptions o{.node = f.GetString("name"),
                       .pool = f.GetString("pool"),
                       .zone = f.GetString("zone"),
                       .rack = f.GetString("rack"),
                       .labels = *std::move(labels),
                       .nvlink = *nvlink,
                       .gpu_types = *std::move(types)};
    read = FromNvidiaSmi(*csv, path, topo_text, topo_path, o);
    if (read.ok()) {
      // Re-importing a node keeps what fleetplan knows and nvidia-smi does not: its state
      // (cordoned stays cordoned) and labels the command line does not set.
      v1::Node& node = *read->nodes.mutable_nodes(0);
      v1::GetNodeRequest get;
      get.set_name(node.name());
      v1::Node old;
      std::ostringstream quiet;  // NOT_FOUND (a new node) is no error here
      const Invocation q{inv.flags, inv.positional, inv.output, inv.out, quiet};
      const int rc = CallRpc<v1::InventoryService>(
          q, "nodes import", [&](auto& stub, auto& ctx) { return stub.GetNode(&ctx, get, &old); });
      if (rc == kExitOk) {
        node.set_state(old.state());
        for (const auto& [k, v] : old.labels()) node.mutable_labels()->insert({k, v});
      } else if (quiet.str().find("NOT_FOUND") == std::string::npos) {
        inv.err << quiet.str();
        return rc;
      }
    }
  }
  if (!read.ok()) {
    const absl::Status& s = read.status();
    return s.code() == absl::StatusCode::kInvalidArgument
               ? Usage(inv, "nodes import", std::string(s.message()))
               : ReportError(inv.err, "nodes import", s);
  }
  imported = *std::move(read);
  return kExitOk;
}

}  // namespace

void AddImportFlags(FlagSet& f) {
  f.String("from-kubernetes", "",
           "import: the output of `kubectl get nodes -o json` (GPU Feature "
           "Discovery labels); re-running reconciles: vanished nodes are marked down");
  f.String("from-nvidia-smi", "",
           "import: the output of nvidia-smi --query-gpu=index,uuid,name,"
           "memory.total,pci.bus_id --format=csv,noheader,nounits for node --name in --pool");
  f.String("topology", "",
           "import --from-nvidia-smi: the output of `nvidia-smi topo -m` (NV# "
           "links make NVLink domains)");
  f.Bool("create-gpu-types", false, "import: register unknown GPU products as new GPU types");
  f.String("gpu-type-map", "", "import: PRODUCT=TYPE,... (e.g. NVIDIA-A40=A40-48GB)");
  f.String("pool-label", "", "import --from-kubernetes: label whose value is the node's pool");
  f.String("zone-label", "topology.kubernetes.io/zone", "import --from-kubernetes: zone label");
  f.String("rack-label", "", "import --from-kubernetes: rack label");
  f.String("cluster", "", "import --from-kubernetes: cluster name (scopes the reconcile)");
  f.String("nvlink", "auto",
           "import: NVLink domains when the source does not say: auto (one per "
           "node for SXM/HGX GPUs, else one per GPU) | node | none");
}

int ListAllNodes(const Invocation& inv, const std::string& command, v1::ListNodesRequest filter,
                 v1::ListNodesResponse& all) {
  std::string token;
  do {
    filter.set_page_size(limits::kMaxPageSize);
    filter.set_page_token(token);
    v1::ListNodesResponse page;
    int rc = CallRpc<v1::InventoryService>(
        inv, command, [&](auto& stub, auto& ctx) { return stub.ListNodes(&ctx, filter, &page); });
    if (rc != kExitOk) return rc;
    for (auto& n : *page.mutable_nodes()) *all.add_nodes() = std::move(n);
    token = page.next_page_token();
  } while (!token.empty());
  return kExitOk;
}

int NodesExport(const Invocation& inv) {
  v1::ListNodesResponse all;
  if (int rc = ListAllNodes(inv, "nodes export", {}, all); rc != kExitOk) return rc;
  inv.out << ProtoJson(InventoryOf(std::move(all))) << "\n";
  return kExitOk;
}

int NodesImport(const Invocation& inv) {
  const FlagSet& f = inv.flags;
  const int sources = static_cast<int>(!inv.positional.empty()) + f.IsSet("from-kubernetes") +
                      f.IsSet("from-nvidia-smi");
  if (sources != 1) {
    return Usage(inv, "nodes import",
                 "give one source: FILE, --from-kubernetes=FILE or --from-nvidia-smi=FILE");
  }
  if (!inv.positional.empty()) {
    const std::string& path = inv.positional[0];
    auto text = ReadFileText("inventory file", path);
    if (!text.ok()) return ReportError(inv.err, "nodes import", text.status());
    auto nodes = ParseNodes(*text, path);
    if (!nodes.ok()) return Usage(inv, "nodes import", std::string(nodes.status().message()));
    return SendImport(inv, path, &*nodes);
  }
  std::string path;
  ImportedInventory imported;
  if (int rc = ReadForeignSource(inv, path, imported); rc != kExitOk) return rc;
  for (const std::string& note : imported.notes)
    inv.err << "fleetplan nodes import: " << note << "\n";
  if (f.GetBool("validate-only") && !imported.new_gpu_types.empty()) {
    inv.err << "fleetplan nodes import: --validate-only: " << imported.new_gpu_types.size()
            << " GPU types would be created; the nodes are checked by the server once they exist\n";
    return Print(inv, imported.nodes, [&](const v1::ListNodesResponse& r) {
      inv.out << "valid: " << r.nodes_size() << " nodes (not checked by the server)\n";
    });
  }
  if (int rc = CreateGpuTypes(inv, imported.new_gpu_types); rc != kExitOk) return rc;
  return SendImport(inv, path, &imported.nodes);
}

}  // namespace fleetplan::cli
