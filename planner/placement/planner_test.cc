#include "planner/placement/planner.h"

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "planner/common/limits.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/inverse.h"
#include "planner/estimator/llama_cpp.h"
#include "planner/estimator/vllm.h"
#include "planner/placement/candidates.h"

namespace fleetplan::placement {
namespace {

const estimator::ModelSpec& Model(const std::string& slug) {
  static auto* cache = new std::map<std::string, estimator::ModelSpec>();
  auto it = cache->find(slug);
  if (it != cache->end()) return it->second;
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/" + slug + ".json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto spec = estimator::ParseModelConfig(ss.str());
  EXPECT_TRUE(spec.ok()) << slug;
  return cache->emplace(slug, *spec).first->second;
}

constexpr int64_t kH100 = 85017493504;

Node MakeNode(const std::string& name, int64_t gpus, const std::string& type, int64_t domain,
              const std::string& pool = "p", const std::string& zone = "z") {
  Node n{.name = name, .pool = pool, .zone = zone};
  for (int64_t i = 0; i < gpus; ++i)
    n.gpus.push_back(Gpu{.index = i, .gpu_type = type, .nvlink_domain = i / domain});
  return n;
}

FleetSnapshot Fleet(std::vector<Node> nodes) {
  FleetSnapshot s{
      .generation = 5,
      .gpu_types = {GpuType{.name = "A100-40GB", .memory_bytes = 42505273344, .cost_per_hour = 1.2},
                    GpuType{.name = "H100", .memory_bytes = kH100, .cost_per_hour = 2.5},
                    GpuType{.name = "L4", .memory_bytes = 23654252544, .cost_per_hour = 0.7}}};
  std::sort(nodes.begin(), nodes.end(),
            [](const Node& a, const Node& b) { return a.name < b.name; });
  s.nodes = nodes;
  return s;
}

DeploymentSpec Dep(const std::string& name, const std::string& slug, int64_t replicas = 1,
                   int64_t concurrency = 8, int64_t context = 8192) {
  return DeploymentSpec{.name = name,
                        .model = slug,
                        .spec = &Model(slug),
                        .vllm = {.max_model_len = context},
                        .concurrency = concurrency,
                        .context_tokens = context,
                        .replicas = replicas};
}

TEST(PlannerTest, PlacesASmallModelOnOneGpuWithLaunchLine) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  auto plan = PlanPlacement(s, {{Dep("chat", "llama-3.1-8b-instruct")}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->replicas.size(), 1u);
  const ReplicaPlacement& r = plan->replicas[0];
  EXPECT_EQ(r.tp, 1);
  ASSERT_EQ(r.ranks.size(), 1u);
  EXPECT_GT(r.ranks[0].bytes, 16 * kGiB);
  EXPECT_LT(r.ranks[0].bytes, 40 * kGiB);
  EXPECT_NE(r.launch_command.find("--gpu-memory-utilization 0."), std::string::npos)
      << r.launch_command;
  EXPECT_NE(r.launch_command.find("--max-model-len 8192"), std::string::npos);
  ASSERT_EQ(r.cuda_visible_devices.size(), 1u);
  EXPECT_EQ(r.cuda_visible_devices[0], "n1:0");
  EXPECT_EQ(plan->gpus_used, 1);
  EXPECT_EQ(plan->lower_bound_gpus, 1);
  EXPECT_EQ(plan->gap, 0);
  EXPECT_EQ(plan->snapshot_generation, 5);
}

TEST(PlannerTest, LargeModelGetsTensorParallelInsideOneDomain) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 4), MakeNode("n2", 8, "H100", 4)});
  auto plan = PlanPlacement(s, {{Dep("big", "llama-3.3-70b-instruct-fp8-dynamic", 2, 32)}});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->replicas.size(), 2u);
  for (const auto& r : plan->replicas) {
    EXPECT_GE(r.tp, 2);
    std::set<int64_t> domains;
    for (const auto& rank : r.ranks)
      domains.insert(rank.gpu.index / 4 + (rank.gpu.node == "n2" ? 100 : 0));
    EXPECT_EQ(domains.size(), 1u) << "a TP group stays in one NVLink domain";
  }
}

TEST(PlannerTest, ImpossibleAndExhaustedAreDistinguished) {
  // 70B on single-L4 nodes can never fit: FAILED_PRECONDITION with the reason.
  FleetSnapshot l4 = Fleet({MakeNode("e1", 1, "L4", 1), MakeNode("e2", 1, "L4", 1)});
  auto never = PlanPlacement(l4, {{Dep("big", "llama-3.3-70b-instruct-fp8-dynamic")}});
  ASSERT_TRUE(never.ok());
  ASSERT_EQ(never->unplaced.size(), 1u);
  EXPECT_FALSE(never->unplaced[0].retryable());
  EXPECT_NE(Describe(never->unplaced[0]).find("needs tp >="), std::string::npos)
      << Describe(never->unplaced[0]);
  // A fleet with the right shape but busy GPUs: RESOURCE_EXHAUSTED.
  FleetSnapshot busy = Fleet({MakeNode("n1", 8, "H100", 8)});
  for (int i = 0; i < 7; ++i)
    busy.nodes.Mutable(0).gpus[static_cast<size_t>(i)].committed_bytes = 50 * kGiB;
  auto later = PlanPlacement(busy, {{Dep("big", "llama-3.3-70b-instruct-fp8-dynamic")}});
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->unplaced.size(), 1u);
  EXPECT_TRUE(later->unplaced[0].retryable());
  EXPECT_NE(Describe(later->unplaced[0]).find("largest free NVLink domain"), std::string::npos)
      << Describe(later->unplaced[0]);
}

