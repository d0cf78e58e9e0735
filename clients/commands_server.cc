// `fleetplan` subcommands that talk to a fleetpland: gpu-types, nodes, pools, models, headroom.
// Tables show GiB and percentages for people; --output=json prints the response with exact bytes.
// Verbs are registered per command (clients/cli.h), not dispatched by string comparisons.

#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "clients/cli.h"
#include "clients/commands_import.h"
#include "clients/deployments_file.h"
#include "clients/rpc_util.h"
#include "fleetplan/v1/catalog.grpc.pb.h"
#include "fleetplan/v1/headroom.grpc.pb.h"
#include "fleetplan/v1/inventory.grpc.pb.h"
#include "planner/common/limits.h"
#include "planner/common/units.h"
#include "server/convert.h"

namespace fleetplan::cli {
namespace {

double GiB(int64_t b) { return BytesToGiB(b); }

const char* StateName(v1::NodeState s) { return placement::NodeStateName(server::FromProto(s)); }
const char* RiskName(v1::RiskLevel r) { return fleetplan::RiskName(server::FromProto(r)); }

// ---- gpu-types --------------------------------------------------------------------------------

int GpuTypesAdd(const Invocation& inv) {
  const FlagSet& f = inv.flags;
  v1::CreateGpuTypeRequest req;
  v1::GpuType* t = req.mutable_gpu_type();
  t->set_name(f.GetString("name"));
  int64_t bytes = f.GetInt("memory-bytes");
  if (f.IsSet("memory-gib")) {
    const double gib = f.GetDouble("memory-gib");
    if (!(gib > 0) || gib > BytesToGiB(limits::kMaxGpuMemoryBytes)) {
      return Usage(inv, "gpu-types add",
                   absl::StrCat("--memory-gib=", gib, " must be in (0, ",
                                BytesToGiB(limits::kMaxGpuMemoryBytes), "]"));
    }
    bytes = static_cast<int64_t>(gib * static_cast<double>(kGiB));
  }
  t->set_memory_bytes(bytes);
  t->set_memory_bandwidth_bytes_per_second(f.GetInt("bandwidth-bytes-per-second"));
  t->set_bf16_tflops(f.GetDouble("bf16-tflops"));
  t->set_cost_per_hour(f.GetDouble("cost-per-hour"));
  t->set_nvlink_generation(f.GetInt("nvlink-generation"));
  req.set_request_id(f.GetString("request-id"));
  req.set_validate_only(f.GetBool("validate-only"));
  v1::GpuType resp;
  int rc = CallRpc<v1::InventoryService>(inv, "gpu-types add", [&](auto& stub, auto& ctx) {
    return stub.CreateGpuType(&ctx, req, &resp);
  });
  if (rc != kExitOk) return rc;
  return Print(inv, resp, [&](const v1::GpuType& r) {
    inv.out << absl::StrFormat("%s gpu type %s (%.2f GiB)\n",
                               req.validate_only() ? "valid" : "added", r.name(),
                               GiB(r.memory_bytes()));
  });
}

int GpuTypesList(const Invocation& inv) {
  v1::ListGpuTypesResponse resp;
  int rc = CallRpc<v1::InventoryService>(inv, "gpu-types list", [&](auto& stub, auto& ctx) {
    return stub.ListGpuTypes(&ctx, v1::ListGpuTypesRequest(), &resp);
  });
  if (rc != kExitOk) return rc;
  return Print(inv, resp, [&](const v1::ListGpuTypesResponse& r) {
    inv.out << absl::StrFormat("%-24s %12s %12s %10s %8s\n", "NAME", "MEMORY_GIB", "BF16_TFLOPS",
                               "COST/H", "NVLINK");
    for (const auto& t : r.gpu_types()) {
      inv.out << absl::StrFormat("%-24s %12.2f %12.1f %10.2f %8d\n", t.name(),
                                 GiB(t.memory_bytes()), t.bf16_tflops(), t.cost_per_hour(),
                                 t.nvlink_generation());
    }
  });
}

int GpuTypesRemove(const Invocation& inv) {
  v1::DeleteGpuTypeRequest req;
  req.set_name(inv.positional[0]);
  google::protobuf::Empty resp;
  int rc = CallRpc<v1::InventoryService>(inv, "gpu-types remove", [&](auto& stub, auto& ctx) {
    return stub.DeleteGpuType(&ctx, req, &resp);
  });
  if (rc == kExitOk && inv.output == OutputFormat::kTable)
    inv.out << "removed gpu type " << req.name() << "\n";
  if (rc == kExitOk && inv.output == OutputFormat::kJson)
    inv.out << "{\"removed\": \"" << req.name() << "\"}\n";
  return rc;
}

// ---- nodes ------------------------------------------------------------------------------------

void PrintNodes(const Invocation& inv, const google::protobuf::RepeatedPtrField<v1::Node>& nodes) {
  inv.out << absl::StrFormat("%-20s %-12s %-10s %-9s %5s %-18s %10s\n", "NAME", "POOL", "ZONE",
                             "STATE", "GPUS", "GPU_TYPE", "USED_GIB");
  for (const auto& n : nodes) {
    int64_t used = 0;
    for (const auto& g : n.gpus()) used += g.committed_bytes() + g.reserved_bytes();
    inv.out << absl::StrFormat("%-20s %-12s %-10s %-9s %5d %-18s %10.2f\n", n.name(), n.pool(),
                               n.zone(), StateName(n.state()), n.gpus_size(),
                               n.gpus_size() > 0 ? n.gpus(0).gpu_type() : "-", GiB(used));
  }
}

int PrintNode(const Invocation& inv, const v1::Node& node, bool gpus) {
  return Print(inv, node, [&](const v1::Node& n) {
    google::protobuf::RepeatedPtrField<v1::Node> one;
    *one.Add() = n;
    PrintNodes(inv, one);
    if (!gpus) return;
    inv.out << absl::StrFormat("%5s %-18s %7s %8s %12s %12s\n", "GPU", "TYPE", "DOMAIN", "HEALTHY",
                               "COMMITTED", "RESERVED");
    for (const auto& g : n.gpus()) {
      inv.out << absl::StrFormat("%5d %-18s %7d %8s %12.2f %12.2f\n", g.index(), g.gpu_type(),
                                 g.nvlink_domain(), g.healthy() ? "yes" : "no",
                                 GiB(g.committed_bytes()), GiB(g.reserved_bytes()));
    }
  });
}

int NodesAdd(const Invocation& inv) {
  const FlagSet& f = inv.flags;
  v1::CreateNodeRequest req;
  v1::Node* n = req.mutable_node();
  n->set_name(f.GetString("name"));
  n->set_pool(f.GetString("pool"));
  n->set_zone(f.GetString("zone"));
  n->set_rack(f.GetString("rack"));
  auto labels = ParseKeyValues("label", f.GetString("label"));
  if (!labels.ok()) return Usage(inv, "nodes add", std::string(labels.status().message()));
  for (const auto& [k, v] : *labels) (*n->mutable_labels())[k] = v;
  const int64_t gpus = f.GetInt("gpus");
  const int64_t domain = f.GetInt("nvlink-domain-size");
  if (gpus < 0 || gpus > limits::kMaxGpusPerNode) {
    return Usage(inv, "nodes add",
                 absl::StrCat("--gpus=", gpus, " must be in [0, ", limits::kMaxGpusPerNode, "]"));
  }
  if (domain < 1)
    return Usage(inv, "nodes add", absl::StrCat("--nvlink-domain-size=", domain, " must be >= 1"));
  for (int64_t i = 0; i < gpus; ++i) {
    v1::Gpu* g = n->add_gpus();
    g->set_index(i);
    g->set_gpu_type(f.GetString("gpu-type"));
    g->set_nvlink_domain(i / domain);
    g->set_healthy(true);
  }
  n->set_inter_node_bandwidth_bytes_per_second(f.GetInt("inter-node-bandwidth-bytes-per-second"));
  req.set_request_id(f.GetString("request-id"));
  req.set_validate_only(f.GetBool("validate-only"));
  v1::Node resp;
  int rc = CallRpc<v1::InventoryService>(
      inv, "nodes add", [&](auto& stub, auto& ctx) { return stub.CreateNode(&ctx, req, &resp); });
  if (rc != kExitOk) return rc;
  return Print(inv, resp, [&](const v1::Node& r) {
    inv.out << (req.validate_only() ? "valid" : "added") << " node " << r.name() << " ("
            << r.gpus_size() << " GPUs)\n";
  });
}

int NodesList(const Invocation& inv) {
  const FlagSet& f = inv.flags;
  auto labels = ParseKeyValues("label", f.GetString("label"));
  if (!labels.ok()) return Usage(inv, "nodes list", std::string(labels.status().message()));
  v1::ListNodesRequest req;
  req.set_pool(f.GetString("pool"));
  req.set_zone(f.GetString("zone"));
  req.set_gpu_type(f.GetString("gpu-type"));
  for (const auto& [k, v] : *labels) (*req.mutable_labels())[k] = v;
  v1::ListNodesResponse all;
  if (int rc = ListAllNodes(inv, "nodes list", req, all); rc != kExitOk) return rc;
  return Print(inv, all, [&](const v1::ListNodesResponse& r) { PrintNodes(inv, r.nodes()); });
}

int NodesShow(const Invocation& inv) {
  v1::GetNodeRequest req;
  req.set_name(inv.positional[0]);
  v1::Node node;
  int rc = CallRpc<v1::InventoryService>(
      inv, "nodes show", [&](auto& stub, auto& ctx) { return stub.GetNode(&ctx, req, &node); });
  return rc != kExitOk ? rc : PrintNode(inv, node, /*gpus=*/true);
}

// cordon, uncordon and drain: one node, one state change.
template <typename Request, typename Call>
int NodeStateChange(const Invocation& inv, const std::string& verb, Call&& call) {
  Request req;
  req.set_name(inv.positional[0]);
  req.set_request_id(inv.flags.GetString("request-id"));
  if constexpr (std::is_same_v<Request, v1::DrainNodeRequest>)
    req.set_force(inv.flags.GetBool("force"));
  v1::Node node;
  int rc = CallRpc<v1::InventoryService>(
      inv, "nodes " + verb, [&](auto& stub, auto& ctx) { return call(stub, ctx, req, node); });
  return rc != kExitOk ? rc : PrintNode(inv, node, /*gpus=*/false);
}

int NodesRemove(const Invocation& inv) {
  v1::DeleteNodeRequest req;
  req.set_name(inv.positional[0]);
  req.set_force(inv.flags.GetBool("force"));
  req.set_request_id(inv.flags.GetString("request-id"));
  google::protobuf::Empty empty;
  int rc = CallRpc<v1::InventoryService>(inv, "nodes remove", [&](auto& stub, auto& ctx) {
    return stub.DeleteNode(&ctx, req, &empty);
  });
  if (rc == kExitOk && inv.output == OutputFormat::kTable)
    inv.out << "removed node " << req.name() << "\n";
  if (rc == kExitOk && inv.output == OutputFormat::kJson)
    inv.out << "{\"removed\": \"" << req.name() << "\"}\n";
  return rc;
}

int RunPools(const Invocation& inv) {
  v1::ListPoolsResponse resp;
  int rc = CallRpc<v1::InventoryService>(inv, "pools", [&](auto& stub, auto& ctx) {
    return stub.ListPools(&ctx, v1::ListPoolsRequest(), &resp);
  });
  if (rc != kExitOk) return rc;
  return Print(inv, resp, [&](const v1::ListPoolsResponse& r) {
    inv.out << absl::StrFormat("%-16s %6s %6s %12s\n", "POOL", "NODES", "GPUS", "MEMORY_GIB");
    for (const auto& p : r.pools()) {
      inv.out << absl::StrFormat("%-16s %6d %6d %12.1f\n", p.name(), p.nodes(), p.gpus(),
                                 GiB(p.memory_bytes()));
    }
  });
}

// ---- models -----------------------------------------------------------------------------------

int ModelsList(const Invocation& inv) {
  v1::ListModelsResponse resp;
  std::string token;
  do {
    v1::ListModelsRequest req;
    req.set_page_size(limits::kMaxPageSize);
    req.set_page_token(token);
    v1::ListModelsResponse page;
    int rc = CallRpc<v1::CatalogService>(inv, "models list", [&](auto& stub, auto& ctx) {
      return stub.ListModels(&ctx, req, &page);
    });
    if (rc != kExitOk) return rc;
    for (auto& m : *page.mutable_models()) *resp.add_models() = std::move(m);
    token = page.next_page_token();
  } while (!token.empty());
  return Print(inv, resp, [&](const v1::ListModelsResponse& r) {
    inv.out << absl::StrFormat("%-36s %-14s %10s %12s %12s %-12s\n", "NAME", "TYPE", "PARAMS_B",
                               "WEIGHTS_GIB", "KV_KIB/TOK", "QUANT");
    for (const auto& m : r.models()) {
      inv.out << absl::StrFormat("%-36s %-14s %10.2f %12.2f %12.1f %-12s\n", m.name(),
                                 m.model_type(), static_cast<double>(m.params()) / 1e9,
                                 GiB(m.weights_bytes()),
                                 static_cast<double>(m.kv_bytes_per_token()) / 1024.0,
                                 m.format() == "gguf"       ? "gguf"
                                 : m.quantization().empty() ? "-"
                                                            : m.quantization());
    }
  });
}

// The catalog name a model file gets by default: its folder for .../NAME/config.json, else the
// file's stem. Refused when that is not a usable name ("." for ./config.json): say --name.
absl::StatusOr<std::string> DefaultModelName(const std::string& file) {
  const std::filesystem::path path = std::filesystem::absolute(file).lexically_normal();
  const std::string name = path.filename() == "config.json" ? path.parent_path().filename().string()
                                                            : path.stem().string();
  if (name.empty() || name == "." || name == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot name the model from \"", file, "\"; give --name"));
  }
  return name;
}

