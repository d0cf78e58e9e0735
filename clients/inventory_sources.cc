#include "clients/inventory_sources.h"

#include <algorithm>
#include <deque>
#include <numeric>
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/deployments_file.h"
#include "nlohmann/json.hpp"
#include "planner/common/limits.h"
#include "planner/common/status_macros.h"
#include "planner/common/units.h"
#include "planner/estimator/gpu_catalog.h"

namespace fleetplan::cli {
namespace {

using json = nlohmann::json;

// GFD label keys (NVIDIA k8s-device-plugin docs/gpu-feature-discovery/README.md).
constexpr char kProductLabel[] = "nvidia.com/gpu.product";
constexpr char kMemoryLabel[] = "nvidia.com/gpu.memory";  // MiB per GPU, from NVML
constexpr char kCountLabel[] = "nvidia.com/gpu.count";
constexpr char kReplicasLabel[] = "nvidia.com/gpu.replicas";  // > 1 with time-slicing / MPS
constexpr char kCliqueLabel[] = "nvidia.com/gpu.clique";      // multi-node NVLink (NVL72 class)
constexpr char kGpuResource[] = "nvidia.com/gpu";
constexpr char kDefaultZoneLabel[] = "topology.kubernetes.io/zone";
constexpr char kLegacyZoneLabel[] = "failure-domain.beta.kubernetes.io/zone";

// What NVML calls memory.total (nvidia-smi, GFD's gpu.memory) is more than CUDA can allocate:
// the driver keeps a few hundred MiB. Measured: H100 80GB HBM3 81,559 MiB vs cudaMemGetInfo total
// 81,080 MiB (479 MiB, calibration README); A100-SXM4-40GB 40,960 MiB vs PyTorch's 39.59 GiB
// (≈420 MiB). A GPU type created from an NVML total alone keeps back 512 MiB, at least what both
// showed, so a plan never counts memory the engine cannot have; register cudaMemGetInfo's total
// (torch.cuda.mem_get_info()[1]) for exact budgets.
constexpr int64_t kDriverReserveBytes = 512 * kMiB;

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
}

// Values from other tools, quoted in errors: escaped and cut short.
std::string Quoted(const std::string& s) {
  std::string cut = s.size() > 80 ? s.substr(0, 80) + "..." : s;
  return absl::StrCat("\"", Printable(cut) ? cut : absl::CEscape(cut), "\"");
}

absl::StatusOr<int64_t> WholeNumber(absl::string_view text, int64_t max, const std::string& what) {
  int64_t v = 0;
  const absl::string_view t = absl::StripAsciiWhitespace(text);
  if (!absl::SimpleAtoi(t, &v) || v < 0 || v > max) {
    return absl::InvalidArgumentError(absl::StrCat(what, "=", Quoted(std::string(text)),
                                                   " is not a whole number in [0, ", max, "]"));
  }
  return v;
}

// The largest per-GPU memory any source may claim: limits::kMaxGpuMemoryBytes in MiB.
constexpr int64_t kMaxMiB = limits::kMaxGpuMemoryBytes / kMiB;

// SXM/HGX modules sit on an NVSwitch baseboard: every GPU of the node can reach every other over
// NVLink (one domain). PCIe cards have at most bridges between pairs, which a topology file shows;
// without one they get a domain each. The product names follow NVML's spelling: H100 SXM is
// "NVIDIA H100 80GB HBM3", A100 SXM "NVIDIA A100-SXM4-80GB", H200/B200 SXM plain "NVIDIA H200";
// PCIe and NVL cards say so ("H100 PCIe", "H100 NVL", "H200 NVL").
bool SharesNvSwitch(const std::string& normalized) {
  const std::vector<std::string> tokens = absl::StrSplit(normalized, '-', absl::SkipEmpty());
  if (tokens.empty()) return false;
  for (const std::string& t : tokens) {
    if (t == "pcie" || t == "nvl" || t == "mig") return false;
  }
  for (const std::string& t : tokens) {
    if (absl::StartsWith(t, "sxm") || t == "hgx" || t == "hbm3" || t == "hbm3e") return true;
  }
  static const std::set<std::string> kSxmOnly = {"h200", "h20",  "h800",  "b200",
                                                 "b100", "b300", "gb200", "gb300"};
  return kSxmOnly.count(tokens.front()) > 0;
}

// A GPU type name from a product name: NVML's spelling without "NVIDIA", anything a name may not
// hold as '-'.
std::string TypeNameFor(const std::string& product) {
  std::string name(absl::StripPrefix(absl::StripPrefix(product, "NVIDIA-"), "NVIDIA "));
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      c = '-';
  }
  while (!name.empty() && !absl::ascii_isalnum(static_cast<unsigned char>(name.front())))
    name.erase(0, 1);
  return name.substr(0, limits::kMaxNameLength);
}