TEST(PlannerTest, SpreadAndSharedAndFilters) {
  FleetSnapshot s =
      Fleet({MakeNode("a", 8, "H100", 8, "p1", "z1"), MakeNode("b", 8, "H100", 8, "p1", "z2"),
             MakeNode("c", 4, "A100-40GB", 4, "p2", "z1")});
  DeploymentSpec spread = Dep("spread", "qwen2.5-0.5b", 2, 4, 4096);
  spread.spread = Spread::kNodes;
  spread.gpu_types = {"H100"};
  auto p = PlanPlacement(s, {{spread}});
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->replicas.size(), 2u);
  EXPECT_NE(p->replicas[0].ranks[0].gpu.node, p->replicas[1].ranks[0].gpu.node);

  DeploymentSpec shared = Dep("shared", "qwen2.5-0.5b", 3, 2, 2048);
  shared.shared = true;
  shared.pools = {"p2"};
  auto sp = PlanPlacement(s, {{shared}});
  ASSERT_TRUE(sp.ok());
  ASSERT_EQ(sp->replicas.size(), 3u);
  std::set<GpuRef> gpus;
  for (const auto& r : sp->replicas) {
    EXPECT_EQ(r.gpu_type, "A100-40GB");
    gpus.insert(r.ranks[0].gpu);
  }
  EXPECT_EQ(gpus.size(), 1u) << "shared replicas pack onto one GPU";

  DeploymentSpec bad = Dep("bad", "qwen2.5-0.5b");
  bad.gpu_types = {"TPU"};
  EXPECT_EQ(PlanPlacement(s, {{bad}}).status().code(), absl::StatusCode::kInvalidArgument);
  DeploymentSpec zero = Dep("zero", "qwen2.5-0.5b");
  zero.concurrency = 0;
  auto z = PlanPlacement(s, {{zero}});
  EXPECT_NE(z.status().message().find("concurrency=0"), std::string::npos) << z.status();
  EXPECT_EQ(
      PlanPlacement(s, {{Dep("d", "qwen2.5-0.5b"), Dep("d", "qwen2.5-0.5b")}}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(PlannerTest, PipelineWhenDomainsAreTooSmall) {
  // Domains of 2 A100-40GB: a 70B FP8 model (~68 GiB of weights) needs 4+ GPUs -> tp 2 x pp 2+.
  FleetSnapshot s = Fleet({MakeNode("a", 4, "A100-40GB", 2), MakeNode("b", 4, "A100-40GB", 2)});
  auto p = PlanPlacement(s, {{Dep("big", "llama-3.3-70b-instruct-fp8-dynamic", 1, 4, 4096)}});
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->replicas.size(), 1u) << (p->unplaced.empty() ? "" : Describe(p->unplaced[0]));
  EXPECT_GE(p->replicas[0].pp, 2);
  EXPECT_LE(p->replicas[0].tp, 2);
  // Ranks differ by stage: the first holds the embedding, the last the lm_head.
  EXPECT_NE(p->replicas[0].ranks.front().bytes, p->replicas[0].ranks.back().bytes);
}

// ---- Invariants on random fleets, for every strategy ------------------------------------------

struct Instance {
  FleetSnapshot snapshot;
  PlacementRequest request;
};

Instance RandomInstance(uint64_t seed, int64_t max_gpus, int64_t max_replicas = 2) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> types = {"H100", "A100-40GB"};
  std::vector<Node> nodes;
  int64_t gpus = 0;
  for (int i = 0; gpus < max_gpus; ++i) {
    // One draw per statement: the order of draws inside one call's arguments is unspecified
    // (gcc and clang differ), and the instances must be the same with every compiler.
    const int64_t n = rng() % 2 ? 8 : 4;
    if (gpus + n > max_gpus) break;
    const std::string type = types[rng() % types.size()];
    const int64_t domain = rng() % 2 ? n : n / 2;
    // absl::StrCat, not "n" + std::to_string(i): GCC 12 at -O3 reports a false -Wrestrict in
    // operator+(const char*, std::string&&) (GCC bug 105329), which -Werror turns into a failure.
    Node node = MakeNode(absl::StrCat("n", i), n, type, domain, absl::StrCat("p", i % 2),
                         absl::StrCat("z", i % 3));
    if (rng() % 5 == 0) node.gpus[0].committed_bytes = 20 * kGiB;  // existing placements
    nodes.push_back(node);
    gpus += n;
  }
  Instance inst{Fleet(nodes), {}};
  const std::vector<std::string> models = {"qwen2.5-0.5b",
                                           "llama-3.1-8b-instruct",
                                           "qwen2.5-7b-instruct",
                                           "mixtral-8x7b-v0.1-4l",
                                           "qwen1.5-moe-a2.7b",
                                           "granite-3.1-2b-instruct",
                                           "llama-3.3-70b-instruct-fp8-dynamic",
                                           "deepseek-v2-lite"};
  const int64_t deployments = 5 + static_cast<int64_t>(rng() % 16);
  for (int64_t d = 0; d < deployments; ++d) {
    const std::string& model = models[rng() % models.size()];
    const int64_t replicas = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(max_replicas));
    const int64_t concurrency = 1 + static_cast<int64_t>(rng() % 32);
    const int64_t context = 2048 * (1 + static_cast<int64_t>(rng() % 4));
    DeploymentSpec dep = Dep(absl::StrCat("d", d), model, replicas, concurrency, context);
    if (rng() % 6 == 0) dep.spread = Spread::kNodes;
    inst.request.deployments.push_back(dep);
  }
  return inst;
}

