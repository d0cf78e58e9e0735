// Pixtral towers: Mistral-Small-3.1 (mistral3) and Pixtral-12B (LLaVA layout), parameters
// recomputed from transformers' modules (modeling_pixtral.py, modeling_mistral3.py,
// modeling_llava.py) and checked against the published 24B and 12.4B; image tokens as
// PixtralProcessor counts them.

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/testing/test_models.h"

namespace fleetplan::estimator {
namespace {

std::string Config(const std::string& name) { return testing::TestModelText(name); }

// PixtralVisionModel: unbiased patch conv, ln_pre, per layer q/k/v/o, gate/up/down and two norms.
int64_t PixtralTower(int64_t d, int64_t inter, int64_t layers, int64_t patch) {
  return 3 * patch * patch * d + d + layers * (4 * d * d + 3 * d * inter + 2 * d);
}

// A Mistral decoder with an untied head.
int64_t MistralText(int64_t h, int64_t inter, int64_t layers, int64_t heads, int64_t kv,
                    int64_t head_dim, int64_t vocab) {
  const int64_t attention = 2 * h * heads * head_dim + 2 * h * kv * head_dim;
  return layers * (attention + 3 * h * inter + 2 * h) + 2 * vocab * h + h;
}

TEST(PixtralTest, MistralSmall31IsThePublished24B) {
  auto spec = ParseModelConfig(Config("mistral-small-3.1-24b.json"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << spec->notes.back();
  const int64_t tower = PixtralTower(1024, 4096, 24, 14);
  // norm, patch merger 4 x 1024 -> 1024, linear_1 1024 -> 5120, linear_2, no biases.
  const int64_t projector = 1024 + 4096 * 1024 + 1024 * 5120 + 5120 * 5120;
  EXPECT_EQ(spec->num_vision_params(), tower + projector);
  EXPECT_EQ(spec->num_params(),
            tower + projector + MistralText(5120, 32768, 40, 32, 8, 128, 131072));
  EXPECT_EQ(spec->num_params(), 24011361280LL);  // "24B"
  // 1024 x 682 stays at its size: 28-px units, 25 rows of 37, a break token per row; the tower
  // sees 50 x 74 patches.
  EXPECT_EQ(ImageTokens(*spec, 682, 1024), 25 * 38);
  const VisionPasses p = VisionTowerPasses(*spec, 2, 682, 1024);
  EXPECT_EQ(p.batch, 1);
  EXPECT_EQ(p.tokens, 2 * 50 * 74);
  // Larger than 1540 on its longest edge: scaled down to 1540 x 1026 (55 x 37 units).
  EXPECT_EQ(ImageTokens(*spec, 2048, 3072), 37 * 56);
}

TEST(PixtralTest, Pixtral12BInTheLlavaLayout) {
  auto spec = ParseModelConfig(Config("pixtral-12b.json"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << spec->notes.back();
  const int64_t tower = PixtralTower(1024, 4096, 24, 16);
  const int64_t projector = 1024 * 5120 + 5120 + 5120 * 5120 + 5120;  // LLaVA's, biased
  EXPECT_EQ(spec->num_vision_params(), tower + projector);
  const int64_t total = tower + projector + MistralText(5120, 14336, 40, 32, 8, 128, 131072);
  EXPECT_EQ(spec->num_params(), total);
  EXPECT_NEAR(static_cast<double>(total) / 1e9, 12.68, 0.01);  // "12.7B" (12B decoder + 0.4B ViT)
  // 16-px units, no merge: 43 rows of 64 (+ a break each).
  EXPECT_EQ(ImageTokens(*spec, 682, 1024), 43 * 65);
}

TEST(PixtralTest, UnknownTowersAreRefused) {
  std::string c = Config("pixtral-12b.json");
  c.replace(c.find("\"pixtral\""), 9, "\"dinov2\"");
  auto spec = ParseModelConfig(c);
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("vision_config.model_type=\"dinov2\""), std::string::npos)
      << spec.status();
}

}  // namespace
}  // namespace fleetplan::estimator
