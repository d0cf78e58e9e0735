// Fuzz target: a deployments file (JSON or YAML, as `fleetplan plan --deployment` reads it) ->
// PlanPlacementRequest -> the server's conversion -> the planner on a fixed fleet. Invariants: no
// crash or UB, no GPU over-committed, exclusive GPUs used once, every placed rank's bytes positive.

#include <cstdint>
#include <map>
#include <string>

#include "clients/deployments_file.h"
#include "planner/estimator/config_parser.h"
#include "planner/placement/planner.h"
#include "server/convert.h"
#include "tests/fuzz/fuzz_util.h"

namespace fleetplan::fuzz {
namespace {

const estimator::ModelSpec& SmallModel() {
  static const auto* const kSpec = new estimator::ModelSpec(*estimator::ParseModelConfig(R"({
      "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
      "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
      "vocab_size": 151936, "max_position_embeddings": 32768, "tie_word_embeddings": true,
      "torch_dtype": "bfloat16"})"));
  return *kSpec;
}

const placement::FleetSnapshot& Fleet() {
  static const auto* const kFleet = [] {
    auto* s = new placement::FleetSnapshot{
        .generation = 3,
        .gpu_types = {placement::GpuType{.name = "A100", .memory_bytes = 42505273344},
                      placement::GpuType{.name = "H100", .memory_bytes = 85017493504}}};
    for (int n = 0; n < 4; ++n) {
      placement::Node node{.name = "n" + std::to_string(n), .pool = n < 2 ? "a" : "b",
                           .zone = n % 2 ? "z1" : "z2"};
      for (int g = 0; g < 8; ++g) {
        node.gpus.push_back(placement::Gpu{.index = g, .gpu_type = n < 3 ? "H100" : "A100",
                                           .nvlink_domain = g / 4,
                                           .committed_bytes = g == 0 ? int64_t{10} << 30 : 0});
      }
      s->nodes.push_back(node);
    }
    return s;
  }();
  return *kFleet;
}

}  // namespace
}  // namespace fleetplan::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fleetplan;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto req = cli::ParseDeployments(text, "fuzz");
  if (!req.ok()) return 0;
  placement::PlacementRequest request;
  for (int i = 0; i < req->deployments_size() && i < 50; ++i) {
    auto d = server::FromProto(req->deployments(i), static_cast<size_t>(i));
    if (!d.ok()) return 0;
    d->spec = &fuzz::SmallModel();
    d->replicas = std::min<int64_t>(d->replicas, 64);  // keep one run fast; limits are tested
    request.deployments.push_back(*std::move(d));
  }
  auto strategy = server::StrategyFromProto(req->strategy());
  if (!strategy.ok() || request.deployments.empty()) return 0;
  auto plan = placement::PlanPlacement(fuzz::Fleet(), request, {.strategy = *strategy});
  if (!plan.ok()) return 0;
  std::map<placement::GpuRef, int64_t> used;
  std::map<placement::GpuRef, int> owners;
  for (const auto& r : plan->replicas) {
    fuzz::Check(static_cast<int64_t>(r.ranks.size()) == r.tp * r.pp, "ranks = tp x pp");
    for (const auto& rank : r.ranks) {
      fuzz::Check(rank.bytes > 0, "rank bytes > 0");
      used[rank.gpu] += rank.bytes;
      ++owners[rank.gpu];
    }
  }
  for (const auto& [ref, bytes] : used) {
    const placement::Node* n = fuzz::Fleet().FindNode(ref.node);
    fuzz::Check(n != nullptr, "placed on a fleet node");
    const placement::Gpu& g = n->gpus[static_cast<size_t>(ref.index)];
    const int64_t memory = fuzz::Fleet().FindGpuType(g.gpu_type)->memory_bytes;
    fuzz::Check(bytes + g.committed_bytes <= memory, "no GPU over-committed");
  }
  fuzz::Check(plan->gap >= 0, "gap >= 0");
  return 0;
}