void CheckInvariants(const Instance& inst, const Plan& plan, const std::string& label) {
  const FleetSnapshot& s = inst.snapshot;
  std::map<GpuRef, int64_t> used;
  std::map<GpuRef, int64_t> owners;
  std::map<std::string, std::set<std::string>> nodes_of;
  for (const ReplicaPlacement& r : plan.replicas) {
    const DeploymentSpec* d = nullptr;
    for (const auto& dep : inst.request.deployments) {
      if (dep.name == r.deployment) d = &dep;
    }
    ASSERT_NE(d, nullptr);
    ASSERT_EQ(static_cast<int64_t>(r.ranks.size()), r.tp * r.pp) << label;
    // Per-rank bytes are the estimator's: the high end of the band FitVllm gives this parallelism.
    const GpuType& type = *s.FindGpuType(r.gpu_type);
    auto fit = estimator::FitVllm(*d->spec, VllmRequestFor(*d, type, r.tp, r.pp, r.ep));
    ASSERT_TRUE(fit.ok());
    ASSERT_TRUE(fit->fits) << label;
    for (int64_t stage = 0; stage < r.pp; ++stage) {
      std::set<std::pair<std::string, int64_t>> domains;
      for (int64_t t = 0; t < r.tp; ++t) {
        const PlacementRank& rank = r.ranks[static_cast<size_t>(stage * r.tp + t)];
        const Node* n = s.FindNode(rank.gpu.node);
        ASSERT_NE(n, nullptr);
        const Gpu& g = n->gpus[static_cast<size_t>(rank.gpu.index)];
        EXPECT_EQ(g.gpu_type, r.gpu_type) << label;
        domains.insert({n->name, g.nvlink_domain});
        used[rank.gpu] += rank.bytes;
        ++owners[rank.gpu];
        nodes_of[r.deployment].insert(n->name);
        EXPECT_EQ(rank.bytes, fit->estimate.stages[static_cast<size_t>(stage)].high_bytes) << label;
      }
      EXPECT_EQ(domains.size(), 1u) << label << ": TP group across NVLink domains";
    }
  }
  for (const auto& [ref, bytes] : used) {
    const Node* n = s.FindNode(ref.node);
    const Gpu& g = n->gpus[static_cast<size_t>(ref.index)];
    const int64_t memory = s.FindGpuType(g.gpu_type)->memory_bytes;
    EXPECT_LE(bytes + g.committed_bytes + g.reserved_bytes, memory)
        << label << ": over-committed " << ref.node << "/" << ref.index;
    EXPECT_EQ(owners[ref], 1) << label << ": exclusive GPU shared";
    EXPECT_EQ(g.committed_bytes + g.reserved_bytes, 0)
        << label << ": exclusive replica on a used GPU";
  }
  for (const auto& dep : inst.request.deployments) {
    if (dep.spread != Spread::kNodes) continue;
    int64_t placed = 0;
    for (const auto& r : plan.replicas) placed += r.deployment == dep.name ? 1 : 0;
    EXPECT_GE(static_cast<int64_t>(nodes_of[dep.name].size()), placed > 0 ? placed : 0)
        << label << ": spread";
  }
  EXPECT_GE(plan.gap, 0) << label;
  EXPECT_EQ(plan.replicas.size() + plan.unplaced.size(), [&] {
    size_t n = 0;
    for (const auto& d : inst.request.deployments) n += static_cast<size_t>(d.replicas);
    return n;
  }());
}

TEST(PlannerInvariantTest, EveryStrategyOnRandomFleets) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    Instance inst = RandomInstance(seed, 64);
    for (Strategy strategy : {Strategy::kPack, Strategy::kSpread, Strategy::kExact}) {
      const std::string label =
          absl::StrCat("seed ", seed, " strategy ", static_cast<int>(strategy));
      auto a = PlanPlacement(inst.snapshot, inst.request, {.strategy = strategy});
      ASSERT_TRUE(a.ok()) << label << ": " << a.status();
      CheckInvariants(inst, *a, label);
      auto b = PlanPlacement(inst.snapshot, inst.request, {.strategy = strategy});
      ASSERT_TRUE(b.ok());
      ASSERT_EQ(a->replicas.size(), b->replicas.size()) << label << ": not deterministic";
      for (size_t i = 0; i < a->replicas.size(); ++i) {
        ASSERT_EQ(a->replicas[i].ranks.size(), b->replicas[i].ranks.size());
        for (size_t k = 0; k < a->replicas[i].ranks.size(); ++k) {
          EXPECT_EQ(a->replicas[i].ranks[k].gpu, b->replicas[i].ranks[k].gpu)
              << label << ": not deterministic";
        }
      }
    }
  }
}

// ---- Quality against the CBC optimum ---------------------------------------------------------