// A file that starts with GGUF's magic (a llama.cpp model): only its header is read.
bool IsGgufFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

int ModelsImport(const Invocation& inv) {
  const FlagSet& f = inv.flags;
  const std::string& file = inv.positional[0];
  v1::ImportModelRequest req;
  if (IsGgufFile(file)) {
    // The header only (metadata and tensor infos), however large the file; llama-server loads
    // the file from --gguf-path (default: this file's absolute path) in launch lines.
    absl::StatusOr<estimator::GgufFile> header = ReadGgufHeaderFile(file);
    if (!header.ok()) {
      return ReportError(
          inv.err, "models import",
          absl::InvalidArgumentError(absl::StrCat(file, ": ", header.status().message())));
    }
    server::ToProto(*header, req.mutable_gguf());
    const std::string path = f.GetString("gguf-path");
    req.mutable_gguf()->set_path(
        path.empty() ? std::filesystem::absolute(file).lexically_normal().string() : path);
  } else {
    auto text = ReadFileText("model config", file);
    if (!text.ok()) return ReportError(inv.err, "models import", text.status());
    req.set_config_json(*text);
  }
  std::string name = f.GetString("name");
  if (name.empty()) {
    auto named = DefaultModelName(file);
    if (!named.ok()) return Usage(inv, "models import", std::string(named.status().message()));
    name = *named;
  }
  req.set_name(name);
  req.set_quantization(f.GetString("quantization"));
  req.set_request_id(f.GetString("request-id"));
  req.set_validate_only(f.GetBool("validate-only"));
  v1::Model resp;
  int rc = CallRpc<v1::CatalogService>(inv, "models import", [&](auto& stub, auto& ctx) {
    return stub.ImportModel(&ctx, req, &resp);
  });
  if (rc != kExitOk) return rc;
  resp.clear_config_json();
  resp.clear_gguf();
  return Print(inv, resp, [&](const v1::Model& m) {
    inv.out << absl::StrFormat(
        "%s model %s (%s): %s, %.2fB params, %.2f GiB weights, %.1f KiB KV per token\n",
        req.validate_only() ? "valid" : "imported", m.name(), m.format(), m.model_type(),
        static_cast<double>(m.params()) / 1e9, GiB(m.weights_bytes()),
        static_cast<double>(m.kv_bytes_per_token()) / 1024.0);
    for (const auto& n : m.notes()) inv.out << "note: " << n << "\n";
  });
}

