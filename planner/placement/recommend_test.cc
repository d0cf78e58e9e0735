#include "planner/placement/recommend.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/gpu_catalog.h"

namespace fleetplan::placement {
namespace {

estimator::ModelSpec Parse(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto spec = estimator::ParseModelConfig(ss.str());
  EXPECT_TRUE(spec.ok()) << path << ": " << spec.status();
  return spec.ok() ? *spec : estimator::ModelSpec{};
}

std::string Examples(const std::string& name) {
  return std::string(FLEETPLAN_SOURCE_DIR) + "/deploy/examples/models/" + name + ".json";
}

std::vector<GpuType> BuiltIn() {
  std::vector<GpuType> out;
  for (const estimator::GpuInfo& g : estimator::GpuCatalog()) {
    out.push_back(GpuType{.name = g.name, .memory_bytes = g.memory_bytes});
  }
  return out;
}

DeploymentSpec Workload(const estimator::ModelSpec& spec, int64_t concurrency, int64_t context) {
  return DeploymentSpec{.name = "r",
                        .model = "m",
                        .spec = &spec,
                        .vllm = {.max_model_len = context},
                        .concurrency = concurrency,
                        .context_tokens = context};
}

// Every listed configuration holds the workload within the headroom policy, per the estimator,
// and the ranking is by (known cost, cost, GPUs, GPU size).
void CheckListed(const DeploymentSpec& d, const Recommendation& r) {
  ASSERT_FALSE(r.configurations.empty());
  for (size_t i = 0; i < r.configurations.size(); ++i) {
    const Candidate& c = r.configurations[i].candidate;
    EXPECT_LE(c.max_rank_bytes, AllowedBytesPerGpu(d, *c.type)) << c.type->name << " tp=" << c.tp;
    EXPECT_GE(c.kv_tokens, d.concurrency * d.context_tokens) << c.type->name << " tp=" << c.tp;
    EXPECT_EQ(c.gpus, c.tp * c.pp);
    if (c.tp > 1) {
      EXPECT_NE(c.launch_command.find("--tensor-parallel-size " + std::to_string(c.tp)),
                std::string::npos)
          << c.launch_command;
    }
    if (i == 0) continue;
    const Configuration& a = r.configurations[i - 1];
    const Configuration& b = r.configurations[i];
    if ((a.cost_per_hour > 0) == (b.cost_per_hour > 0) && a.cost_per_hour == b.cost_per_hour) {
      EXPECT_LE(a.candidate.gpus, b.candidate.gpus);
    }
  }
}

TEST(Recommend, DenseModelOnTheBuiltInTable) {
  const estimator::ModelSpec spec = Parse(Examples("llama-3.1-70b-instruct"));
  const DeploymentSpec d = Workload(spec, 16, 8192);
  const std::vector<GpuType> types = BuiltIn();
  Recommendation r = Recommend(d, types, 8);
  CheckListed(d, r);
  // 70B in bf16 is 141 GB of weights: no single GPU of the table holds it with its KV cache.
  EXPECT_GE(r.configurations.front().candidate.gpus, 2);
  int64_t h100 = 0, t4 = 0;
  for (const TypeVerdict& v : r.types) {
    if (v.gpu_type == "H100-80GB") {
      h100 = v.fewest;
      EXPECT_EQ(v.fewest, 4) << "2 x 80 GB leave no room for 16 x 8k tokens of KV";
      EXPECT_EQ(v.fewer, 2);
      ASSERT_TRUE(v.why_not_fewer.has_value());
      // The engine's reason at the largest split tried (2 GPUs), not at 1.
      EXPECT_EQ(v.why_not_fewer->kind, Shortfall::Kind::kWorkload) << Describe(*v.why_not_fewer);
      EXPECT_EQ(v.why_not_fewer->detail.rfind("tp=2 pp=1: ", 0), 0u) << v.why_not_fewer->detail;
    }
    if (v.gpu_type == "T4") t4 = v.fewest;
  }
  EXPECT_GT(t4, h100) << "16 GB GPUs need more of them (pipeline stages across nodes)";
}

TEST(Recommend, CostRanksFirstWhenKnown) {
  const estimator::ModelSpec spec = Parse(Examples("llama-3.1-8b-instruct"));
  const DeploymentSpec d = Workload(spec, 32, 8192);
  const std::vector<GpuType> types = {
      GpuType{.name = "H100-80GB", .memory_bytes = 85017493504, .cost_per_hour = 2.5},
      GpuType{.name = "L4", .memory_bytes = 23654252544, .cost_per_hour = 0.7},
      GpuType{.name = "A100-40GB", .memory_bytes = 42508723978, .cost_per_hour = 1.2}};
  Recommendation r = Recommend(d, types, 8);
  CheckListed(d, r);
  for (size_t i = 1; i < r.configurations.size(); ++i) {
    EXPECT_LE(r.configurations[i - 1].cost_per_hour, r.configurations[i].cost_per_hour);
  }
  const Configuration& best = r.configurations.front();
  EXPECT_DOUBLE_EQ(best.cost_per_hour,
                   best.candidate.type->cost_per_hour * static_cast<double>(best.candidate.gpus));
}

TEST(Recommend, MoeAndQuantizedModels) {
  const estimator::ModelSpec moe = Parse(Examples("mixtral-8x7b-instruct"));
  const DeploymentSpec dm = Workload(moe, 8, 16384);
  const std::vector<GpuType> types = BuiltIn();
  Recommendation rm = Recommend(dm, types, 8);
  CheckListed(dm, rm);
  for (const TypeVerdict& v : rm.types) {
    // 93 GB of bf16 weights: two 80 GB GPUs.
    if (v.gpu_type == "H100-80GB") {
      EXPECT_EQ(v.fewest, 2);
    }
  }
  // FP8 weights halve what a 70B needs: fewer GPUs than bf16 on the same type.
  const estimator::ModelSpec fp8 = Parse(Examples("llama-3.3-70b-instruct-fp8-dynamic"));
  const estimator::ModelSpec bf16 = Parse(Examples("llama-3.1-70b-instruct"));
  const DeploymentSpec dq = Workload(fp8, 16, 8192);
  const DeploymentSpec db = Workload(bf16, 16, 8192);
  const std::vector<GpuType> h100 = {GpuType{.name = "H100-80GB", .memory_bytes = 85017493504}};
  Recommendation rq = Recommend(dq, h100, 8);
  Recommendation rb = Recommend(db, h100, 8);
  CheckListed(dq, rq);
  EXPECT_LT(rq.configurations.front().candidate.gpus, rb.configurations.front().candidate.gpus);
}

TEST(Recommend, NothingFitsSaysWhy) {
  const estimator::ModelSpec spec = Parse(Examples("qwen2.5-72b-instruct"));
  const DeploymentSpec d = Workload(spec, 64, 32768);
  const std::vector<GpuType> l4 = {GpuType{.name = "L4", .memory_bytes = 23654252544}};
  Recommendation r = Recommend(d, l4, 2);
  EXPECT_TRUE(r.configurations.empty());
  ASSERT_EQ(r.types.size(), 1u);
  ASSERT_TRUE(r.types[0].none_fits.has_value());
  EXPECT_FALSE(Describe(*r.types[0].none_fits).empty());
}

}  // namespace
}  // namespace fleetplan::placement