TEST(PlannerQualityTest, PackIsCloseToTheOptimum) {
  // Small fleets (<= 32-64 GPUs) with enough demand that capacity binds in many instances. Two
  // measures: the greedy passes alone (repair off), and pack as users get it (with the exact
  // repair when replicas are left unplaced).
  struct Tally {
    std::vector<double> excess;
    int compared = 0, fewer_placed = 0;
  };
  Tally greedy, pack;
  int tight = 0;
  auto tally = [](Tally& t, const Plan& p, const Plan& exact) {
    if (p.unplaced.size() > exact.unplaced.size()) {
      ++t.fewer_placed;
      return;
    }
    if (exact.gpus_used == 0) return;
    ++t.compared;
    t.excess.push_back(static_cast<double>(p.gpus_used - exact.gpus_used) /
                       static_cast<double>(exact.gpus_used));
  };
  for (uint64_t seed = 1000; seed < 1120; ++seed) {
    Instance inst = RandomInstance(seed, seed % 2 ? 32 : 64, 4);
    auto g = PlanPlacement(inst.snapshot, inst.request,
                           {.strategy = Strategy::kPack, .repair_max_variables = 0});
    // The clocks are set out of reach so that only the node budgets bind: the figures must not
    // depend on how loaded the machine is (a 0.5 s repair clock failed this under ASan in CI).
    auto p = PlanPlacement(inst.snapshot, inst.request,
                           {.strategy = Strategy::kPack, .repair_time_limit_seconds = 600});
    auto exact = PlanPlacement(inst.snapshot, inst.request,
                               {.strategy = Strategy::kExact, .exact_time_limit_seconds = 600});
    ASSERT_TRUE(g.ok() && p.ok() && exact.ok());
    ASSERT_EQ(exact->strategy_used, "exact") << seed;
    if (!exact->unplaced.empty()) ++tight;
    // The ILP maximises placed replicas first.
    EXPECT_LE(exact->unplaced.size(), g->unplaced.size()) << seed;
    EXPECT_EQ(p->unplaced.size(), exact->unplaced.size()) << seed << ": repaired pack places all";
    tally(greedy, *g, *exact);
    tally(pack, *p, *exact);
  }
  auto report = [](const char* what, const Tally& t) {
    double sum = 0, worst = 0;
    for (double e : t.excess) {
      sum += e;
      worst = std::max(worst, e);
    }
    const double mean = t.excess.empty() ? 0 : sum / static_cast<double>(t.excess.size());
    std::printf(
        "%s vs CBC optimum: %d compared, %d placed fewer replicas: mean GPU excess %.3f%%, "
        "max %.2f%%\n",
        what, t.compared, t.fewer_placed, 100 * mean, 100 * worst);
    return std::pair(mean, worst);
  };
  std::printf("%d of 120 instances capacity-tight\n", tight);
  const auto [greedy_mean, greedy_worst] = report("greedy passes", greedy);
  const auto [pack_mean, pack_worst] = report("pack (with repair)", pack);
  EXPECT_GE(tight, 20) << "the instances should exercise capacity";
  // The greedy passes alone placed fewer than the optimum in 10 of 120 instances (2026-12): a
  // regression bound, not a goal (the repair closes them).
  EXPECT_LE(greedy.fewer_placed, 12);
  EXPECT_LE(greedy_mean, 0.02);
  EXPECT_LE(greedy_worst, 0.10);
  EXPECT_EQ(pack.fewer_placed, 0);
  EXPECT_LE(pack_mean, 0.02);
  EXPECT_LE(pack_worst, 0.10);
}

}  // namespace
}  // namespace fleetplan::placement

namespace fleetplan::placement {
namespace {

// ---- One rule, one place: the planner asks the estimator, it does not restate it -------------

// A deployment on another vLLM version is planned with that version's semantics (its launch line
// and KV capacity are FitVllm's at that version), and its band is the wider one.
TEST(OneRuleTest, DeploymentsCarryTheirVllmVersion) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  DeploymentSpec now{.name = "now",
                     .model = "llama-3.1-8b-instruct",
                     .spec = &Model("llama-3.1-8b-instruct"),
                     .concurrency = 16,
                     .context_tokens = 8192};
  DeploymentSpec old = now;
  old.name = "old";
  old.vllm.version = "0.7.3";
  auto a = PlanPlacement(s, {{now}});
  auto b = PlanPlacement(s, {{old}});
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->replicas.size(), 1u);
  ASSERT_EQ(b->replicas.size(), 1u);
  auto fit = estimator::FitVllm(*old.spec, VllmRequestFor(old, *s.FindGpuType("H100"), 1, 1, 1));
  ASSERT_TRUE(fit.ok());
  EXPECT_EQ(b->replicas[0].ranks[0].bytes, fit->estimate.stages[0].high_bytes);
  EXPECT_EQ(b->replicas[0].gpu_memory_utilization, fit->gpu_memory_utilization);
  EXPECT_GT(b->replicas[0].gpu_memory_utilization, a->replicas[0].gpu_memory_utilization)
      << "V0's larger profile peak and the wider band need more of the GPU";
}

// LoRA slots (vLLM --enable-lora) are weights on every rank: a deployment that fits one GPU
// without them needs two with 64 slots of rank 256, and the plan reserves what the estimate says.
TEST(OneRuleTest, LoraSlotsAreReserved) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  DeploymentSpec plain{.name = "plain",
                       .model = "llama-3.1-8b-instruct",
                       .spec = &Model("llama-3.1-8b-instruct"),
                       .concurrency = 8,
                       .context_tokens = 8192};
  DeploymentSpec lora = plain;
  lora.name = "lora";
  lora.vllm.enable_lora = true;
  lora.vllm.max_loras = 64;
  lora.vllm.max_lora_rank = 256;
  auto a = PlanPlacement(s, {{plain}});
  auto b = PlanPlacement(s, {{lora}});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  ASSERT_EQ(a->replicas.size(), 1u);
  ASSERT_EQ(b->replicas.size(), 1u);
  EXPECT_EQ(a->replicas[0].tp * a->replicas[0].pp, 1);
  EXPECT_GT(b->replicas[0].tp * b->replicas[0].pp, 1)
      << "64 x rank-256 slots (~80 GiB at tp 1) do not fit one GPU beside the model";
  const ReplicaPlacement& r = b->replicas[0];
  auto fit = estimator::FitVllm(*lora.spec,
                                VllmRequestFor(lora, *s.FindGpuType("H100"), r.tp, r.pp, r.ep));
  ASSERT_TRUE(fit.ok());
  EXPECT_EQ(r.ranks[0].bytes, fit->estimate.stages[0].high_bytes);
  EXPECT_NE(r.launch_command.find("--enable-lora --max-loras 64 --max-lora-rank 256"),
            std::string::npos)
      << r.launch_command;
}

