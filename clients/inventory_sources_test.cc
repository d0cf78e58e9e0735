#include "clients/inventory_sources.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "planner/estimator/gpu_catalog.h"

namespace fleetplan::cli {
namespace {

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(FLEETPLAN_INVENTORY_DIR) + "/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

v1::GpuType Type(const std::string& name, int64_t bytes) {
  v1::GpuType t;
  t.set_name(name);
  t.set_memory_bytes(bytes);
  return t;
}

// What the example fleet registers (deploy/examples/load.sh).
constexpr int64_t kH100 = 85017493504;
constexpr int64_t kA100 = 42508723978;  // 39.59 GiB

KubernetesOptions ClusterOptions(bool create) {
  return KubernetesOptions{
      .pool = "gpu",
      .pool_label = "fleet.example.com/pool",
      .cluster = "east",
      .gpu_types = {.registered = {Type("H100-80GB", kH100), Type("A100-40GB", kA100)},
                    .create = create}};
}

const v1::Node* Find(const ImportedInventory& in, const std::string& name) {
  for (const v1::Node& n : in.nodes.nodes()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

std::vector<int64_t> Domains(const v1::Node& n) {
  std::vector<int64_t> out;
  for (const v1::Gpu& g : n.gpus()) out.push_back(g.nvlink_domain());
  return out;
}

bool HasNote(const ImportedInventory& in, const std::string& part) {
  for (const std::string& n : in.notes) {
    if (n.find(part) != std::string::npos) return true;
  }
  return false;
}

TEST(KubernetesImport, ReadsGpuFeatureDiscoveryLabels) {
  auto in = FromKubernetesNodes(Fixture("kubectl_nodes.json"), "nodes.json", ClusterOptions(true));
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->nodes.nodes_size(), 5);  // the CPU node and the one without GPUs are skipped
  EXPECT_TRUE(HasNote(*in, "skipped cpu-system-0: no NVIDIA GPUs"));
  EXPECT_TRUE(HasNote(*in, "skipped gpu-no-plugin-yet"));

  const v1::Node* h100 = Find(*in, "h100-a-0");
  ASSERT_NE(h100, nullptr);
  EXPECT_EQ(h100->pool(), "h100");  // from --pool-label
  EXPECT_EQ(h100->zone(), "us-east-1a");
  // The nvidia.com/gpu NoSchedule taint reserves the node for GPU pods; it is not a cordon.
  EXPECT_EQ(h100->state(), v1::NODE_STATE_ACTIVE);
  ASSERT_EQ(h100->gpus_size(), 8);
  for (const v1::Gpu& g : h100->gpus()) EXPECT_EQ(g.gpu_type(), "H100-80GB");
  EXPECT_EQ(Domains(*h100), std::vector<int64_t>(8, 0)) << "HGX: one NVSwitch domain";
  EXPECT_EQ(h100->labels().at("nvidia.com/gpu.family"), "hopper") << "all labels kept";
  EXPECT_EQ(h100->labels().at("fleetplan.io/source"), "kubernetes");
  EXPECT_EQ(h100->labels().at("fleetplan.io/cluster"), "east");

  EXPECT_EQ(Find(*in, "h100-a-1")->state(), v1::NODE_STATE_CORDONED);  // spec.unschedulable
  const v1::Node* a100 = Find(*in, "a100-b-0");
  EXPECT_EQ(a100->state(), v1::NODE_STATE_DOWN);  // Ready Unknown, unreachable taint
  EXPECT_EQ(a100->gpus(0).gpu_type(), "A100-40GB");
  EXPECT_EQ(Domains(*a100), std::vector<int64_t>(8, 0)) << "SXM4";

  const v1::Node* l40s = Find(*in, "l40s-b-0");
  EXPECT_EQ(l40s->pool(), "gpu") << "no pool label: --pool";
  EXPECT_EQ(l40s->zone(), "us-east-1b") << "the legacy zone label";
  EXPECT_EQ(Domains(*l40s), (std::vector<int64_t>{0, 1, 2, 3})) << "PCIe: no NVLink domain";
  EXPECT_EQ(l40s->gpus(0).gpu_type(), "L40S");

  // Time-slicing advertises 4 replicas of one GPU; fleetplan plans the physical one.
  const v1::Node* shared = Find(*in, "a10g-shared-0");
  ASSERT_EQ(shared->gpus_size(), 1);
  EXPECT_EQ(shared->gpus(0).gpu_type(), "A10G");

  // Unknown products became types with the built-in table's measured totals.
  ASSERT_EQ(in->new_gpu_types.size(), 2u);
  EXPECT_EQ(in->new_gpu_types[0].name(), "L40S");
  EXPECT_EQ(in->new_gpu_types[0].memory_bytes(), int64_t{4442} * (int64_t{1} << 30) / 100);
  EXPECT_EQ(in->new_gpu_types[1].name(), "A10G");
}

TEST(KubernetesImport, UnknownProductsAreOneTypedErrorListingThem) {
  auto in = FromKubernetesNodes(Fixture("kubectl_nodes.json"), "nodes.json", ClusterOptions(false));
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string msg(in.status().message());
  EXPECT_NE(msg.find("\"NVIDIA-L40S\" (nodes.json: items[4] (l40s-b-0))"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("\"NVIDIA-A10G\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("--create-gpu-types"), std::string::npos) << msg;
  EXPECT_NE(msg.find("H100-80GB, A100-40GB"), std::string::npos) << msg;

  auto more = FromKubernetesNodes(Fixture("kubectl_unknown_products.json"), "u.json",
                                  ClusterOptions(false));
  ASSERT_FALSE(more.ok());
  const std::string m(more.status().message());
  EXPECT_NE(m.find("\"NVIDIA-A40\" (u.json: items[0] (a40-0), u.json: items[1] (a40-1))"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"), std::string::npos) << m;
  EXPECT_NE(m.find("NVIDIA-GB200"), std::string::npos) << m;
}

TEST(KubernetesImport, CreatedTypesKeepTheDriverReserveBackAndMigSlicesHaveNoNvlink) {
  KubernetesOptions o = ClusterOptions(true);
  auto in = FromKubernetesNodes(Fixture("kubectl_unknown_products.json"), "u.json", o);
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->new_gpu_types.size(), 3u) << "A40 once for two nodes, the MIG slice, GB200";
  EXPECT_EQ(in->new_gpu_types[0].name(), "A40");
  EXPECT_EQ(in->new_gpu_types[0].memory_bytes(), (int64_t{46068} - 512) << 20);
  EXPECT_EQ(in->new_gpu_types[1].name(), "A100-SXM4-40GB-MIG-1g.5gb");
  const v1::Node* mig = Find(*in, "mig-0");
  ASSERT_EQ(mig->gpus_size(), 7);
  EXPECT_EQ(Domains(*mig), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(Domains(*Find(*in, "gb200-0")), std::vector<int64_t>(4, 0)) << "clique";
  EXPECT_EQ(Domains(*Find(*in, "a40-0")), (std::vector<int64_t>{0, 1})) << "PCIe";
  o.nvlink = NvlinkRule::kNode;
  auto node_rule = FromKubernetesNodes(Fixture("kubectl_unknown_products.json"), "u.json", o);
  ASSERT_TRUE(node_rule.ok());
  EXPECT_EQ(Domains(*Find(*node_rule, "a40-0")), (std::vector<int64_t>{0, 0})) << "--nvlink=node";
  EXPECT_EQ(Domains(*Find(*node_rule, "mig-0")).back(), 6) << "MIG slices stay apart";
}

TEST(KubernetesImport, MapsAndChecksMemory) {
  KubernetesOptions o = ClusterOptions(false);
  o.gpu_types.registered.push_back(Type("L40S-48GB", int64_t{44} << 30));
  o.gpu_types.registered.push_back(Type("A10G-24GB", int64_t{22} << 30));
  o.gpu_types.explicit_map = {{"NVIDIA-L40S", "L40S-48GB"}, {"nvidia a10g", "A10G-24GB"}};
  auto in = FromKubernetesNodes(Fixture("kubectl_nodes.json"), "nodes.json", o);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(Find(*in, "l40s-b-0")->gpus(0).gpu_type(), "L40S-48GB");
  EXPECT_TRUE(in->new_gpu_types.empty());
  // A type that claims more memory than the GPU reports would over-commit it.
  o.gpu_types.registered[0] = Type("H100-80GB", int64_t{90} << 30);
  auto over = FromKubernetesNodes(Fixture("kubectl_nodes.json"), "nodes.json", o);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("GPU type H100-80GB has 96636764160 bytes but the GPU "
                                         "(\"NVIDIA-H100-80GB-HBM3\") reports 81559 MiB"),
            std::string::npos)
      << over.status();
  o.gpu_types.registered[0] = Type("H100-80GB", kH100);
  o.gpu_types.explicit_map = {{"NVIDIA-L40S", "L40S-NOPE"}};
  auto unmapped = FromKubernetesNodes(Fixture("kubectl_nodes.json"), "nodes.json", o);
  EXPECT_NE(unmapped.status().message().find("L40S-NOPE\", which is not a registered GPU type"),
            std::string::npos)
      << unmapped.status();
}

TEST(KubernetesImport, BadFilesNameTheNodeFieldAndValue) {
  const KubernetesOptions o = ClusterOptions(true);
  auto error = [&](const std::string& text) {
    auto in = FromKubernetesNodes(text, "n.json", o);
    EXPECT_FALSE(in.ok()) << text;
    return std::string(in.status().message());
  };
  EXPECT_NE(FromKubernetesNodes(Fixture("kubectl_bad_memory.json"), "n.json", o)
                .status()
                .message()
                .find("items[0] (h100-bad): label nvidia.com/gpu.memory=\"80GB\" is not a whole "
                      "number"),
            std::string::npos);
  EXPECT_NE(error("not json").find("not JSON"), std::string::npos);
  EXPECT_NE(error("[]").find("expected a List of Nodes, not a JSON array"), std::string::npos);
  EXPECT_NE(error(R"({"kind":"PodList","items":[]})").find("kind=\"PodList\""), std::string::npos);
  EXPECT_NE(error(R"({"kind":"List","items":{}})").find("items must be a list"), std::string::npos);
  EXPECT_NE(error(R"({"kind":"List","items":[1]})").find("items[0] must be a Node object"),
            std::string::npos);
  EXPECT_NE(error(R"({"kind":"List","items":[{"metadata":{}}]})").find("metadata.name is missing"),
            std::string::npos);
  EXPECT_NE(error(R"({"kind":"List","items":[{"metadata":{"name":"a","labels":[]}}]})")
                .find("(a).metadata.labels must be an object"),
            std::string::npos);
  EXPECT_NE(error(R"({"kind":"List","items":[{"metadata":{"name":"a","labels":{"x":1}}}]})")
                .find("label \"x\" must be a string"),
            std::string::npos);
  const std::string gpu_node =
      R"({"metadata":{"name":"a","labels":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3"}},
          "status":{"allocatable":{"nvidia.com/gpu":"%s"}}%s})";
  auto with = [&](const std::string& count, const std::string& extra) {
    std::string t = gpu_node;
    t.replace(t.find("%s"), 2, count);
    t.replace(t.find("%s"), 2, extra);
    return R"({"kind":"List","items":[)" + t + "]}";
  };
  EXPECT_NE(error(with("-1", "")).find("allocatable[\"nvidia.com/gpu\"]=\"-1\""),
            std::string::npos);
  EXPECT_NE(
      error(with("8", R"(,"spec":{"unschedulable":"yes"})")).find("unschedulable must be true"),
      std::string::npos);
  EXPECT_NE(error(with("8", R"(,"spec":{"taints":"none"})")).find("taints must be a list"),
            std::string::npos);
  EXPECT_NE(error(with("8", "") + "]").find("not JSON"), std::string::npos);
  EXPECT_NE(
      error(
          R"({"kind":"List","items":[{"metadata":{"name":"a"},"status":{"allocatable":{"nvidia.com/gpu":"2"}}}]})")
          .find("no nvidia.com/gpu.product label"),
      std::string::npos);
  const std::string twice =
      R"({"kind":"List","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"a"}}]})";
  EXPECT_NE(error(twice).find("items[1] (a) repeats n.json: items[0]"), std::string::npos);
  EXPECT_NE(error(std::string(100, '[')).find("nests deeper"), std::string::npos);
  // No pool at all: named.
  KubernetesOptions no_pool = o;
  no_pool.pool.clear();
  auto pool = FromKubernetesNodes(Fixture("kubectl_nodes.json"), "n.json", no_pool);
  EXPECT_NE(pool.status().message().find("(l40s-b-0): no pool"), std::string::npos)
      << pool.status();
  // One Node object (kubectl get node NAME -o json) is read as a list of one.
  auto bare = FromKubernetesNodes(
      R"({"kind":"Node","metadata":{"name":"b","labels":{"nvidia.com/gpu.product":"NVIDIA-H100-80GB-HBM3"}},"status":{"allocatable":{"nvidia.com/gpu":"2"}}})",
      "n.json", o);
  ASSERT_TRUE(bare.ok()) << bare.status();
  EXPECT_EQ(bare->nodes.nodes(0).gpus_size(), 2);
}

