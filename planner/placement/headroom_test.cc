#include "planner/placement/headroom.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/placement/headroom_index.h"

namespace fleetplan::placement {
namespace {

Node MakeNode(const std::string& name, const std::string& pool, int64_t gpus, int64_t domain) {
  Node n{.name = name, .pool = pool};
  for (int64_t i = 0; i < gpus; ++i) {
    n.gpus.push_back(Gpu{.index = i, .gpu_type = "H100", .nvlink_domain = i / domain});
  }
  return n;
}

TEST(HeadroomTest, AggregatesAndLargestFreeDomain) {
  FleetSnapshot s{.generation = 7,
                  .gpu_types = {GpuType{.name = "H100", .memory_bytes = 80 * kGiB}}};
  Node a = MakeNode("a", "p1", 8, 4);     // domains {0..3}, {4..7}
  a.gpus[0].committed_bytes = 78 * kGiB;  // 97.5 %: high risk
  a.gpus[5].reserved_bytes = 10 * kGiB;
  Node b = MakeNode("b", "p2", 8, 8);
  b.state = NodeState::kCordoned;
  s.nodes = {a, b};
  FleetHeadroom h = ComputeHeadroom(s, true);
  EXPECT_EQ(h.generation, 7);
  EXPECT_EQ(h.fleet.gpus, 16);
  EXPECT_EQ(h.fleet.total_bytes, 16 * 80 * kGiB);
  EXPECT_EQ(h.fleet.committed_bytes, 78 * kGiB);
  EXPECT_EQ(h.fleet.reserved_bytes, 10 * kGiB);
  // Cordoned node offers nothing; node a: 8 x 80 - 78 - 10.
  EXPECT_EQ(h.fleet.free_bytes, 8 * 80 * kGiB - 88 * kGiB);
  EXPECT_EQ(h.fleet.free_gpus, 6);
  EXPECT_EQ(h.fleet.largest_free_nvlink_domain, 3);
  EXPECT_EQ(h.fleet.risk, Risk::kHigh);
  ASSERT_EQ(h.pools.size(), 2u);
  EXPECT_EQ(h.pools[0].key, "p1");
  EXPECT_EQ(h.pools[1].free_bytes, 0);
  EXPECT_EQ(h.gpus.size(), 16u);
  EXPECT_EQ(h.gpus[0].headroom.risk, Risk::kHigh);
  EXPECT_EQ(h.gpus[5].headroom.risk, Risk::kLow);
  ASSERT_EQ(h.gpu_types.size(), 1u);
  EXPECT_EQ(h.gpu_types[0].largest_free_nvlink_domain, 3);
  EXPECT_NEAR(h.nodes[0].headroom_ratio, (640.0 - 88) / 640, 1e-9);
}

TEST(HeadroomTest, RiskThresholds) {
  EXPECT_EQ(RiskOfUse(0, 80), Risk::kLow);
  EXPECT_EQ(RiskOfUse(72, 80), Risk::kMedium);
  EXPECT_EQ(RiskOfUse(78, 80), Risk::kHigh);
  EXPECT_EQ(RiskOfUse(1, 0), Risk::kHigh);
}

}  // namespace
}  // namespace fleetplan::placement

#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"