// An embedding model (a bidirectional encoder) has no KV cache: four replicas of bge-m3 go on four
// L4s, each reserving what the estimate says (a few GiB, not a KV pool up to the utilization),
// and an SGLang deployment of it is refused by name (not modelled) rather than guessed.
TEST(OneRuleTest, EncodersReserveNoKvCache) {
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/../models/bge-m3.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto spec = estimator::ParseModelConfig(ss.str());
  ASSERT_TRUE(spec.ok()) << spec.status();
  FleetSnapshot s = Fleet({MakeNode("n1", 4, "L4", 4)});
  DeploymentSpec embed{.name = "embed",
                       .model = "BAAI/bge-m3",
                       .spec = &*spec,
                       .concurrency = 64,
                       .context_tokens = 512,
                       .replicas = 4};
  auto plan = PlanPlacement(s, {{embed}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->replicas.size(), 4u);
  const ReplicaPlacement& r = plan->replicas[0];
  EXPECT_EQ(r.tp, 1);
  auto fit = estimator::FitVllm(*spec, VllmRequestFor(embed, *s.FindGpuType("L4"), 1, 1, 1));
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_TRUE(fit->estimate.encoder_only);
  EXPECT_EQ(r.ranks[0].bytes, fit->estimate.stages[0].high_bytes);
  EXPECT_LT(r.ranks[0].bytes, 6 * kGiB);
  EXPECT_NE(r.launch_command.find("vllm serve BAAI/bge-m3"), std::string::npos) << r.launch_command;
  DeploymentSpec sglang = embed;
  sglang.engine = estimator::Engine::kSglang;
  auto refused = PlanPlacement(s, {{sglang}});
  if (refused.ok()) {
    EXPECT_TRUE(refused->replicas.empty());
    ASSERT_FALSE(refused->unplaced.empty());
    EXPECT_NE(Describe(refused->unplaced[0]).find("bidirectional encoder"), std::string::npos)
        << Describe(refused->unplaced[0]);
  } else {
    EXPECT_NE(refused.status().message().find("bidirectional encoder"), std::string::npos)
        << refused.status();
  }
}

// SGLang's adapter pool (--enable-lora) is taken before its KV pool: a deployment one GPU holds
// without it needs more with 32 slots of rank 256, and the plan reserves what the estimate says.
TEST(OneRuleTest, SglangLoraPoolIsReserved) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  DeploymentSpec plain{.name = "plain",
                       .model = "llama-3.1-8b-instruct",
                       .spec = &Model("llama-3.1-8b-instruct"),
                       .engine = estimator::Engine::kSglang,
                       .concurrency = 8,
                       .context_tokens = 8192};
  plain.sglang.context_length = 8192;
  DeploymentSpec lora = plain;
  lora.name = "lora";
  lora.sglang.enable_lora = true;
  lora.sglang.max_loras_per_batch = 32;
  lora.sglang.max_lora_rank = 256;
  auto a = PlanPlacement(s, {{plain}});
  auto b = PlanPlacement(s, {{lora}});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  ASSERT_EQ(a->replicas.size(), 1u);
  ASSERT_EQ(b->replicas.size(), 1u);
  EXPECT_EQ(a->replicas[0].tp * a->replicas[0].pp, 1);
  EXPECT_GT(b->replicas[0].tp * b->replicas[0].pp, 1)
      << "32 x rank-256 slots (~40 GiB at tp 1) leave one GPU's pool too small";
  const ReplicaPlacement& r = b->replicas[0];
  auto est = estimator::Estimate(*lora.spec,
                                 VllmRequestFor(lora, *s.FindGpuType("H100"), r.tp, r.pp, r.ep));
  ASSERT_TRUE(est.ok()) << est.status();
  EXPECT_EQ(r.ranks[0].bytes, est->stages[0].high_bytes);
  EXPECT_NE(r.launch_command.find("--enable-lora --max-loras-per-batch 32 --max-lora-rank 256"),
            std::string::npos)
      << r.launch_command;
}

// A draft model (speculative decoding) shares every rank's budget: the plan reserves the estimate
// with it, and a deployment that one GPU holds without it needs more with a large draft.
TEST(OneRuleTest, DraftModelIsReserved) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  DeploymentSpec plain{.name = "plain",
                       .model = "qwen2.5-7b-instruct",
                       .spec = &Model("qwen2.5-7b-instruct"),
                       .concurrency = 64,
                       .context_tokens = 8192};
  DeploymentSpec spec = plain;
  spec.name = "spec";
  spec.vllm.draft = &Model("llama-3.1-8b-instruct");  // a heavy draft: 15 GiB more per GPU
  spec.vllm.draft_model = "draft";
  spec.vllm.num_speculative_tokens = 4;
  auto a = PlanPlacement(s, {{plain}});
  auto b = PlanPlacement(s, {{spec}});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  ASSERT_EQ(a->replicas.size(), 1u);
  ASSERT_EQ(b->replicas.size(), 1u);
  EXPECT_EQ(a->replicas[0].tp, 1);
  EXPECT_GT(b->replicas[0].tp, 1) << "the draft's weights and KV leave too little on one GPU";
  const ReplicaPlacement& r = b->replicas[0];
  auto fit = estimator::FitVllm(*spec.spec,
                                VllmRequestFor(spec, *s.FindGpuType("H100"), r.tp, r.pp, r.ep));
  ASSERT_TRUE(fit.ok());
  EXPECT_EQ(r.ranks[0].bytes, fit->estimate.stages[0].high_bytes);
  EXPECT_NE(r.launch_command.find("--speculative-config"), std::string::npos) << r.launch_command;
}