// Product -> GPU type, collecting the products it does not know (reported all at once, so a
// cluster with three unknown products needs one fix, not three runs).
class TypeResolver {
 public:
  explicit TypeResolver(const GpuTypeOptions& options) : options_(options) {
    for (const auto& [product, type] : options.explicit_map) {
      explicit_[NormalizedProduct(product)] = type;
    }
  }

  // The type's name for `product` with `reported_bytes` per GPU (0: not reported), or "" when it
  // is unknown (noted under `where`). INVALID_ARGUMENT when the type claims more memory than the
  // GPU reports.
  absl::StatusOr<std::string> Resolve(const std::string& product, int64_t reported_bytes,
                                      const std::string& where) {
    const std::string key = NormalizedProduct(product);
    const v1::GpuType* type = nullptr;
    if (auto it = explicit_.find(key); it != explicit_.end()) {
      type = Registered(it->second);
      if (type == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("--gpu-type-map maps ", Quoted(product),
                                                       " to ", Quoted(it->second),
                                                       ", which is not a registered GPU type"));
      }
    }
    if (type == nullptr) type = RegisteredByProduct(key);
    const std::optional<estimator::GpuInfo> found = BuiltIn(key);
    const estimator::GpuInfo* builtin = found ? &*found : nullptr;
    if (type == nullptr && builtin != nullptr) type = Registered(builtin->name);
    if (type == nullptr) type = Created(key, builtin);
    if (type == nullptr && options_.create) {
      v1::GpuType t;
      if (builtin != nullptr) {
        t.set_name(builtin->name);
        t.set_memory_bytes(builtin->memory_bytes);
        notes_.push_back(absl::StrCat("new GPU type ", t.name(), " for ", Quoted(product), ": ",
                                      t.memory_bytes(), " bytes (built-in table: ", builtin->source,
                                      ")"));
      } else {
        if (reported_bytes <= 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(where, ": GPU product ", Quoted(product),
                           " has no memory size to create its GPU type from (", kMemoryLabel,
                           " / memory.total); register it with `fleetplan gpu-types add`"));
        }
        t.set_name(TypeNameFor(product));
        if (t.name().empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              where, ": GPU product ", Quoted(product),
              " has no letters or digits to name a GPU type after; map it (--gpu-type-map)"));
        }
        t.set_memory_bytes(std::max<int64_t>(reported_bytes - kDriverReserveBytes, kMiB));
        notes_.push_back(absl::StrCat("new GPU type ", t.name(), " for ", Quoted(product), ": ",
                                      t.memory_bytes(), " bytes (", reported_bytes / kMiB,
                                      " MiB reported less 512 MiB the driver keeps; "
                                      "register cudaMemGetInfo's total for an exact budget)"));
      }
      created_by_product_[key] = created_.size();
      created_.push_back(t);
      type = &created_.back();
    }
    if (type == nullptr) {
      unknown_[product].push_back(where);
      return std::string();
    }
    if (reported_bytes > 0 && type->memory_bytes() > reported_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": GPU type ", type->name(), " has ", type->memory_bytes(), " bytes but the GPU (",
          Quoted(product), ") reports ", reported_bytes / kMiB, " MiB = ", reported_bytes,
          " bytes; map the product to a smaller type (--gpu-type-map) or fix the type"));
    }
    return type->name();
  }

  // FAILED_PRECONDITION listing every unknown product and where it was seen.
  absl::Status Unknown() const {
    if (unknown_.empty()) return absl::OkStatus();
    std::vector<std::string> parts;
    for (const auto& [product, where] : unknown_) {
      std::vector<std::string> shown(
          where.begin(),
          where.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(where.size(), 3)));
      parts.push_back(absl::StrCat(
          Quoted(product), " (", absl::StrJoin(shown, ", "),
          where.size() > 3 ? absl::StrCat(" and ", where.size() - 3, " more") : "", ")"));
    }
    std::vector<std::string> known;
    for (const v1::GpuType& t : options_.registered) known.push_back(t.name());
    return absl::FailedPreconditionError(absl::StrCat(
        "unknown GPU products: ", absl::StrJoin(parts, "; "),
        ". Registered GPU types: ", known.empty() ? "none" : absl::StrJoin(known, ", "),
        ". Register them (fleetplan gpu-types add), map them (--gpu-type-map=PRODUCT=TYPE) or "
        "pass --create-gpu-types"));
  }

  std::vector<v1::GpuType> created() const { return {created_.begin(), created_.end()}; }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  const v1::GpuType* Registered(const std::string& name) const {
    for (const v1::GpuType& t : options_.registered) {
      if (t.name() == name) return &t;
    }
    return nullptr;
  }
  const v1::GpuType* RegisteredByProduct(const std::string& key) const {
    for (const v1::GpuType& t : options_.registered) {
      if (NormalizedProduct(t.name()) == key) return &t;
    }
    return nullptr;
  }
  // A type this run already created for the product (or for its built-in entry).
  const v1::GpuType* Created(const std::string& key, const estimator::GpuInfo* builtin) const {
    if (auto it = created_by_product_.find(key); it != created_by_product_.end()) {
      return &created_[it->second];
    }
    for (const v1::GpuType& t : created_) {
      if (builtin != nullptr && t.name() == builtin->name) return &t;
    }
    return nullptr;
  }
  // The built-in table's entry for the product (FindGpu: the one GPU-name rule).
  static std::optional<estimator::GpuInfo> BuiltIn(const std::string& key) {
    absl::StatusOr<estimator::GpuInfo> g = estimator::FindGpu(key);
    if (!g.ok()) return std::nullopt;
    return *g;
  }

  const GpuTypeOptions& options_;
  std::map<std::string, std::string> explicit_;
  std::deque<v1::GpuType> created_;  // stable addresses
  std::map<std::string, size_t> created_by_product_;
  std::map<std::string, std::vector<std::string>> unknown_;
  std::vector<std::string> notes_;
};

