// Bad values of the fields the newer families read (MiniCPM-V's query_num and max_slice_nums,
// Phi-3-vision's num_crops, spatial_merge_size, LLaVA's vision_feature_layer, the MTP layers'
// num_nextn_predict_layers): zero, negative, absurd, fractional and wrongly typed values are each
// refused with the field named, never parsed into a model.

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/estimator/config_parser.h"

namespace fleetplan::estimator {
namespace {

using json = nlohmann::json;

json ReadJson(const std::string& path) {
  std::ifstream in(std::string(FLEETPLAN_TESTDATA_DIR) + "/" + path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

json ReferenceConfig(const std::string& name) {
  const json table = ReadJson("openvino/openvino-vlm-s0.json");
  for (const json& row : table["rows"]) {
    if (row["name"] == name) return row["config"];
  }
  ADD_FAILURE() << "no row " << name;
  return json::object();
}

struct Case {
  std::string model;
  json config;
  std::vector<std::string> path;  // where the field sits in config.json
};

TEST(VlmFieldsTest, BadValuesAreRefusedByName) {
  const std::vector<Case> cases = {
      {"minicpm-v-2.5", ReferenceConfig("minicpm-v-2.5"), {"query_num"}},
      {"minicpm-v-2.5", ReferenceConfig("minicpm-v-2.5"), {"slice_config", "max_slice_nums"}},
      {"minicpm-v-2.5", ReferenceConfig("minicpm-v-2.5"), {"max_slice_nums"}},
      {"phi-3.5-vision", ReferenceConfig("phi-3.5-vision-instruct"), {"num_crops"}},
      {"qwen2.5-vl", ReferenceConfig("qwen2.5-vl-3b"), {"vision_config", "spatial_merge_size"}},
      {"llava-1.5", ReferenceConfig("llava-1.5-7b-hf"), {"vision_feature_layer"}},
      {"mistral-small-3.1", ReadJson("models/mistral-small-3.1-24b.json"), {"spatial_merge_size"}},
      {"glm-4.5-air", ReadJson("models/glm-4.5-air.json"), {"num_nextn_predict_layers"}},
  };
  const std::vector<json> bad = {0, -3, 1000000000, 2.5, "many", json::array({1})};
  for (const Case& c : cases) {
    ASSERT_TRUE(ParseModelConfig(c.config.dump()).ok()) << c.model << " parses as given";
    for (const json& value : bad) {
      // vision_feature_layer 0 (the embeddings' output) and -3 are valid layer indices, and a
      // list of layers is its other form; num_nextn_predict_layers 0 means none.
      const std::string& field = c.path.back();
      if (field == "vision_feature_layer" && (value == 0 || value == -3 || value.is_array())) {
        continue;
      }
      if (field == "num_nextn_predict_layers" && value == 0) continue;
      json config = c.config;
      json* at = &config;
      for (size_t i = 0; i + 1 < c.path.size(); ++i) at = &(*at)[c.path[i]];
      (*at)[field] = value;
      auto spec = ParseModelConfig(config.dump());
      ASSERT_FALSE(spec.ok()) << c.model << " " << field << "=" << value.dump();
      EXPECT_NE(spec.status().message().find(field), std::string::npos)
          << c.model << " " << field << "=" << value.dump() << ": " << spec.status();
    }
  }
}

}  // namespace
}  // namespace fleetplan::estimator