// The model's own MTP layers (vllm.speculative_method mtp) are reserved like a draft: a deployment
// that fits without them needs more GPUs with them, and the launch line asks for them.
TEST(OneRuleTest, MtpLayersAreReserved) {
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/../models/glm-4.5-air.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto glm = estimator::ParseModelConfig(ss.str());
  ASSERT_TRUE(glm.ok()) << glm.status();
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  DeploymentSpec plain{.name = "plain",
                       .model = "zai-org/GLM-4.5-Air",
                       .spec = &*glm,
                       .concurrency = 8,
                       .context_tokens = 8192};
  DeploymentSpec mtp = plain;
  mtp.name = "mtp";
  mtp.vllm.speculative_method = estimator::SpeculativeMethod::kMtp;
  mtp.vllm.num_speculative_tokens = 1;
  auto a = PlanPlacement(s, {{plain}});
  auto b = PlanPlacement(s, {{mtp}});
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  ASSERT_EQ(a->replicas.size(), 1u);
  ASSERT_EQ(b->replicas.size(), 1u);
  const ReplicaPlacement& r = b->replicas[0];
  auto fit =
      estimator::FitVllm(*mtp.spec, VllmRequestFor(mtp, *s.FindGpuType("H100"), r.tp, r.pp, r.ep));
  ASSERT_TRUE(fit.ok());
  EXPECT_EQ(r.ranks[0].bytes, fit->estimate.stages[0].high_bytes);
  // GLM-4.5-Air holds 8 sequences of 8192 tokens on 4 H100s; with its MTP layer (1.46 GiB a rank)
  // and the drafter's wider band, the low end of the KV pool holds 2 of them: 8 GPUs.
  EXPECT_EQ(a->replicas[0].tp, 4);
  EXPECT_GT(r.tp, 4);
  EXPECT_NE(r.launch_command.find(R"("method":"mtp")"), std::string::npos) << r.launch_command;
}

// An SGLang deployment is planned by SGLang's rule: each rank reserves the high end of its
// estimate, the replica is launched with sglang.launch_server, and it never shares a GPU.
TEST(OneRuleTest, SglangDeploymentsAreSglangs) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  DeploymentSpec d{.name = "sg",
                   .model = "llama-3.1-8b-instruct",
                   .spec = &Model("llama-3.1-8b-instruct"),
                   .engine = estimator::Engine::kSglang,
                   .concurrency = 16,
                   .context_tokens = 8192};
  auto plan = PlanPlacement(s, {{d}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->replicas.size(), 1u);
  const ReplicaPlacement& r = plan->replicas[0];
  estimator::EstimateRequest req = VllmRequestFor(d, *s.FindGpuType("H100"), r.tp, r.pp, r.ep);
  ASSERT_EQ(req.engine, estimator::Engine::kSglang);
  auto est = estimator::Estimate(*d.spec, req);
  ASSERT_TRUE(est.ok());
  EXPECT_EQ(r.ranks[0].bytes, est->stages[0].high_bytes);
  EXPECT_EQ(r.launch_command.rfind("python -m sglang.launch_server --model-path llama-3.1-8b", 0),
            0u)
      << r.launch_command;
  d.shared = true;
  auto shared = PlanPlacement(s, {{d}});
  ASSERT_FALSE(shared.ok());
  EXPECT_NE(shared.status().message().find("cannot share GPUs"), std::string::npos);
  d.shared = false;
  d.engine = estimator::Engine::kOpenvino;
  auto openvino = PlanPlacement(s, {{d}});
  ASSERT_FALSE(openvino.ok());
  EXPECT_NE(openvino.status().message().find("engine=openvino is not placed"), std::string::npos);
}

// A llama.cpp deployment is planned from the GGUF its file type names (gguf_convert.h): one
// llama-server over GPUs of one NVLink domain, each reserving the fullest GPU's high end of
// llama.cpp's own estimate, every layer on the GPUs unless the deployment pins -ngl; the rest
// then runs on the CPU and its host memory is reported. No file type is refused by name.
TEST(OneRuleTest, LlamaCppDeploymentsAreLlamaCpps) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "L4", 8), MakeNode("n2", 8, "L4", 8)});
  DeploymentSpec d{.name = "ll",
                   .model = "llama-3.3-70b-instruct-fp8-dynamic",
                   .spec = &Model("llama-3.3-70b-instruct-fp8-dynamic"),
                   .engine = estimator::Engine::kLlamaCpp,
                   .concurrency = 2,
                   .context_tokens = 8192};
  d.llama_cpp.file_type = "q4_K_M";
  auto plan = PlanPlacement(s, {{d}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->replicas.size(), 1u);
  const ReplicaPlacement& r = plan->replicas[0];
  EXPECT_GT(r.tp, 1) << "a 70B q4_K_M (40 GiB) needs more than one 22 GiB L4";
  EXPECT_EQ(r.pp, 1);
  estimator::EstimateRequest req = VllmRequestFor(d, *s.FindGpuType("L4"), r.tp, 1, 1);
  EXPECT_EQ(req.parallelism.pp, r.tp);
  auto est = estimator::EstimateLlamaCppFromModel(*d.spec, req);
  ASSERT_TRUE(est.ok()) << est.status();
  EXPECT_EQ(est->gpu_layers, 80) << "every layer on the GPUs";
  for (const PlacementRank& rank : r.ranks) {
    EXPECT_EQ(rank.gpu.node, r.ranks[0].gpu.node) << "one llama-server, one node";
    EXPECT_EQ(rank.bytes, est->memory.max_high_bytes);
  }
  EXPECT_EQ(r.launch_command.rfind(
                "llama-server -m llama-3.3-70b-instruct-fp8-dynamic-q4_K_M.gguf -c 16384 -np 2 "
                "-ngl 81",
                0),
            0u)
      << r.launch_command;
  // A pinned -ngl keeps the rest on the CPU: fewer GPU bytes, host bytes reported.
  d.llama_cpp.n_gpu_layers = 30;
  auto offload = PlanPlacement(s, {{d}});
  ASSERT_TRUE(offload.ok()) << offload.status();
  ASSERT_EQ(offload->replicas.size(), 1u);
  EXPECT_GT(offload->replicas[0].host_bytes, 20 * kGiB);
  EXPECT_EQ(r.host_bytes < offload->replicas[0].host_bytes, true);
  d.llama_cpp.file_type = "";
  auto untyped = PlanPlacement(s, {{d}});
  ASSERT_FALSE(untyped.ok());
  EXPECT_NE(untyped.status().message().find("llama_cpp.file_type"), std::string::npos)
      << untyped.status();
}

