#include "planner/placement/failure.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "planner/estimator/config_parser.h"
#include "planner/placement/planner.h"

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

// Zone z1: nodes a and b; zone z2: node c. 8 H100s each, one NVLink domain.
FleetSnapshot ThreeNodes() {
  FleetSnapshot s{.generation = 9,
                  .gpu_types = {GpuType{.name = "H100", .memory_bytes = 85017493504}}};
  std::vector<Node> nodes;
  for (const auto& [name, zone] :
       std::vector<std::pair<std::string, std::string>>{{"a", "z1"}, {"b", "z1"}, {"c", "z2"}}) {
    Node n{.name = name, .pool = "p", .zone = zone};
    for (int64_t i = 0; i < 8; ++i) n.gpus.push_back(Gpu{.index = i, .gpu_type = "H100"});
    nodes.push_back(n);
  }
  s.nodes = nodes;
  return s;
}

DeploymentSpec Dep(const std::string& name, const std::string& slug, int64_t replicas,
                   Spread spread = Spread::kNone) {
  return DeploymentSpec{.name = name,
                        .model = slug,
                        .spec = &Model(slug),
                        .vllm = {.max_model_len = 8192},
                        .concurrency = 8,
                        .context_tokens = 8192,
                        .replicas = replicas,
                        .spread = spread};
}

// Plans `deps` and commits the plan into `s`; returns the placements as the store would hold them.
std::vector<Placement> Commit(FleetSnapshot& s, const std::vector<DeploymentSpec>& deps) {
  auto plan = PlanPlacement(s, {deps});
  EXPECT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->unplaced.empty());
  std::vector<Placement> out;
  for (const ReplicaPlacement& r : plan->replicas) {
    out.push_back(Placement{.id = static_cast<int64_t>(out.size()) + 1,
                            .deployment = r.deployment,
                            .model = r.model,
                            .replica = r.replica,
                            .tp = r.tp,
                            .pp = r.pp,
                            .ep = r.ep,
                            .ranks = r.ranks});
    for (const PlacementRank& rank : r.ranks) {
      for (size_t i = 0; i < s.nodes.size(); ++i) {
        if (s.nodes[i].name != rank.gpu.node) continue;
        s.nodes.Mutable(i).gpus[static_cast<size_t>(rank.gpu.index)].committed_bytes += rank.bytes;
      }
    }
  }
  return out;
}

std::map<std::string, DeploymentSpec> Specs(const std::vector<DeploymentSpec>& deps) {
  std::map<std::string, DeploymentSpec> out;
  for (const DeploymentSpec& d : deps) out[d.name] = d;
  return out;
}

TEST(SimulateFailure, ANodeWithASpreadReplicaCannotMoveOntoItsSiblings) {
  FleetSnapshot s = ThreeNodes();
  const std::vector<DeploymentSpec> deps = {
      Dep("chat", "llama-3.1-8b-instruct", 3, Spread::kNodes)};
  std::vector<Placement> active = Commit(s, deps);
  ASSERT_EQ(active.size(), 3u);
  auto impact = SimulateFailure(s, {.nodes = {"a"}}, active, Specs(deps));
  ASSERT_TRUE(impact.ok()) << impact.status();
  EXPECT_EQ(impact->failed_nodes, std::vector<std::string>{"a"});
  ASSERT_EQ(impact->displaced.size(), 1u);
  // b and c already hold a replica of chat: spread over nodes leaves nowhere to go.
  EXPECT_EQ(impact->absorbed, 0);
  ASSERT_EQ(impact->replan.unplaced.size(), 1u);
  EXPECT_EQ(impact->replan.unplaced[0].replica, impact->displaced[0].replica)
      << "the displaced replica's own number";
  EXPECT_NE(Describe(impact->replan.unplaced[0]).find("spread"), std::string::npos)
      << Describe(impact->replan.unplaced[0]);
  // Without spread it moves onto a surviving node, never onto the failed one.
  FleetSnapshot s2 = ThreeNodes();
  const std::vector<DeploymentSpec> plain = {Dep("chat", "llama-3.1-8b-instruct", 3)};
  std::vector<Placement> active2 = Commit(s2, plain);
  const std::string on = active2[0].ranks[0].gpu.node;
  auto moved = SimulateFailure(s2, {.nodes = {on}}, active2, Specs(plain));
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->absorbed, static_cast<int64_t>(moved->displaced.size()));
  EXPECT_DOUBLE_EQ(moved->absorbed_ratio(), 1.0);
  for (const ReplicaPlacement& r : moved->replan.replicas) {
    for (const PlacementRank& rank : r.ranks) EXPECT_NE(rank.gpu.node, on);
  }
}