// GPUs 0..count-1 of one type, in domains per `rule` (or one per GPU for MIG slices, which have
// no NVLink of their own).
void AddGpus(v1::Node& node, int64_t count, const std::string& type, const std::string& product,
             NvlinkRule rule, bool one_domain) {
  const std::string key = NormalizedProduct(product);
  const bool mig = absl::StrContains(key, "-mig-");
  if (!mig && rule == NvlinkRule::kAuto) one_domain = one_domain || SharesNvSwitch(key);
  if (!mig && rule == NvlinkRule::kNode) one_domain = true;
  for (int64_t i = 0; i < count; ++i) {
    v1::Gpu* g = node.add_gpus();
    g->set_index(i);
    g->set_gpu_type(type);
    g->set_nvlink_domain(one_domain && !mig ? 0 : i);
  }
}

// --- Kubernetes -------------------------------------------------------------------------------

// A string member of an object, or "" when absent; an error when present with another type.
absl::StatusOr<std::string> StringAt(const json& object, const char* key,
                                     const std::string& where) {
  if (!object.is_object()) return std::string();
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".", key, " must be a string, not ", it->type_name()));
  }
  return it->get<std::string>();
}

// obj[key] when it is an object (or absent: an empty one); an error otherwise.
absl::StatusOr<const json*> ObjectAt(const json& object, const char* key,
                                     const std::string& where) {
  static const json* const kEmpty = new json(json::object());
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return kEmpty;
  if (!it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".", key, " must be an object, not ", it->type_name()));
  }
  return &*it;
}

absl::StatusOr<const json*> ArrayAt(const json& object, const char* key, const std::string& where) {
  static const json* const kEmpty = new json(json::array());
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return kEmpty;
  if (!it->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".", key, " must be a list, not ", it->type_name()));
  }
  return &*it;
}