int ModelsShow(const Invocation& inv) {
  v1::GetModelRequest req;
  req.set_name(inv.positional[0]);
  v1::Model resp;
  int rc = CallRpc<v1::CatalogService>(
      inv, "models show", [&](auto& stub, auto& ctx) { return stub.GetModel(&ctx, req, &resp); });
  if (rc != kExitOk) return rc;
  return Print(inv, resp, [&](const v1::Model& m) {
    inv.out << absl::StrFormat("%s: %s, %d params, %d weights bytes, %d KV bytes per token\n",
                               m.name(), m.model_type(), m.params(), m.weights_bytes(),
                               m.kv_bytes_per_token());
    if (m.format() == "gguf") {
      inv.out << absl::StrFormat("GGUF header: %d tensors, %d metadata keys; file %s\n",
                                 m.gguf().tensors_size(), m.gguf().metadata_size(),
                                 m.gguf().path().empty() ? "-" : m.gguf().path());
    } else {
      inv.out << m.config_json() << "\n";
    }
  });
}

int ModelsRemove(const Invocation& inv) {
  v1::DeleteModelRequest req;
  req.set_name(inv.positional[0]);
  req.set_request_id(inv.flags.GetString("request-id"));
  google::protobuf::Empty empty;
  int rc = CallRpc<v1::CatalogService>(inv, "models remove", [&](auto& stub, auto& ctx) {
    return stub.DeleteModel(&ctx, req, &empty);
  });
  if (rc == kExitOk && inv.output == OutputFormat::kTable)
    inv.out << "removed model " << req.name() << "\n";
  if (rc == kExitOk && inv.output == OutputFormat::kJson)
    inv.out << "{\"removed\": \"" << req.name() << "\"}\n";
  return rc;
}

