#include "planner/placement/headroom.h"

#include "gtest/gtest.h"
#include "planner/common/units.h"

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
  // An HF estimate does not depend on the GPU's size: find a total divisible by 900 so that both
  // boundaries fall on whole bytes.
  int64_t total = 0;
  for (req.hf.prompt_tokens = 512;; ++req.hf.prompt_tokens) {
    req.gpu_memory_bytes = 80 * kGiB;
    total = estimator::Estimate(*spec, req)->max_total_bytes;
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

}  // namespace
}  // namespace fleetplan::placement