// Ready condition, the taints the node lifecycle controller sets, and spec.unschedulable.
absl::StatusOr<v1::NodeState> KubeState(const json& item, const std::string& where) {
  ASSIGN_OR_RETURN(const json* spec, ObjectAt(item, "spec", where));
  ASSIGN_OR_RETURN(const json* status, ObjectAt(item, "status", where));
  bool down = false, cordoned = false;
  ASSIGN_OR_RETURN(const json* conditions, ArrayAt(*status, "conditions", where + ".status"));
  for (size_t i = 0; i < conditions->size(); ++i) {
    const std::string at = absl::StrCat(where, ".status.conditions[", i, "]");
    ASSIGN_OR_RETURN(std::string type, StringAt((*conditions)[i], "type", at));
    if (type != "Ready") continue;
    ASSIGN_OR_RETURN(std::string value, StringAt((*conditions)[i], "status", at));
    down = value != "True";
  }
  // A node object without a Ready condition (hand-written) is not known to be down; one whose
  // Ready condition is False or Unknown is.
  ASSIGN_OR_RETURN(const json* taints, ArrayAt(*spec, "taints", where + ".spec"));
  for (size_t i = 0; i < taints->size(); ++i) {
    const std::string at = absl::StrCat(where, ".spec.taints[", i, "]");
    ASSIGN_OR_RETURN(std::string key, StringAt((*taints)[i], "key", at));
    if (key == "node.kubernetes.io/not-ready" || key == "node.kubernetes.io/unreachable") {
      down = true;
    } else if (key == "node.kubernetes.io/unschedulable") {
      cordoned = true;
    }
  }
  if (auto it = spec->find("unschedulable"); it != spec->end() && !it->is_null()) {
    if (!it->is_boolean()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".spec.unschedulable must be true or false, not ", it->dump()));
    }
    cordoned = cordoned || it->get<bool>();
  }
  if (down) return v1::NODE_STATE_DOWN;
  return cordoned ? v1::NODE_STATE_CORDONED : v1::NODE_STATE_ACTIVE;
}

// One Node object -> a fleetplan node, or no node (with a note) when it has no NVIDIA GPUs.
absl::Status KubeNode(const json& item, const std::string& where, const KubernetesOptions& options,
                      TypeResolver& types, ImportedInventory& out,
                      std::map<std::string, std::string>& seen) {
  if (!item.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " must be a Node object, not ", item.type_name()));
  }
  ASSIGN_OR_RETURN(std::string kind, StringAt(item, "kind", where));
  if (!kind.empty() && kind != "Node") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".kind=", Quoted(kind), ": expected Node (kubectl get nodes -o json)"));
  }
  ASSIGN_OR_RETURN(const json* metadata, ObjectAt(item, "metadata", where));
  ASSIGN_OR_RETURN(std::string name, StringAt(*metadata, "name", where + ".metadata"));
  if (name.empty()) return absl::InvalidArgumentError(where + ".metadata.name is missing");
  const std::string at = absl::StrCat(where, " (", name, ")");
  if (auto [it, fresh] = seen.emplace(name, where); !fresh) {
    return absl::InvalidArgumentError(absl::StrCat(at, " repeats ", it->second));
  }
  ASSIGN_OR_RETURN(const json* label_json, ObjectAt(*metadata, "labels", at + ".metadata"));
  std::map<std::string, std::string> labels;
  for (auto it = label_json->begin(); it != label_json->end(); ++it) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(at, ": label ", Quoted(it.key()),
                                                     " must be a string, not ", it->type_name()));
    }
    labels[it.key()] = it->get<std::string>();
  }
  auto label = [&](const std::string& key) {
    auto it = labels.find(key);
    return it == labels.end() ? std::string() : it->second;
  };
  // GPU count: what the device plugin advertises, else GFD's count.
  ASSIGN_OR_RETURN(const json* status, ObjectAt(item, "status", at));
  ASSIGN_OR_RETURN(const json* allocatable, ObjectAt(*status, "allocatable", at + ".status"));
  ASSIGN_OR_RETURN(std::string advertised,
                   StringAt(*allocatable, kGpuResource, at + ".status.allocatable"));
  int64_t count = 0;
  if (!advertised.empty()) {
    ASSIGN_OR_RETURN(count, WholeNumber(advertised, limits::kMaxGpusPerNode * 64,
                                        at + ": status.allocatable[\"nvidia.com/gpu\"]"));
  } else if (!label(kCountLabel).empty()) {
    ASSIGN_OR_RETURN(count, WholeNumber(label(kCountLabel), limits::kMaxGpusPerNode,
                                        absl::StrCat(at, ": label ", kCountLabel)));
  }
  int64_t replicas = 1;
  if (!label(kReplicasLabel).empty()) {
    ASSIGN_OR_RETURN(replicas, WholeNumber(label(kReplicasLabel), 1 << 16,
                                           absl::StrCat(at, ": label ", kReplicasLabel)));
    replicas = std::max<int64_t>(replicas, 1);
  }
  // Time-slicing and MPS advertise each GPU `replicas` times; fleetplan plans physical GPUs.
  if (replicas > 1) {
    if (!label(kCountLabel).empty()) {
      ASSIGN_OR_RETURN(count, WholeNumber(label(kCountLabel), limits::kMaxGpusPerNode,
                                          absl::StrCat(at, ": label ", kCountLabel)));
    } else {
      count /= replicas;
    }
  }
  std::string product = label(kProductLabel);
  bool mig_mixed = false;
  for (auto it = allocatable->begin(); it != allocatable->end(); ++it) {
    mig_mixed = mig_mixed || absl::StartsWith(it.key(), "nvidia.com/mig-");
  }
  if (mig_mixed && count == 0) {
    out.notes.push_back(absl::StrCat("skipped ", name,
                                     ": MIG with the mixed strategy (nvidia.com/mig-* resources) "
                                     "is not modelled; use the single "
                                     "strategy, or import the node from nvidia-smi"));
    return absl::OkStatus();
  }
  if (count == 0) {
    out.notes.push_back(absl::StrCat("skipped ", name, ": no NVIDIA GPUs"));
    return absl::OkStatus();
  }
  if (count > limits::kMaxGpusPerNode) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ": ", count, " GPUs, more than ", limits::kMaxGpusPerNode));
  }
  if (product.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        at, ": ", count, " nvidia.com/gpu but no ", kProductLabel,
        " label to tell which GPU (install GPU Feature Discovery, or import this node with "
        "--from-nvidia-smi)"));
  }
  product = std::string(absl::StripSuffix(product, "-SHARED"));
  int64_t reported = 0;
  if (!label(kMemoryLabel).empty()) {
    ASSIGN_OR_RETURN(int64_t mib, WholeNumber(label(kMemoryLabel), kMaxMiB,
                                              absl::StrCat(at, ": label ", kMemoryLabel)));
    reported = mib * kMiB;
  }
  ASSIGN_OR_RETURN(std::string type, types.Resolve(product, reported, at));

  v1::Node node;
  node.set_name(name);
  node.set_pool(options.pool_label.empty() ? "" : label(options.pool_label));
  if (node.pool().empty()) node.set_pool(options.pool);
  if (node.pool().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, ": no pool (",
                     options.pool_label.empty()
                         ? "pass --pool"
                         : "no label " + options.pool_label + "; pass --pool for nodes without it",
                     ")"));
  }
  std::string zone = label(options.zone_label);
  if (zone.empty() && options.zone_label == kDefaultZoneLabel) zone = label(kLegacyZoneLabel);
  node.set_zone(zone);
  if (!options.rack_label.empty()) node.set_rack(label(options.rack_label));
  ASSIGN_OR_RETURN(v1::NodeState state, KubeState(item, at));
  node.set_state(state);
  labels[kSourceLabel] = "kubernetes";
  if (!options.cluster.empty()) labels[kClusterLabel] = options.cluster;
  for (const auto& [k, v] : labels) (*node.mutable_labels())[k] = v;
  // A clique (multi-node NVLink) joins every GPU of the node into one domain at least.
  AddGpus(node, count, type, product, options.nvlink, !label(kCliqueLabel).empty());
  if (!type.empty()) *out.nodes.add_nodes() = std::move(node);
  return absl::OkStatus();
}