// ---- headroom ---------------------------------------------------------------------------------

const char* const kHeadroomViews[] = {"pool", "node", "gpu-type", "gpu"};

void PrintHeadroom(const Invocation& inv, const v1::FleetHeadroom& h, const std::string& by) {
  if (inv.output == OutputFormat::kJson) {
    inv.out << ProtoToJson(h).dump() << "\n";  // one document per line while watching
    return;
  }
  inv.out << absl::StrFormat("%-26s %10s %10s %10s %10s %8s %6s %6s %8s %-6s\n",
                             by == "gpu" ? "GPU" : "KEY", "TOTAL_GIB", "COMMITTED", "RESERVED",
                             "FREE_GIB", "FREE%", "GPUS", "FREE", "NVL_FREE", "RISK");
  auto row = [&](const v1::Headroom& r, const std::string& key) {
    inv.out << absl::StrFormat("%-26s %10.1f %10.1f %10.1f %10.1f %7.1f%% %6d %6d %8d %-6s\n", key,
                               GiB(r.total_bytes()), GiB(r.committed_bytes()),
                               GiB(r.reserved_bytes()), GiB(r.free_bytes()),
                               100 * r.headroom_ratio(), r.gpus(), r.free_gpus(),
                               r.largest_free_nvlink_domain(), RiskName(r.risk()));
  };
  const std::map<std::string, const google::protobuf::RepeatedPtrField<v1::Headroom>*> rows = {
      {"pool", &h.pools()}, {"node", &h.nodes()}, {"gpu-type", &h.gpu_types()}};
  if (by == "gpu") {
    for (const auto& g : h.gpus()) row(g.headroom(), g.headroom().key());
  } else {
    for (const auto& r : *rows.at(by)) row(r, r.key());
  }
  row(h.fleet(), absl::StrCat("fleet (generation ", h.generation(), ")"));
}