TEST(NvidiaSmiImport, HgxNodeWithTopology) {
  NvidiaSmiOptions o{.node = "dgx-01",
                     .pool = "h100",
                     .zone = "dc1",
                     .labels = {{"rack", "r7"}},
                     .gpu_types = {.registered = {Type("H100-80GB", kH100)}}};
  auto in = FromNvidiaSmi(Fixture("nvidia_smi_h100.csv"), "gpus.csv", Fixture("topo_h100.txt"),
                          "topo.txt", o);
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->nodes.nodes_size(), 1);
  const v1::Node& n = in->nodes.nodes(0);
  EXPECT_EQ(n.name(), "dgx-01");
  EXPECT_EQ(n.zone(), "dc1");
  EXPECT_EQ(n.labels().at("rack"), "r7");
  EXPECT_EQ(n.labels().at("fleetplan.io/source"), "nvidia-smi");
  ASSERT_EQ(n.gpus_size(), 8);
  EXPECT_EQ(n.gpus(3).uuid(), "GPU-8f3a1c2e-5b6d-4e7f-9a0b-1c2d3e4f5a63");
  EXPECT_EQ(n.gpus(3).gpu_type(), "H100-80GB") << "the built-in table's alias";
  EXPECT_EQ(Domains(n), std::vector<int64_t>(8, 0));
  EXPECT_TRUE(in->new_gpu_types.empty());
  auto no_topo = FromNvidiaSmi(Fixture("nvidia_smi_h100.csv"), "gpus.csv", "", "", o);
  ASSERT_TRUE(no_topo.ok());
  EXPECT_EQ(Domains(no_topo->nodes.nodes(0)), std::vector<int64_t>(8, 0)) << "HBM3: SXM";
}

