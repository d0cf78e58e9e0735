// Phi-3.5-vision: parameters recomputed from modeling_phi3_v.py / image_embedding_phi3_v.py and
// checked against the published 4.15B; the HD transform's crops and image tokens
// (image_processing_phi3_v.py calc_hd_transform_size, the num_img_tokens formula).

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

json PhiRowConfig() {
  std::ifstream in(std::string(FLEETPLAN_TESTDATA_DIR) + "/openvino/openvino-vlm-s0.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const json table = json::parse(ss.str());
  for (const json& row : table["rows"]) {
    if (row["name"] == "phi-3.5-vision-instruct") return row["config"];
  }
  return json();
}

TEST(Phi3VisionTest, ParametersAreThePublished415B) {
  auto spec = ParseModelConfig(PhiRowConfig().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << spec->notes.back();
  EXPECT_EQ(spec->model_type, "phi3");
  // CLIPVisionModel ViT-L/14-336 (class, patch conv without bias, 577 positions, pre and post
  // LayerNorm, 24 layers) + glb_GN, sub_GN + img_projection 4096 -> 3072 -> 3072 with biases.
  const int64_t d = 1024, inter = 4096;
  const int64_t layer = 4 * (d * d + d) + (d * inter + inter) + (inter * d + d) + 4 * d;
  const int64_t clip = d + 3 * 14 * 14 * d + 577 * d + 2 * d + 24 * layer + 2 * d;
  const int64_t projector = 2 * 4096 + (4096 * 3072 + 3072) + (3072 * 3072 + 3072);
  EXPECT_EQ(spec->num_vision_params(), clip + projector);
  // Phi-3 mini: fused qkv 3 x 3072, o, gate_up 2 x 8192, down, two norms; embeddings, head.
  const int64_t h = 3072;
  const int64_t text =
      32 * (h * 3 * h + h * h + h * 2 * 8192 + 8192 * h + 2 * h) + 2 * 32064 * h + h;
  EXPECT_EQ(spec->num_params(), clip + projector + text);
  EXPECT_EQ(spec->num_params(), 4146621440LL);  // "4.15B params" on the model card
}

// num_crops 4: 1024 x 682 scales to 672 wide (2 crops), 447 high padded to 672: 2 x 2 crops and
// the global view, the "5 patches x 577" of the reference table; tokens 5 x 144 + 1 + 3 x 12.
TEST(Phi3VisionTest, HdTransformCropsAndTokens) {
  auto spec = ParseModelConfig(PhiRowConfig().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(ImageTiles(*spec, 682, 1024), 5);
  EXPECT_EQ(ImageTokens(*spec, 682, 1024), 757);
  const VisionPasses p = VisionTowerPasses(*spec, 1, 682, 1024);
  EXPECT_EQ(p.batch, 5);
  EXPECT_EQ(p.tokens, 577);
  // Portrait: the transform transposes, the crop grid too.
  EXPECT_EQ(ImageTiles(*spec, 1024, 682), 5);
  EXPECT_EQ(ImageTokens(*spec, 1024, 682), 757);
  // The transform scales up as well as down: 336 x 336 becomes 672 x 672 under 4 crops.
  EXPECT_EQ(ImageTiles(*spec, 336, 336), 5);
  // With num_crops 1, one crop and the global view.
  json one = PhiRowConfig();
  one["num_crops"] = 1;
  auto single = ParseModelConfig(one.dump());
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_EQ(ImageTiles(*single, 336, 336), 2);
  EXPECT_EQ(ImageTokens(*single, 1024, 682), 2 * 144 + 1 + 2 * 12);

  // Without num_crops, 16 is assumed and said: scale 4 (1344 wide, 895 high -> 3 rows).
  json c = PhiRowConfig();
  c.erase("num_crops");
  auto wide = ParseModelConfig(c.dump());
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_EQ(ImageTiles(*wide, 682, 1024), 13);
  EXPECT_EQ(ImageTokens(*wide, 682, 1024), 13 * 144 + 1 + 4 * 12);
  bool said = false;
  for (const std::string& n : wide->notes) said |= n.find("num_crops") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(Phi3VisionTest, OtherTowersAndEmbeddingsRefusedByName) {
  json c = PhiRowConfig();
  c["img_processor"]["model_name"] = "openai/clip-vit-base-patch16";
  auto tower = ParseModelConfig(c.dump());
  ASSERT_FALSE(tower.ok());
  EXPECT_NE(tower.status().message().find("img_processor.model_name"), std::string::npos)
      << tower.status();
  c = PhiRowConfig();
  c["embd_layer"]["use_hd_transform"] = false;
  auto flat = ParseModelConfig(c.dump());
  ASSERT_FALSE(flat.ok());
  EXPECT_NE(flat.status().message().find("use_hd_transform"), std::string::npos) << flat.status();
  c = PhiRowConfig();
  c.erase("img_processor");
  auto missing = ParseModelConfig(c.dump());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("img_processor is missing"), std::string::npos)
      << missing.status();
}

}  // namespace
}  // namespace fleetplan::estimator