int RunHeadroom(const Invocation& inv) {
  const std::string by = inv.flags.GetString("by");
  if (std::find(std::begin(kHeadroomViews), std::end(kHeadroomViews), by) ==
      std::end(kHeadroomViews)) {
    return Usage(
        inv, "headroom",
        absl::StrCat("--by=\"", by, "\" must be one of ", absl::StrJoin(kHeadroomViews, ", ")));
  }
  if (!inv.flags.GetBool("watch")) {
    v1::FleetHeadroom h;
    std::string token;
    do {  // per-GPU rows come in pages; the other lines with every page
      v1::GetFleetHeadroomRequest req;
      req.set_include_gpus(by == "gpu");
      req.set_page_token(token);
      v1::FleetHeadroom page;
      int rc = CallRpc<v1::HeadroomService>(inv, "headroom", [&](auto& stub, auto& ctx) {
        return stub.GetFleetHeadroom(&ctx, req, &page);
      });
      if (rc != kExitOk) return rc;
      if (token.empty()) {
        h = page;
      } else {
        for (auto& g : *page.mutable_gpus()) *h.add_gpus() = std::move(g);
      }
      token = page.next_page_token();
    } while (!token.empty());
    h.clear_next_page_token();
    PrintHeadroom(inv, h, by);
    return kExitOk;
  }
  // --watch: print every update until the stream ends (or --timeout passes).
  auto channel = MakeChannel(inv.flags);
  if (!channel.ok()) return ReportError(inv.err, "headroom", channel.status());
  auto stub = v1::HeadroomService::NewStub(*channel);
  grpc::ClientContext context;
  if (absl::Status s = PrepareContext(inv.flags, context); !s.ok()) {
    inv.err << "fleetplan headroom: " << s.message() << "\n";
    return kExitUsage;
  }
  v1::WatchHeadroomRequest req;
  req.set_include_gpus(by == "gpu");
  auto reader = stub->WatchHeadroom(&context, req);
  v1::FleetHeadroom h;
  int64_t updates = 0;
  const int64_t max_updates = inv.flags.GetInt("updates");
  while (reader->Read(&h)) {
    PrintHeadroom(inv, h, by);
    inv.out << std::flush;
    if (max_updates > 0 && ++updates >= max_updates) {
      context.TryCancel();
      while (reader->Read(&h)) {
      }
      reader->Finish().IgnoreError();
      return kExitOk;
    }
  }
  grpc::Status status = reader->Finish();
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
    return kExitOk;  // watched long enough
  if (!status.ok()) return ReportError(inv.err, "headroom", StatusFromGrpc(status));
  return kExitOk;
}