TEST(NvidiaSmiImport, PcieCardsWithBridgedPairsAndAHeader) {
  NvidiaSmiOptions o{.node = "ws-1", .pool = "lab", .gpu_types = {.create = true}};
  auto in = FromNvidiaSmi(Fixture("nvidia_smi_a6000_header.csv"), "gpus.csv",
                          Fixture("topo_a6000_pairs.txt"), "topo.txt", o);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(Domains(in->nodes.nodes(0)), (std::vector<int64_t>{0, 0, 1, 1}));
  ASSERT_EQ(in->new_gpu_types.size(), 1u);
  EXPECT_EQ(in->new_gpu_types[0].name(), "RTX-A6000");
  EXPECT_EQ(in->new_gpu_types[0].memory_bytes(), int64_t{49140 - 512} << 20);
  auto plain = FromNvidiaSmi(Fixture("nvidia_smi_a6000_header.csv"), "gpus.csv", "", "", o);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(Domains(plain->nodes.nodes(0)), (std::vector<int64_t>{0, 1, 2, 3}));
  o.gpu_types.create = false;
  auto unknown = FromNvidiaSmi(Fixture("nvidia_smi_a6000_header.csv"), "gpus.csv", "", "", o);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(unknown.status().message().find("\"NVIDIA RTX A6000\" (gpus.csv: line 2 (GPU 0)"),
            std::string::npos)
      << unknown.status();
}

