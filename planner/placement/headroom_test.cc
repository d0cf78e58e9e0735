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
  FleetSnapshot s{.generation = 7, .gpu_types = {GpuType{.name = "H100", .memory_bytes = 80 * kGiB}}};
  Node a = MakeNode("a", "p1", 8, 4);  // domains {0..3}, {4..7}
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
  EXPECT_EQ(h.fleet.risk, RiskLevel::kHigh);
  ASSERT_EQ(h.pools.size(), 2u);
  EXPECT_EQ(h.pools[0].key, "p1");
  EXPECT_EQ(h.pools[1].free_bytes, 0);
  EXPECT_EQ(h.gpus.size(), 16u);
  EXPECT_EQ(h.gpus[0].headroom.risk, RiskLevel::kHigh);
  EXPECT_EQ(h.gpus[5].headroom.risk, RiskLevel::kLow);
  ASSERT_EQ(h.gpu_types.size(), 1u);
  EXPECT_EQ(h.gpu_types[0].largest_free_nvlink_domain, 3);
  EXPECT_NEAR(h.nodes[0].headroom_ratio, (640.0 - 88) / 640, 1e-9);
}

TEST(HeadroomTest, RiskThresholds) {
  EXPECT_EQ(GpuRisk(0, 80), RiskLevel::kLow);
  EXPECT_EQ(GpuRisk(72, 80), RiskLevel::kMedium);
  EXPECT_EQ(GpuRisk(78, 80), RiskLevel::kHigh);
  EXPECT_EQ(GpuRisk(1, 0), RiskLevel::kHigh);
}

}  // namespace
}  // namespace fleetplan::placement