// --- nvidia-smi ---------------------------------------------------------------------------------

struct SmiRow {
  int64_t index = 0;
  std::string uuid, name;
  int64_t memory_bytes = 0;
  int line = 0;
};

// Strips ANSI escape sequences (ESC [ ... final byte) and carriage returns.
std::string WithoutAnsi(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b') {
      if (i + 1 < text.size() && text[i + 1] == '[') {
        i += 2;
        while (i < text.size() && !(text[i] >= 0x40 && text[i] <= 0x7e)) ++i;
      }
      continue;
    }
    if (text[i] != '\r') out.push_back(text[i]);
  }
  return out;
}

absl::StatusOr<std::vector<SmiRow>> ParseSmiCsv(const std::string& text,
                                                const std::string& source) {
  // Column positions: the documented query order, or the header's when it has one.
  std::map<std::string, size_t> column = {
      {"index", 0}, {"uuid", 1}, {"name", 2}, {"memory.total", 3}};
  std::vector<SmiRow> rows;
  std::set<int64_t> indexes;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(WithoutAnsi(text), '\n')) {
    ++line_no;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty()) continue;
    std::vector<std::string> cells;
    for (absl::string_view c : absl::StrSplit(line, ',')) {
      cells.emplace_back(absl::StripAsciiWhitespace(c));
    }
    const std::string where = absl::StrCat(source, ": line ", line_no);
    if (cells[0] == "index") {  // a header: --format=csv without noheader
      column.clear();
      for (size_t i = 0; i < cells.size(); ++i) {
        const std::string key(absl::StripSuffix(absl::StripSuffix(cells[i], " [MiB]"), " [GiB]"));
        column[key] = i;
      }
      for (const char* need : {"index", "name", "memory.total"}) {
        if (column.count(need) == 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              where, ": the header has no ", need,
              " column (query with --query-gpu=index,uuid,name,memory.total,pci.bus_id)"));
        }
      }
      if (absl::StrContains(line, "[GiB]")) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": memory.total in GiB; query MiB"));
      }
      continue;
    }
    size_t needed = 0;
    for (const auto& [k, i] : column) needed = std::max(needed, i + 1);
    if (cells.size() < needed) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", cells.size(), " fields, expected ", needed,
                       " (index, uuid, name, memory.total, pci.bus_id)"));
    }
    SmiRow row;
    row.line = line_no;
    ASSIGN_OR_RETURN(row.index, WholeNumber(cells[column["index"]], limits::kMaxGpusPerNode - 1,
                                            where + ": index"));
    if (!indexes.insert(row.index).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": GPU index ", row.index, " repeats"));
    }
    if (column.count("uuid") > 0) row.uuid = cells[column["uuid"]];
    if (!Printable(row.uuid)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": uuid=", Quoted(row.uuid), " is not a GPU UUID"));
    }
    row.name = cells[column["name"]];
    if (row.name.empty() || !Printable(row.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": name=", Quoted(row.name), " is not a GPU name"));
    }
    if (absl::StartsWith(row.uuid, "MIG-")) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": ", row.uuid,
          " is a MIG device; import MIG slices from Kubernetes (single strategy) or as GPU types "
          "of their own with `fleetplan nodes add`"));
    }
    const std::string memory(absl::StripSuffix(cells[column["memory.total"]], " MiB"));
    ASSIGN_OR_RETURN(int64_t mib, WholeNumber(memory, kMaxMiB, where + ": memory.total (MiB)"));
    if (mib == 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": memory.total=0"));
    }
    row.memory_bytes = mib * kMiB;
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