TEST(NvidiaSmiImport, BadFilesGiveTheErrorTheyMust) {
  NvidiaSmiOptions o{.node = "n", .pool = "p", .gpu_types = {.create = true}};
  auto error = [&](const std::string& csv, const std::string& topo = "") {
    auto in = FromNvidiaSmi(csv, "gpus.csv", topo, "topo.txt", o);
    EXPECT_FALSE(in.ok());
    return std::string(in.status().message());
  };
  EXPECT_NE(error(Fixture("nvidia_smi_mig.csv"))
                .find("line 2: MIG-2c4e6a8b-1111-5222-9333-444455556666 is a MIG device"),
            std::string::npos);
  EXPECT_NE(error(Fixture("nvidia_smi_no_gpus.csv")).find("no GPUs (node n)"), std::string::npos);
  EXPECT_NE(error(Fixture("nvidia_smi_bad_memory.csv"))
                .find("line 1: memory.total (MiB)=\"[N/A]\" is not a whole number"),
            std::string::npos);
  EXPECT_NE(error("0, GPU-x, NVIDIA L40S\n").find("3 fields, expected 4"), std::string::npos);
  EXPECT_NE(error("x, GPU-x, NVIDIA L40S, 46068, 0\n").find("index=\"x\""), std::string::npos);
  EXPECT_NE(error("0, a, NVIDIA L40S, 46068, 0\n0, b, NVIDIA L40S, 46068, 0\n")
                .find("line 2: GPU index 0 repeats"),
            std::string::npos);
  EXPECT_NE(error("0, a, , 46068, 0\n").find("name=\"\""), std::string::npos);
  EXPECT_NE(error("index, uuid, memory.total [MiB]\n").find("no name column"), std::string::npos);
  // Found by inventory_fuzz: a name with nothing to name a GPU type after, a UUID with control
  // characters.
  EXPECT_NE(error("0, GPU-a, !!!!, 81559, 0\n").find("no letters or digits"), std::string::npos);
  EXPECT_NE(error("0, 'P\x7f\x7f, NVIDIA L40S, 46068, 0\n").find("is not a GPU UUID"),
            std::string::npos);
  // The topology must describe the same GPUs.
  EXPECT_NE(error(Fixture("nvidia_smi_a6000_header.csv"), Fixture("topo_h100.txt"))
                .find("topo.txt has 8 GPUs but gpus.csv lists 4"),
            std::string::npos);
  o.node.clear();
  EXPECT_NE(error(Fixture("nvidia_smi_h100.csv")).find("--name"), std::string::npos);
}