TEST(OneRuleTest, SlidingWindowKvIsWhatEstimateSays) {
  // Gemma-3-4B: sliding window on 5 of 6 layers. 32 sequences x 32k tokens.
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  DeploymentSpec d{.name = "g",
                   .model = "gemma-3-4b-it",
                   .spec = &Model("gemma-3-4b-it"),
                   .concurrency = 32,
                   .context_tokens = 32768};
  auto plan = PlanPlacement(s, {{d}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->replicas.size(), 1u);
  const ReplicaPlacement& r = plan->replicas[0];
  EXPECT_EQ(r.tp, 1) << "one H100 holds it once sliding layers keep only their window";
  // What the replica reserves is the estimate at its own utilization, which holds the workload.
  estimator::EstimateRequest req = VllmRequestFor(d, *s.FindGpuType("H100"), r.tp, r.pp, r.ep);
  req.vllm.max_model_len = d.context_tokens;
  req.vllm.gpu_memory_utilization = r.gpu_memory_utilization;
  auto at = estimator::Estimate(*d.spec, req);
  ASSERT_TRUE(at.ok());
  EXPECT_TRUE(at->fits) << at->reason;
  EXPECT_GE(at->max_concurrency_low, 32) << "the pool's low end holds the workload";
  EXPECT_EQ(r.ranks[0].bytes, at->stages[0].high_bytes);
  EXPECT_EQ(r.kv_cache_tokens, at->kv_cache_tokens_low);
  // ... and the KV it takes for the workload is the estimator's per-sequence blocks x 32: the
  // sliding layers are capped at their window, so far less than 32 x 32k full tokens.
  const estimator::StageMemory& st = at->stages[0];
  EXPECT_EQ(st.workload_kv_bytes, 32 * st.kv_blocks_per_sequence * st.kv_block_bytes);
  EXPECT_LT(st.workload_kv_bytes, 32 * 32768 * st.kv_cache_bytes_per_token / 2);
  EXPECT_GE(st.kv_cache_bytes, st.workload_kv_bytes);
  // The utilization is the smallest that holds it (one hundredth less does not).
  req.vllm.gpu_memory_utilization = r.gpu_memory_utilization - 0.01;
  EXPECT_LT(estimator::Estimate(*d.spec, req)->max_concurrency_low, 32);
  // Budget asks the same function.
  auto cells =
      estimator::Budget(*d.spec, VllmRequestFor(d, *s.FindGpuType("H100"), 1, 1, 1), {32768}, {32});
  ASSERT_TRUE(cells.ok());
  EXPECT_EQ((*cells)[0].bytes_per_gpu,
            st.high_bytes - st.kv_cache_bytes +
                (st.available_kv_cache_bytes - st.available_kv_cache_low_bytes) +
                st.workload_kv_bytes);
  EXPECT_TRUE((*cells)[0].fits);
  // And MinGpuMemoryUtilization is the planner's utilization.
  auto util = estimator::MinGpuMemoryUtilization(
      *d.spec, VllmRequestFor(d, *s.FindGpuType("H100"), 1, 1, 1), 32768, 32);
  ASSERT_TRUE(util.ok()) << util.status();
  EXPECT_DOUBLE_EQ(*util, r.gpu_memory_utilization);
}

}  // namespace
}  // namespace fleetplan::placement

namespace fleetplan::placement {
namespace {

// The planner refuses the replica count the store refuses, with the same limit.
TEST(OneRuleTest, ReplicaLimitIsTheStoresLimit) {
  FleetSnapshot s = Fleet({MakeNode("n1", 8, "H100", 8)});
  DeploymentSpec d = Dep("many", "qwen2.5-0.5b", limits::kMaxReplicasPerDeployment + 1);
  auto plan = PlanPlacement(s, {{d}});
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find(absl::StrCat(limits::kMaxReplicasPerDeployment)),
            std::string::npos);
}

// A pipeline that needs more domains than the fleet has is FAILED_PRECONDITION, not "wait".
TEST(OneRuleTest, PipelineLongerThanTheFleetIsNotRetryable) {
  FleetSnapshot s = Fleet({MakeNode("a", 4, "A100-40GB", 2)});  // two domains of 2 GPUs
  DeploymentSpec d = Dep("big", "llama-3.3-70b-instruct-fp8-dynamic", 1, 64, 32768);
  d.max_tp = 2;
  auto plan = PlanPlacement(s, {{d}});
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->unplaced.size(), 1u);
  EXPECT_FALSE(plan->unplaced[0].retryable()) << Describe(plan->unplaced[0]);
}