std::string NormalizedProduct(const std::string& product) {
  return estimator::NormalizedGpuName(product);
}

absl::StatusOr<NvlinkRule> ParseNvlinkRule(const std::string& text) {
  if (text == "auto") return NvlinkRule::kAuto;
  if (text == "node") return NvlinkRule::kNode;
  if (text == "none") return NvlinkRule::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("--nvlink=", Quoted(text), ": expected auto, node or none"));
}

absl::StatusOr<ImportedInventory> FromKubernetesNodes(const std::string& text,
                                                      const std::string& source,
                                                      const KubernetesOptions& options) {
  RETURN_IF_ERROR(CheckJsonNesting(text, source));
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not JSON (expected `kubectl get nodes -o json`)"));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a List of Nodes, not a JSON ", doc.type_name()));
  }
  ImportedInventory out;
  TypeResolver types(options.gpu_types);
  std::map<std::string, std::string> seen;
  ASSIGN_OR_RETURN(std::string kind, StringAt(doc, "kind", source));
  if (kind == "Node") {
    RETURN_IF_ERROR(KubeNode(doc, source, options, types, out, seen));
  } else {
    if (kind != "List" && kind != "NodeList") {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": kind=", Quoted(kind),
                       ", expected List or NodeList (kubectl get nodes -o json)"));
    }
    ASSIGN_OR_RETURN(const json* items, ArrayAt(doc, "items", source));
    for (size_t i = 0; i < items->size(); ++i) {
      RETURN_IF_ERROR(KubeNode((*items)[i], absl::StrCat(source, ": items[", i, "]"), options,
                               types, out, seen));
    }
  }
  RETURN_IF_ERROR(types.Unknown());
  out.new_gpu_types = types.created();
  out.notes.insert(out.notes.end(), types.notes().begin(), types.notes().end());
  return out;
}

