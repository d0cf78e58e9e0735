#include "tests/testing/data.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "storage/sql_store.h"

namespace fleetplan::testing {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string CalibrationModel(const std::string& slug) {
  return ReadText(absl::StrCat(FLEETPLAN_TESTING_CALIBRATION_DIR, "/models/", slug, ".json"));
}

std::string TestModel(const std::string& slug) {
  return ReadText(absl::StrCat(FLEETPLAN_TESTING_MODELS_DIR, "/", slug, ".json"));
}

std::string MakeSmallFleet(const std::string& path, int nodes) {
  auto store = storage::SqlStore::Open({.path = path});
  if (!store.ok()) return store.status().ToString();
  if (auto s = (*store)->CreateGpuType({.name = "H100", .memory_bytes = kSmallFleetGpuBytes});
      !s.ok()) {
    return s.ToString();
  }
  for (int n = 0; n < nodes; ++n) {
    placement::Node node{.name = absl::StrCat("n", n), .pool = "p"};
    for (int g = 0; g < 8; ++g) node.gpus.push_back({.index = g, .gpu_type = "H100"});
    if (auto s = (*store)->CreateNode(node); !s.ok()) return s.status().ToString();
  }
  const std::string config = CalibrationModel("qwen2.5-0.5b");
  auto spec = estimator::ParseModelConfig(config);
  if (!spec.ok()) return spec.status().ToString();
  const estimator::ModelSummary summary = estimator::SummarizeModel(*spec);
  if (auto s = (*store)->CreateModel({.name = "small",
                                      .config_json = config,
                                      .model_type = spec->model_type,
                                      .params = summary.params,
                                      .weights_bytes = summary.weights_bytes,
                                      .kv_bytes_per_token = summary.kv_bytes_per_token});
      !s.ok()) {
    return s.ToString();
  }
  return "";
}

}  // namespace fleetplan::testing