TEST(NvidiaTopology, ComponentsAndGarbage) {
  auto d = ParseNvidiaTopology(Fixture("topo_a6000_pairs.txt"), "t");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, (std::vector<int64_t>{0, 0, 1, 1}));
  // Links join transitively; domains are numbered by their lowest GPU.
  auto chain = ParseNvidiaTopology(
      "\tGPU0\tGPU1\tGPU2\n GPU0\t X\tSYS\tNV2\nGPU1\tSYS\t X\tSYS\nGPU2\tNV2\tSYS\t X\n", "t");
  ASSERT_TRUE(chain.ok()) << chain.status();
  EXPECT_EQ(*chain, (std::vector<int64_t>{0, 1, 0}));
  auto error = [](const std::string& text) {
    auto r = ParseNvidiaTopology(text, "t");
    EXPECT_FALSE(r.ok()) << text;
    return std::string(r.status().message());
  };
  EXPECT_NE(error("garbage\n").find("no GPU0 header"), std::string::npos);
  EXPECT_NE(error("\tGPU0\tGPU1\nGPU0\t X\tNVX\nGPU1\tNV1\t X\n").find("\"NVX\""),
            std::string::npos);
  EXPECT_NE(error("\tGPU0\tGPU1\nGPU0\t X\tNV1\n").find("no row for GPU1"), std::string::npos);
  EXPECT_NE(error("\tGPU0\tGPU1\nGPU0\t X\nGPU1\tNV1\t X\n").find("1 links, expected 2"),
            std::string::npos);
  EXPECT_NE(error("\tGPU0\nGPU0\t X\nGPU0\t X\n").find("repeats"), std::string::npos);
  EXPECT_NE(error("\tGPU0\nGPU9\t X\n").find("not one of the header's 1 GPUs"), std::string::npos);
}