absl::StatusOr<std::vector<int64_t>> ParseNvidiaTopology(const std::string& text,
                                                         const std::string& source) {
  const std::string clean = WithoutAnsi(text);
  std::vector<std::string> lines = absl::StrSplit(clean, '\n');
  // The header: the first line whose first cell is GPU0.
  auto cells_of = [](const std::string& line) {
    std::vector<std::string> cells;
    const bool tabs = line.find('\t') != std::string::npos;
    for (absl::string_view c : tabs ? absl::StrSplit(line, '\t', absl::SkipEmpty())
                                    : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      const absl::string_view t = absl::StripAsciiWhitespace(c);
      if (!t.empty()) cells.emplace_back(t);
    }
    return cells;
  };
  size_t header = lines.size();
  std::vector<std::string> columns;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::string> cells = cells_of(lines[i]);
    if (!cells.empty() && cells[0] == "GPU0") {
      header = i;
      columns = std::move(cells);
      break;
    }
  }
  if (header == lines.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no GPU0 header (expected the output of `nvidia-smi topo -m`)"));
  }
  size_t gpus = 0;
  while (gpus < columns.size() && columns[gpus] == absl::StrCat("GPU", gpus)) ++gpus;
  if (gpus > static_cast<size_t>(limits::kMaxGpusPerNode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", gpus, " GPUs, more than ", limits::kMaxGpusPerNode));
  }
  std::vector<size_t> parent(gpus);
  std::iota(parent.begin(), parent.end(), size_t{0});
  auto find = [&](size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  std::vector<bool> row_seen(gpus, false);
  for (size_t i = header + 1; i < lines.size(); ++i) {
    std::vector<std::string> cells = cells_of(lines[i]);
    if (cells.empty()) continue;
    if (absl::StartsWith(cells[0], "Legend")) break;
    if (!absl::StartsWith(cells[0], "GPU")) continue;  // NIC rows, notes
    const std::string where = absl::StrCat(source, ": line ", i + 1, " (", cells[0], ")");
    size_t row = 0;
    if (!absl::SimpleAtoi(absl::string_view(cells[0]).substr(3), &row) || row >= gpus) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": not one of the header's ", gpus, " GPUs"));
    }
    if (row_seen[row]) return absl::InvalidArgumentError(absl::StrCat(where, ": repeats"));
    row_seen[row] = true;
    if (cells.size() < gpus + 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", cells.size() - 1, " links, expected ", gpus));
    }
    for (size_t j = 0; j < gpus; ++j) {
      const std::string& link = cells[j + 1];
      int64_t bonded = 0;
      if (absl::StartsWith(link, "NV") && absl::SimpleAtoi(link.substr(2), &bonded) && bonded > 0) {
        parent[find(row)] = find(j);
      } else if (link != "X" && link != "SYS" && link != "NODE" && link != "PHB" && link != "PXB" &&
                 link != "PIX" && link != "SOC") {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": link to GPU", j, " is ", Quoted(link),
                         " (expected X, NV#, PIX, PXB, PHB, NODE or SYS)"));
      }
    }
  }
  for (size_t g = 0; g < gpus; ++g) {
    if (!row_seen[g]) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": no row for GPU", g));
    }
  }
  // Domains numbered by their lowest GPU.
  std::map<size_t, int64_t> number;
  std::vector<int64_t> domain(gpus);
  for (size_t g = 0; g < gpus; ++g) {
    auto [it, fresh] = number.emplace(find(g), static_cast<int64_t>(number.size()));
    domain[g] = it->second;
  }
  return domain;
}