// `fleetplan observe`: what GPUs really use (DCGM via the server) against what placements promise,
// per deployment (the estimator's field check) and the GPUs that disagree.
int RunObserve(const Invocation& inv) {
  v1::GetObservedUsageRequest req;
  req.set_unplanned_bytes(inv.flags.GetInt("unplanned-bytes"));
  req.set_idle_bytes(inv.flags.GetInt("idle-bytes"));
  v1::ObservedUsage resp;
  int rc = CallRpc<v1::HeadroomService>(inv, "observe", [&](auto& stub, auto& ctx) {
    return stub.GetObservedUsage(&ctx, req, &resp);
  });
  if (rc != kExitOk) return rc;
  return Print(inv, resp, [&](const v1::ObservedUsage& u) {
    inv.out << absl::StrFormat("observed %d GPUs (%d samples, %d unmatched)\n", u.observed_gpus(),
                               u.samples(), u.unmatched_samples());
    inv.out << absl::StrFormat("%-24s %-32s %5s %5s %13s %12s %7s\n", "DEPLOYMENT", "MODEL", "GPUS",
                               "SEEN", "COMMITTED_GIB", "OBSERVED_GIB", "DRIFT");
    for (const auto& d : u.deployments()) {
      inv.out << absl::StrFormat("%-24s %-32s %5d %5d %13.1f %12.1f %6.1f%%\n", d.deployment(),
                                 d.model(), d.gpus(), d.observed_gpus(), GiB(d.committed_bytes()),
                                 GiB(d.observed_bytes()), 100 * d.drift_ratio());
    }
    for (const auto& a : u.anomalies()) {
      inv.out << absl::StrFormat(
          "%s %s/%d: committed %.1f GiB, observed %.1f GiB\n",
          a.kind() == v1::UsageAnomaly::UNPLANNED ? "UNPLANNED USE" : "IDLE PLACEMENT", a.node(),
          a.gpu_index(), GiB(a.committed_bytes()), GiB(a.observed_bytes()));
    }
    if (u.anomalies_total() > u.anomalies_size()) {
      inv.out << "... and " << u.anomalies_total() - u.anomalies_size() << " more\n";
    }
  });
}

