// MiniCPM-V: parameters recomputed from the remote code's modules (modeling_minicpmv.py with
// Idefics2VisionTransformer, resampler.py) and checked against the published 8.54B of
// MiniCPM-Llama3-V-2_5; the processor's slicing (image_processing_minicpmv.py) for the image the
// OpenVINO reference table uses; versions refused by name.

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"

namespace fleetplan::estimator {
namespace {

using nlohmann::json;

// The reference table's row config (tests/data/openvino/openvino-vlm-s0.json).
json RowConfig(const std::string& name) {
  std::ifstream in(std::string(FLEETPLAN_TESTDATA_DIR) + "/openvino/openvino-vlm-s0.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const json table = json::parse(ss.str());
  for (const json& row : table["rows"]) {
    if (row["name"] == name) return row["config"];
  }
  return json();
}

// Idefics2VisionTransformer: patch conv (bias), positions (980 / 14)^2, layers of q/k/v/o and
// fc1/fc2 with biases and two LayerNorms, post LayerNorm. Resampler2_5: query, kv_proj (no bias),
// MultiheadAttention (in_proj 3E x E + bias, out_proj + bias), ln_q/ln_kv/ln_post, proj E x E.
int64_t MiniCpmVisionParams(int64_t d, int64_t inter, int64_t layers, int64_t e, int64_t queries) {
  const int64_t layer = 4 * (d * d + d) + (d * inter + inter) + (inter * d + d) + 4 * d;
  const int64_t tower = 3 * 14 * 14 * d + d + 70 * 70 * d + layers * layer + 2 * d;
  const int64_t resampler =
      queries * e + d * e + (3 * e * e + 3 * e) + (e * e + e) + 3 * 2 * e + e * e;
  return tower + resampler;
}

TEST(MiniCpmVTest, Llama3V25ParametersAreThePublished854B) {
  auto spec = ParseModelConfig(RowConfig("minicpm-v-2.5").dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << spec->notes.back();
  EXPECT_EQ(spec->model_type, "llama");
  EXPECT_EQ(spec->wrapper_type, "minicpmv");
  const int64_t vision = MiniCpmVisionParams(1152, 4304, 27, 4096, 96);
  EXPECT_EQ(spec->num_vision_params(), vision);
  // Llama-3-8B: 8,030,261,248.
  EXPECT_EQ(spec->num_params(), vision + 8030261248LL);
  EXPECT_EQ(spec->num_params(), 8537092336LL);  // "8.54B params" on the model card
}

// 1024 x 682 (the reference table's image): ratio 3.48 of 448^2, so 3 to 5 slices; the 2 x 2 grid
// is closest to the aspect 1.50. The resized image and each slice are 546 x 364: 39 x 26 = 1014
// patches, the "5 patches, 1014" the table names.
TEST(MiniCpmVTest, SlicesOfTheReferenceImage) {
  auto spec = ParseModelConfig(RowConfig("minicpm-v-2.5").dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(ImageTiles(*spec, 682, 1024), 5);
  const VisionPasses p = VisionTowerPasses(*spec, 1, 682, 1024);
  EXPECT_EQ(p.batch, 5);
  EXPECT_EQ(p.tokens, 1014);
  // Five passes of 96 queries between two markers, a newline between the two slice rows.
  EXPECT_EQ(ImageTokens(*spec, 682, 1024), 5 * 98 + 1);
  // A 448 x 448 image is not cut: one pass of 32 x 32 patches.
  EXPECT_EQ(ImageTiles(*spec, 448, 448), 1);
  EXPECT_EQ(VisionTowerPasses(*spec, 2, 448, 448).batch, 2);
  EXPECT_EQ(VisionTowerPasses(*spec, 1, 448, 448).tokens, 1024);
  EXPECT_EQ(ImageTokens(*spec, 448, 448), 98);
  // A wide panorama: at most max_slice_nums (9) slices.
  EXPECT_LE(ImageTiles(*spec, 448, 448 * 40), 10);
}

TEST(MiniCpmVTest, VersionsAndDroppedLayer) {
  json c = RowConfig("minicpm-v-2.5");
  c["drop_vision_last_layer"] = true;
  auto dropped = ParseModelConfig(c.dump());
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  const int64_t layer = 4 * (1152 * 1152 + 1152) + 2 * 1152 * 4304 + 4304 + 1152 + 4 * 1152;
  EXPECT_EQ(dropped->num_params(), 8537092336LL - layer);

  c = RowConfig("minicpm-v-2.5");
  c["version"] = 2.0;
  auto old = ParseModelConfig(c.dump());
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("version 2"), std::string::npos) << old.status();

  // 2.6: Qwen2-7B under the same tower and resampler (64 queries of 3584).
  c = RowConfig("minicpm-v-2.5");
  c["version"] = 2.6;
  c["hidden_size"] = 3584;
  c["intermediate_size"] = 18944;
  c["num_attention_heads"] = 28;
  c["num_key_value_heads"] = 4;
  c["num_hidden_layers"] = 28;
  c["vocab_size"] = 151666;
  c["query_num"] = 64;
  c["vision_config"]["model_type"] = "siglip";
  auto v26 = ParseModelConfig(c.dump());
  ASSERT_TRUE(v26.ok()) << v26.status();
  EXPECT_EQ(v26->model_type, "qwen2");
  EXPECT_EQ(v26->num_vision_params(), MiniCpmVisionParams(1152, 4304, 27, 3584, 64));

  c = RowConfig("minicpm-v-2.5");
  c["slice_config"]["patch_size"] = 16;
  auto bad = ParseModelConfig(c.dump());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("slice_config.patch_size=16"), std::string::npos)
      << bad.status();
}

}  // namespace
}  // namespace fleetplan::estimator