absl::StatusOr<ImportedInventory> FromNvidiaSmi(const std::string& csv,
                                                const std::string& csv_source,
                                                const std::string& topology,
                                                const std::string& topology_source,
                                                const NvidiaSmiOptions& options) {
  if (options.node.empty()) return absl::InvalidArgumentError("--name (the node) is required");
  if (options.pool.empty()) return absl::InvalidArgumentError("--pool is required");
  ASSIGN_OR_RETURN(std::vector<SmiRow> rows, ParseSmiCsv(csv, csv_source));
  if (rows.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        csv_source, ": no GPUs (node ", options.node,
        "); a node needs a GPU to be planned on. Expected the output of nvidia-smi "
        "--query-gpu=index,uuid,name,memory.total,pci.bus_id --format=csv,noheader,nounits"));
  }
  std::sort(rows.begin(), rows.end(),
            [](const SmiRow& a, const SmiRow& b) { return a.index < b.index; });
  std::vector<int64_t> domains;
  if (!topology.empty()) {
    ASSIGN_OR_RETURN(domains, ParseNvidiaTopology(topology, topology_source));
    if (domains.size() != rows.size() ||
        rows.back().index + 1 != static_cast<int64_t>(rows.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat(topology_source, " has ", domains.size(), " GPUs but ", csv_source,
                       " lists ", rows.size(), " (GPU indexes 0..", rows.back().index,
                       "); take both from the same node at the same time"));
    }
  }
  ImportedInventory out;
  TypeResolver types(options.gpu_types);
  v1::Node node;
  node.set_name(options.node);
  node.set_pool(options.pool);
  node.set_zone(options.zone);
  node.set_rack(options.rack);
  for (const auto& [k, v] : options.labels) (*node.mutable_labels())[k] = v;
  (*node.mutable_labels())[kSourceLabel] = "nvidia-smi";
  std::set<std::string> products;
  for (const SmiRow& row : rows) products.insert(NormalizedProduct(row.name));
  for (const SmiRow& row : rows) {
    const std::string where =
        absl::StrCat(csv_source, ": line ", row.line, " (GPU ", row.index, ")");
    ASSIGN_OR_RETURN(std::string type, types.Resolve(row.name, row.memory_bytes, where));
    v1::Gpu* g = node.add_gpus();
    g->set_index(row.index);
    g->set_gpu_type(type);
    g->set_uuid(row.uuid);
    if (!domains.empty()) {
      g->set_nvlink_domain(domains[static_cast<size_t>(row.index)]);
    } else {
      // One product on an NVSwitch board (or --nvlink=node): one domain; else one per GPU.
      const bool shared =
          products.size() == 1 &&
          (options.nvlink == NvlinkRule::kNode ||
           (options.nvlink == NvlinkRule::kAuto && SharesNvSwitch(NormalizedProduct(row.name))));
      g->set_nvlink_domain(shared ? 0 : row.index);
    }
  }
  RETURN_IF_ERROR(types.Unknown());
  *out.nodes.add_nodes() = std::move(node);
  out.new_gpu_types = types.created();
  out.notes = types.notes();
  return out;
}

void Reconcile(const v1::ListNodesResponse& owned, ImportedInventory& imported) {
  std::map<std::string, v1::Node*> by_name;
  for (v1::Node& n : *imported.nodes.mutable_nodes()) by_name[n.name()] = &n;
  auto holds_committed = [](const v1::Node& n) {
    return std::any_of(n.gpus().begin(), n.gpus().end(),
                       [](const v1::Gpu& g) { return g.committed_bytes() > 0; });
  };
  for (const v1::Node& old : owned.nodes()) {
    auto it = by_name.find(old.name());
    if (it == by_name.end()) {
      // Vanished from the cluster (or lost its GPUs): down, never deleted.
      v1::Node gone = old;
      gone.clear_etag();
      for (v1::Gpu& g : *gone.mutable_gpus()) {
        g.clear_committed_bytes();
        g.clear_reserved_bytes();
      }
      if (holds_committed(old)) {
        gone.set_state(v1::NODE_STATE_CORDONED);
        imported.notes.push_back(
            absl::StrCat(old.name(),
                         " is no longer in the cluster but holds placements: cordoned; release "
                         "them, then import again to mark it down"));
      } else {
        gone.set_state(v1::NODE_STATE_DOWN);
        if (old.state() != v1::NODE_STATE_DOWN) {
          imported.notes.push_back(absl::StrCat(old.name(), " is no longer in the cluster: down"));
        }
      }
      *imported.nodes.add_nodes() = std::move(gone);
      continue;
    }
    v1::Node& now = *it->second;
    if ((now.state() == v1::NODE_STATE_DOWN || now.state() == v1::NODE_STATE_DRAINING) &&
        holds_committed(old)) {
      now.set_state(v1::NODE_STATE_CORDONED);
      imported.notes.push_back(absl::StrCat(
          old.name(),
          " is not ready but holds placements: cordoned (release them to mark it down)"));
    }
    // A GPU holding placements stays with its type, marked unhealthy if Kubernetes lost it.
    for (const v1::Gpu& g : old.gpus()) {
      if (g.committed_bytes() == 0 && g.reserved_bytes() == 0) continue;
      auto same = std::find_if(now.mutable_gpus()->begin(), now.mutable_gpus()->end(),
                               [&](const v1::Gpu& x) { return x.index() == g.index(); });
      if (same != now.mutable_gpus()->end() && same->gpu_type() == g.gpu_type()) continue;
      v1::Gpu kept = g;
      kept.clear_committed_bytes();
      kept.clear_reserved_bytes();
      kept.set_healthy(false);
      if (same != now.mutable_gpus()->end()) {
        *same = kept;
      } else {
        *now.add_gpus() = kept;
      }
      imported.notes.push_back(absl::StrCat(
          old.name(), ": gpu ", g.index(),
          " holds placements but is gone or changed in the cluster: kept as unhealthy"));
    }
  }
}

}  // namespace fleetplan::cli