TEST(SimulateFailure, AZoneThatTheRestCannotAbsorb) {
  FleetSnapshot s = ThreeNodes();
  // A 70B model at tp=8 fills each node.
  const std::vector<DeploymentSpec> deps = {
      Dep("big", "llama-3.3-70b-instruct-fp8-dynamic", 3, Spread::kNodes)};
  std::vector<Placement> active = Commit(s, deps);
  ASSERT_EQ(active.size(), 3u);
  auto impact = SimulateFailure(s, {.zones = {"z1"}}, active, Specs(deps));
  ASSERT_TRUE(impact.ok()) << impact.status();
  EXPECT_EQ(impact->failed_nodes, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(impact->displaced.size(), 2u);
  EXPECT_EQ(impact->absorbed, 0);
  EXPECT_DOUBLE_EQ(impact->absorbed_ratio(), 0.0);
  EXPECT_EQ(impact->replan.unplaced.size(), 2u);
  // Zone z2 failing displaces one replica, which z1 can take? No: spread, and a and b hold one
  // each.
  auto other = SimulateFailure(s, {.zones = {"z2"}}, active, Specs(deps));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->displaced.size(), 1u);
  EXPECT_EQ(other->absorbed, 0);
}

TEST(SimulateFailure, SmallDeploymentsOfAZoneMoveToTheOther) {
  FleetSnapshot s = ThreeNodes();
  const std::vector<DeploymentSpec> deps = {Dep("chat", "llama-3.1-8b-instruct", 4),
                                            Dep("qwen", "qwen2.5-7b-instruct", 2)};
  std::vector<Placement> active = Commit(s, deps);
  auto impact = SimulateFailure(s, {.zones = {"z1"}}, active, Specs(deps));
  ASSERT_TRUE(impact.ok()) << impact.status();
  EXPECT_FALSE(impact->displaced.empty());
  EXPECT_EQ(impact->absorbed, static_cast<int64_t>(impact->displaced.size()));
  for (const ReplicaPlacement& r : impact->replan.replicas) EXPECT_EQ(r.ranks[0].gpu.node, "c");
  // A deployment without its spec is reported, not silently dropped.
  auto partial = SimulateFailure(s, {.zones = {"z1"}}, active, Specs({deps[0]}));
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(partial->without_spec.empty());
  EXPECT_LT(partial->absorbed_ratio(), 1.0);
}

TEST(SimulateFailure, BadScenarios) {
  FleetSnapshot s = ThreeNodes();
  EXPECT_EQ(SimulateFailure(s, {}, {}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  auto node = SimulateFailure(s, {.nodes = {"nope"}}, {}, {});
  EXPECT_EQ(node.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(node.status().message().find("\"nope\""), std::string::npos);
  EXPECT_EQ(SimulateFailure(s, {.zones = {"z9"}}, {}, {}).status().code(),
            absl::StatusCode::kNotFound);
  auto nothing = SimulateFailure(s, {.nodes = {"a"}}, {}, {});
  ASSERT_TRUE(nothing.ok());
  EXPECT_DOUBLE_EQ(nothing->absorbed_ratio(), 1.0);
}

}  // namespace
}  // namespace fleetplan::placement