v1::Node OwnedNode(const std::string& name, int gpus, int64_t committed_on_gpu0) {
  v1::Node n;
  n.set_name(name);
  n.set_pool("p");
  n.set_state(v1::NODE_STATE_ACTIVE);
  n.set_etag("7");
  (*n.mutable_labels())[kSourceLabel] = "kubernetes";
  for (int i = 0; i < gpus; ++i) {
    v1::Gpu* g = n.add_gpus();
    g->set_index(i);
    g->set_gpu_type("H100-80GB");
    if (i == gpus - 1) g->set_committed_bytes(committed_on_gpu0);
  }
  return n;
}

TEST(KubernetesReconcile, VanishedNodesGoDownButNothingHoldingPlacementsIsLost) {
  v1::ListNodesResponse owned;
  *owned.add_nodes() = OwnedNode("gone-idle", 8, 0);
  *owned.add_nodes() = OwnedNode("gone-busy", 8, int64_t{10} << 30);
  *owned.add_nodes() = OwnedNode("down-busy", 8, int64_t{10} << 30);
  *owned.add_nodes() = OwnedNode("lost-a-gpu", 8, int64_t{10} << 30);
  ImportedInventory now;
  v1::Node down = OwnedNode("down-busy", 8, 0);
  down.set_state(v1::NODE_STATE_DOWN);
  *now.nodes.add_nodes() = down;
  v1::Node fewer = OwnedNode("lost-a-gpu", 7, 0);  // GPU 7, which holds a placement, vanished
  *now.nodes.add_nodes() = fewer;
  Reconcile(owned, now);
  ASSERT_EQ(now.nodes.nodes_size(), 4);
  EXPECT_EQ(Find(now, "gone-idle")->state(), v1::NODE_STATE_DOWN);
  EXPECT_EQ(Find(now, "gone-idle")->etag(), "") << "an import, not an update";
  EXPECT_EQ(Find(now, "gone-busy")->state(), v1::NODE_STATE_CORDONED);
  EXPECT_EQ(Find(now, "gone-busy")->gpus(7).committed_bytes(), 0) << "usage is not inventory";
  EXPECT_EQ(Find(now, "down-busy")->state(), v1::NODE_STATE_CORDONED);
  const v1::Node* lost = Find(now, "lost-a-gpu");
  ASSERT_EQ(lost->gpus_size(), 8);
  EXPECT_FALSE(lost->gpus(7).healthy());
  EXPECT_TRUE(HasNote(now, "gone-busy is no longer in the cluster but holds placements"));
  EXPECT_TRUE(HasNote(now, "lost-a-gpu: gpu 7 holds placements"));
  // Reconciling twice adds nothing.
  ImportedInventory again = now;
  Reconcile(owned, again);
  EXPECT_EQ(again.nodes.nodes_size(), 4);
}

TEST(ProductNames, NormalizeAcrossTools) {
  EXPECT_EQ(NormalizedProduct("NVIDIA-H100-80GB-HBM3"), "h100-80gb-hbm3");
  EXPECT_EQ(NormalizedProduct("NVIDIA H100 80GB HBM3"), "h100-80gb-hbm3");
  EXPECT_EQ(NormalizedProduct("  Tesla  T4 "), "tesla-t4");
  EXPECT_EQ(NormalizedProduct(""), "");
  // One rule: the importers and --gpu (FindGpu) read a product name the same way.
  for (const char* spelling :
       {"NVIDIA-H100-80GB-HBM3", "NVIDIA H100 80GB HBM3", "h100_80gb_hbm3"}) {
    auto gpu = estimator::FindGpu(spelling);
    ASSERT_TRUE(gpu.ok()) << spelling;
    EXPECT_EQ(gpu->name, std::string("H100-80GB")) << spelling;
    EXPECT_EQ(NormalizedProduct(spelling), estimator::NormalizedGpuName(spelling));
  }
  EXPECT_FALSE(ParseNvlinkRule("sometimes").ok());
}

}  // namespace
}  // namespace fleetplan::cli