FlagSet ServerFlags(const std::string& name, const std::string& usage) {
  FlagSet f(name, usage);
  AddOutputFlag(f);
  AddServerFlags(f);
  return f;
}

}  // namespace

std::vector<Command> ServerCommands() {
  return {
      Command{.name = "gpu-types",
              .summary = "add, list or remove GPU types (server)",
              .make_flags =
                  [] {
                    FlagSet f = ServerFlags("gpu-types",
                                            "add --name=N --memory-bytes=B | list | remove NAME");
                    f.String("name", "", "add: GPU type name, e.g. H100-80GB-HBM3");
                    f.Int("memory-bytes", 0, "add: total memory as the driver reports it");
                    f.Double("memory-gib", 0,
                             "add: the same in GiB (2^30), when bytes are not known");
                    f.Int("bandwidth-bytes-per-second", 0, "add: memory bandwidth");
                    f.Double("bf16-tflops", 0, "add: dense bf16 TFLOP/s");
                    f.Double("cost-per-hour", 0, "add: cost per GPU hour");
                    f.Int("nvlink-generation", 0, "add: NVLink generation (0: none)");
                    f.String("request-id", "", "idempotency key for retries");
                    f.Bool("validate-only", false, "check without creating");
                    return f;
                  },
              .verbs = {{"add", "register a GPU type", GpuTypesAdd},
                        {"list", "list GPU types", GpuTypesList},
                        {"remove", "remove an unused GPU type", GpuTypesRemove, 1, "NAME"}}},
      Command{
          .name = "nodes",
          .summary =
              "add, list, import, export, show, cordon, uncordon, drain or remove nodes (server)",
          .make_flags =
              [] {
                FlagSet f = ServerFlags(
                    "nodes",
                    "add --name=N --pool=P --gpus=8 --gpu-type=T | list | import FILE | "
                    "import --from-kubernetes=NODES.json [--pool=P] | import "
                    "--from-nvidia-smi=GPUS.csv "
                    "[--topology=TOPO.txt] --name=N --pool=P | export | show NAME | cordon NAME | "
                    "uncordon NAME | drain NAME | remove NAME");
                f.String("name", "", "add, import --from-nvidia-smi: node name");
                f.String("pool", "",
                         "add, import: pool (Kubernetes: unless --pool-label); list: filter");
                f.String("zone", "", "add, import --from-nvidia-smi: zone; list: filter");
                f.String("rack", "", "add, import --from-nvidia-smi: rack");
                f.String("label", "",
                         "add, import --from-nvidia-smi: labels k=v,k2=v2; list: filter "
                         "(all must match)");
                f.Int("gpus", 8, "add: number of GPUs");
                f.String("gpu-type", "", "add: GPU type of every GPU; list: filter");
                f.Int("nvlink-domain-size", 8, "add: GPUs per NVLink domain");
                f.Int("inter-node-bandwidth-bytes-per-second", 0, "add: network bandwidth");
                f.Bool("force", false, "drain/remove: even with placements (remove releases them)");
                f.Bool("plan", false,
                       "drain: only show where the node's placements would be re-placed (nothing "
                       "changes; exit 1 when some cannot be)");
                f.String("request-id", "", "idempotency key for retries");
                f.Bool("validate-only", false, "add, import: check without writing");
                AddImportFlags(f);
                return f;
              },
          .verbs = {{"add", "register a node and its GPUs", NodesAdd},
                    {"list", "list nodes (with filters)", NodesList},
                    {"import",
                     "create or update nodes (all or none) from an inventory FILE (JSON/YAML), "
                     "--from-kubernetes or --from-nvidia-smi",
                     NodesImport, 0, "[FILE]"},
                    {"export", "print the inventory as JSON that import reads back", NodesExport},
                    {"show", "one node and its GPUs", NodesShow, 1, "NODE"},
                    {"cordon", "stop new placements on a node",
                     [](const Invocation& inv) {
                       return NodeStateChange<v1::CordonNodeRequest>(
                           inv, "cordon", [](auto& stub, auto& ctx, auto& req, auto& node) {
                             return stub.CordonNode(&ctx, req, &node);
                           });
                     },
                     1, "NODE"},
                    {"uncordon", "make a node active again",
                     [](const Invocation& inv) {
                       return NodeStateChange<v1::UncordonNodeRequest>(
                           inv, "uncordon", [](auto& stub, auto& ctx, auto& req, auto& node) {
                             return stub.UncordonNode(&ctx, req, &node);
                           });
                     },
                     1, "NODE"},
                    {"drain",
                     "drain a node (refused while it holds placements, unless --force); --plan "
                     "shows where its placements would go",
                     [](const Invocation& inv) {
                       if (inv.flags.GetBool("plan")) {
                         v1::SimulateFailureRequest req;
                         req.add_nodes(inv.positional[0]);
                         return SimulateAndPrint(inv, "drain", req,
                                                 "draining " + inv.positional[0]);
                       }
                       return NodeStateChange<v1::DrainNodeRequest>(
                           inv, "drain", [](auto& stub, auto& ctx, auto& req, auto& node) {
                             return stub.DrainNode(&ctx, req, &node);
                           });
                     },
                     1, "NODE"},
                    {"remove", "delete a node", NodesRemove, 1, "NODE"}}},
      Command{.name = "pools",
              .summary = "list pools with their node and GPU counts (server)",
              .make_flags = [] { return ServerFlags("pools", "[--output=table|json]"); },
              .run = RunPools},
      Command{.name = "models",
              .summary = "import, list, show or remove catalog models (server)",
              .make_flags =
                  [] {
                    FlagSet f = ServerFlags(
                        "models",
                        "import CONFIG.json|FILE.gguf [--name=N] | list | show NAME | remove NAME");
                    f.String("name", "", "import: model name (default: the file's folder or stem)");
                    f.String("quantization", "",
                             "import: quantization override (config.json only)");
                    f.String("gguf-path", "",
                             "import of a GGUF: where llama-server loads the file from (default: "
                             "its absolute path here)");
                    f.String("request-id", "", "idempotency key for retries");
                    f.Bool("validate-only", false, "import: check without storing");
                    return f;
                  },
              .verbs = {{"import",
                         "add a model from its config.json, or a GGUF file's header (llama.cpp)",
                         ModelsImport, 1, "CONFIG.json|FILE.gguf"},
                        {"list", "list the catalog", ModelsList},
                        {"show", "one model with its config.json", ModelsShow, 1, "NAME"},
                        {"remove", "delete an unplaced model", ModelsRemove, 1, "NAME"}}},
      Command{.name = "observe",
              .summary = "observed GPU memory (DCGM) against what placements promise, per "
                         "deployment, and the GPUs that disagree (server)",
              .make_flags =
                  [] {
                    FlagSet f = ServerFlags("observe", "[--unplanned-bytes=B] [--idle-bytes=B]");
                    f.Int("unplanned-bytes", 0,
                          "flag GPUs using more than committed by this much (0: 2 GiB; at least "
                          "5% of the GPU)");
                    f.Int("idle-bytes", 0,
                          "flag GPUs with placements using less than this (0: 1 GiB)");
                    return f;
                  },
              .run = RunObserve},
      Command{.name = "headroom",
              .summary = "fleet memory headroom by pool, node, GPU type or GPU (server)",
              .make_flags =
                  [] {
                    FlagSet f = ServerFlags("headroom", "[--by=pool|node|gpu-type|gpu] [--watch]");
                    f.String("by", "pool", "pool | node | gpu-type | gpu");
                    f.Bool("watch", false,
                           "stream updates whenever the fleet changes (until --timeout)");
                    f.Int("updates", 0,
                          "--watch: stop after this many updates (0: until --timeout)");
                    return f;
                  },
              .run = RunHeadroom},
  };
}

}  // namespace fleetplan::cli