namespace fleetplan::placement {
namespace {

// One risk rule: an estimate and the headroom of a GPU holding exactly that estimate agree, also on
// the 90 % and 97 % boundaries (a GPU exactly 90 % full is medium in both).
TEST(OneRiskRuleTest, EstimateAndHeadroomAgreeOnTheBoundaries) {
  auto spec = estimator::ParseModelConfig(R"({"model_type": "llama", "hidden_size": 1024,
      "num_hidden_layers": 4, "num_attention_heads": 8, "intermediate_size": 4096,
      "vocab_size": 32000, "torch_dtype": "bfloat16"})");
  ASSERT_TRUE(spec.ok());
  estimator::EstimateRequest req{.engine = estimator::Engine::kHfTransformers};
  // An HF estimate does not depend on the GPU's size: find a reservation (the band's high end)
  // divisible by 900 so that both boundaries fall on whole bytes.
  int64_t total = 0;
  for (req.hf.prompt_tokens = 512;; ++req.hf.prompt_tokens) {
    req.gpu_memory_bytes = 80 * kGiB;
    total = estimator::Estimate(*spec, req)->max_high_bytes;
    if (total % 900 == 0) break;
  }
  for (const int64_t gpu : {total * 100 / 90, total * 100 / 90 + 1, total * 100 / 97,
                            total * 100 / 97 + 1, total * 2, total}) {
    req.gpu_memory_bytes = gpu;
    auto e = estimator::Estimate(*spec, req);
    ASSERT_TRUE(e.ok());
    FleetSnapshot s{
        .gpu_types = {GpuType{.name = "G", .memory_bytes = gpu}},
        .nodes = {Node{
            .name = "n", .pool = "p", .gpus = {Gpu{.gpu_type = "G", .committed_bytes = total}}}}};
    const FleetHeadroom h = ComputeHeadroom(s, true);
    EXPECT_EQ(e->risk, h.gpus[0].headroom.risk) << "gpu " << gpu << " holding " << total;
  }
  req.gpu_memory_bytes = total * 100 / 90;
  EXPECT_EQ(estimator::Estimate(*spec, req)->risk, Risk::kMedium) << "exactly 90 % full";
}

void ExpectSameHeadroom(const Headroom& a, const Headroom& b, const std::string& what) {
  EXPECT_EQ(a.key, b.key) << what;
  EXPECT_EQ(a.total_bytes, b.total_bytes) << what;
  EXPECT_EQ(a.reserved_bytes, b.reserved_bytes) << what;
  EXPECT_EQ(a.committed_bytes, b.committed_bytes) << what;
  EXPECT_EQ(a.free_bytes, b.free_bytes) << what;
  EXPECT_EQ(a.headroom_ratio, b.headroom_ratio) << what;
  EXPECT_EQ(a.risk, b.risk) << what;
  EXPECT_EQ(a.gpus, b.gpus) << what;
  EXPECT_EQ(a.free_gpus, b.free_gpus) << what;
  EXPECT_EQ(a.largest_free_nvlink_domain, b.largest_free_nvlink_domain) << what;
}

// A random fleet of two GPU types over three pools, some GPUs used, some nodes not schedulable.
FleetSnapshot RandomFleet(std::mt19937& rng, int nodes) {
  FleetSnapshot s{.generation = 3,
                  .gpu_types = {GpuType{.name = "A100", .memory_bytes = 40 * kGiB},
                                GpuType{.name = "H100", .memory_bytes = 80 * kGiB}}};
  std::vector<Node> list;
  for (int i = 0; i < nodes; ++i) {
    const int64_t domain = rng() % 2 ? 4 : 8;
    Node n = MakeNode(absl::StrCat("n", i), absl::StrCat("p", rng() % 3), 8, domain);
    const bool a100 = rng() % 3 == 0;
    for (Gpu& g : n.gpus) {
      if (a100 || (rng() % 5 == 0)) g.gpu_type = "A100";  // some nodes mix types
      const unsigned use = static_cast<unsigned>(rng() % 6);
      if (use == 0) g.committed_bytes = int64_t{1 + static_cast<int64_t>(rng() % 39)} * kGiB;
      if (use == 1) g.reserved_bytes = 10 * kGiB;
      if (use == 2) g.committed_bytes = 39 * kGiB;  // high risk on an A100
    }
    if (rng() % 7 == 0) n.state = NodeState::kDraining;
    if (rng() % 9 == 0) n.gpus[3].healthy = false;
    list.push_back(std::move(n));
  }
  std::sort(list.begin(), list.end(), [](const Node& a, const Node& b) { return a.name < b.name; });
  s.nodes = list;
  return s;
}

void ExpectIndexMatches(const HeadroomIndex& index, const FleetSnapshot& s,
                        const std::string& what) {
  const FleetHeadroom full = ComputeHeadroom(s, false);
  ExpectSameHeadroom(index.Fleet(), full.fleet, what + " fleet");
  for (const Headroom& p : full.pools) ExpectSameHeadroom(index.Pool(p.key), p, what + " pool");
  for (const Headroom& t : full.gpu_types) ExpectSameHeadroom(index.Type(t.key), t, what + " type");
}

// The index equals ComputeHeadroom on random fleets, after random node replacements, additions
// and removals; the touched view of a plan equals the same entries of HeadroomAfter.
TEST(HeadroomIndexTest, MatchesComputeHeadroom) {
  std::mt19937 rng(5);
  for (int round = 0; round < 20; ++round) {
    FleetSnapshot s = RandomFleet(rng, 12 + round);
    HeadroomIndex index(s);
    ExpectIndexMatches(index, s, absl::StrCat("round ", round));
    // Replace three nodes with changed usage; remove one; add one.
    for (int k = 0; k < 3; ++k) {
      const size_t i = rng() % s.nodes.size();
      const Node before = s.nodes[i];
      Node& n = s.nodes.Mutable(i);
      n.gpus[rng() % 8].committed_bytes += 5 * kGiB;
      if (k == 1)
        n.state = n.state == NodeState::kActive ? NodeState::kCordoned : NodeState::kActive;
      index.Replace(&before, &s.nodes[i], s.gpu_types);
    }
    const Node removed = s.nodes[0];
    s.nodes.Erase(0);
    index.Replace(&removed, nullptr, s.gpu_types);
    Node added = MakeNode("zz", "p9", 8, 8);
    s.nodes.push_back(added);
    index.Replace(nullptr, &added, s.gpu_types);
    ExpectIndexMatches(index, s, absl::StrCat("round ", round, " after changes"));

    // A plan's ranks on a few GPUs: the touched view equals HeadroomAfter's entries.
    std::vector<PlacementRank> ranks;
    for (int r = 0; r < 4; ++r) {
      const Node& n = s.nodes[rng() % s.nodes.size()];
      ranks.push_back(
          {.rank = r, .gpu = {n.name, static_cast<int64_t>(rng() % 8)}, .bytes = 7 * kGiB});
    }
    const FleetHeadroom touched = TouchedHeadroomAfter(s, index, ranks);
    const FleetHeadroom full = HeadroomAfter(s, ranks, false);
    ExpectSameHeadroom(touched.fleet, full.fleet, "after: fleet");
    for (const Headroom& p : touched.pools) {
      auto it = std::find_if(full.pools.begin(), full.pools.end(),
                             [&](const Headroom& h) { return h.key == p.key; });
      ASSERT_NE(it, full.pools.end());
      ExpectSameHeadroom(p, *it, "after: pool");
    }
    for (const Headroom& t : touched.gpu_types) {
      auto it = std::find_if(full.gpu_types.begin(), full.gpu_types.end(),
                             [&](const Headroom& h) { return h.key == t.key; });
      ASSERT_NE(it, full.gpu_types.end());
      ExpectSameHeadroom(t, *it, "after: type");
    }
    for (const Headroom& n : touched.nodes) {
      auto it = std::find_if(full.nodes.begin(), full.nodes.end(),
                             [&](const Headroom& h) { return h.key == n.key; });
      ASSERT_NE(it, full.nodes.end());
      ExpectSameHeadroom(n, *it, "after: node");
    }
    EXPECT_LE(touched.nodes.size(), ranks.size());
    EXPECT_GE(touched.nodes.size(), 1u);
  }
}

}  // namespace
}  // namespace fleetplan::placement