// gpus_used counts distinct GPUs: shared replicas on one GPU are one GPU.
TEST(OneRuleTest, SharedReplicasCountTheirGpusOnce) {
  FleetSnapshot s = Fleet({MakeNode("a", 2, "H100", 2)});
  DeploymentSpec d = Dep("small", "qwen2.5-0.5b", 7, 2, 2048);
  d.shared = true;
  auto plan = PlanPlacement(s, {{d}});
  ASSERT_TRUE(plan.ok());
  std::set<GpuRef> gpus;
  for (const auto& r : plan->replicas) {
    for (const auto& rank : r.ranks) gpus.insert(rank.gpu);
  }
  EXPECT_EQ(plan->gpus_used, static_cast<int64_t>(gpus.size()));
  EXPECT_LE(plan->gpus_used, 2);
  EXPECT_GE(plan->gap, 0);
}

}  // namespace
}  // namespace fleetplan::placement

namespace fleetplan::placement {
namespace {

// Planning polls its caller: once `cancelled` says so, it stops with CANCELLED instead of running
// on (a client gone past its deadline, a server shutting down).
TEST(PlannerCancellationTest, StopsWhenTheCallerIsGone) {
  std::vector<Node> nodes;
  for (int i = 0; i < 50; ++i) nodes.push_back(MakeNode(absl::StrCat("n", i), 8, "H100", 8));
  FleetSnapshot s = Fleet(nodes);
  PlacementRequest request;
  for (int i = 0; i < 20; ++i)
    request.deployments.push_back(Dep(absl::StrCat("d", i), "qwen2.5-0.5b", 100, 1, 2048));
  int polls = 0;
  PlannerOptions options{.cancelled = [&polls] { return ++polls > 3; }};
  auto plan = PlanPlacement(s, request, options);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kCancelled) << plan.status();
  EXPECT_LE(polls, 5) << "stops at the first poll that says so";
  options.cancelled = [] { return false; };
  EXPECT_TRUE(PlanPlacement(s, request, options).ok());
}

}  // namespace
}  // namespace fleetplan::placement

namespace fleetplan::placement {
namespace {

// Every observable of two packing states over the same snapshot shape.
void ExpectSamePackingState(const PackingState& a, const PackingState& b) {
  ASSERT_EQ(a.domains().size(), b.domains().size());
  for (size_t id = 0; id < a.domains().size(); ++id) {
    const DomainState& x = a.domains()[id];
    const DomainState& y = b.domains()[id];
    EXPECT_EQ(x.node, y.node);
    EXPECT_EQ(x.domain, y.domain);
    EXPECT_EQ(x.type->name, y.type->name);
    EXPECT_EQ(x.gpus, y.gpus);
    EXPECT_EQ(x.size, y.size);
    EXPECT_EQ(a.free_exclusive(id), b.free_exclusive(id)) << "domain " << id;
  }
  EXPECT_EQ(a.by_type(), b.by_type());
  for (size_t ni = 0; ni < a.snapshot().nodes.size(); ++ni) {
    for (size_t gi = 0; gi < a.snapshot().nodes[ni].gpus.size(); ++gi) {
      const auto g = static_cast<int64_t>(gi);
      EXPECT_EQ(a.free_bytes(ni, g), b.free_bytes(ni, g)) << ni << "/" << gi;
      EXPECT_EQ(a.untouched(ni, g), b.untouched(ni, g)) << ni << "/" << gi;
    }
  }
}

// The incremental constructor (what the live fleet state uses after a write) gives exactly what a
// fresh build gives, reusing the layout when only usage changed and rebuilding when a node's shape
// changed.
TEST(PackingStateTest, IncrementalEqualsFreshBuild) {
  std::vector<Node> nodes;
  for (int i = 0; i < 30; ++i) {
    nodes.push_back(i % 3 == 0 ? MakeNode(absl::StrCat("a", i), 8, "A100-40GB", 4)
                               : MakeNode(absl::StrCat("h", i), 8, "H100", 8));
  }
  const FleetSnapshot before = Fleet(nodes);
  const PackingState base(before);
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    FleetSnapshot after = before;  // shares every node
    std::vector<size_t> changed;
    const bool reshape = round % 5 == 4;
    for (int k = 0; k < 3; ++k) {
      const size_t ni = rng() % after.nodes.size();
      changed.push_back(ni);
      Node& n = after.nodes.Mutable(ni);
      Gpu& g = n.gpus[rng() % n.gpus.size()];
      g.committed_bytes += int64_t{1 + static_cast<int64_t>(rng() % 20)} * kGiB;
      if (rng() % 4 == 0) g.reserved_bytes = 5 * kGiB;
      if (reshape && k == 0) n.state = NodeState::kCordoned;
    }
    EXPECT_TRUE(after.nodes.SameNode(0, before.nodes, 0) ||
                std::count(changed.begin(), changed.end(), 0u) > 0)
        << "an unchanged node is shared, not copied";
    const PackingState incremental(after, base, changed);
    const PackingState fresh(after);
    EXPECT_EQ(incremental.SharesLayoutWith(base), !reshape);
    ExpectSamePackingState(incremental, fresh);
  }
}

}  // namespace
}  // namespace fleetplan::placement
