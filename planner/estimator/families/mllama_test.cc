// Llama 3.2 Vision (families/mllama.cc): the parameter count recomputed from transformers'
// modeling_mllama.py and equal to the published checkpoint's 10,670,220,835; the cross-attention
// layers' K/V cached per image, not per token; the engines not modelled for it refused by name.

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/testing/test_models.h"

namespace fleetplan::estimator {
namespace {

using nlohmann::json;

json Llama32Vision() { return testing::TestModelJson("llama-3.2-11b-vision.json"); }

TEST(MllamaTest, ParametersAreThePublished10_67B) {
  auto spec = ParseModelConfig(Llama32Vision().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << spec->notes.back();
  // Vision: patch conv, class embedding, the gated position embedding with its tile table (9
  // aspect-ratio ids x 4 tiles x 1601 patches), two gated aspect-ratio embeddings, two
  // LayerNorms, 32 local and 8 gated global layers.
  const int64_t d = 1280, vi = 5120, patches = 1601;
  const int64_t layer = 4 * d * d + d * vi + vi + vi * d + d + 4 * d;
  const int64_t tower = 3 * 14 * 14 * d + d + (1 + patches * d + 9 * 4 * patches * d) +
                        2 * (9 * 4 * d + 1) + 4 * d + 32 * layer + 8 * (layer + 2);
  const int64_t projector = 7680 * 4096 + 4096;
  EXPECT_EQ(spec->num_vision_params(), tower + projector);
  // Text: 128256 + 8 embedding rows, 32 Llama layers and 8 cross-attention layers (q_norm, k_norm
  // and two gates more), the final norm and a 128256-row head.
  const int64_t h = 4096;
  const int64_t attention = 2 * h * h + 2 * h * 1024;
  const int64_t self = attention + 3 * h * 14336 + 2 * h;
  const int64_t cross = self + 2 * 128 + 2;
  const int64_t text = (128256 + 8) * h + 32 * self + 8 * cross + h + 128256 * h;
  EXPECT_EQ(spec->num_language_params(), text);
  EXPECT_EQ(spec->num_params(), 10'670'220'835);
  EXPECT_TRUE(spec->has_cross_attention());
}

// transformers: each image adds its 4 tiles x 1601 rows of K/V to each of the 8 cross-attention
// layers (and one <|image|> token to the 32 self-attention layers); without an image the
// cross-attention layers are skipped and cache nothing.
TEST(MllamaTest, CrossAttentionCachesPerImage) {
  auto spec = ParseModelConfig(Llama32Vision().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EstimateRequest req;
  req.engine = Engine::kHfTransformers;
  req.gpu_memory_bytes = 80 * kGiB;
  req.hf.batch = 2;
  req.hf.prompt_tokens = 512;
  auto text_only = Estimate(*spec, req);
  ASSERT_TRUE(text_only.ok()) << text_only.status();
  const int64_t kv_row = 8 * 256 * 2;  // 8 KV heads x (K + V) x 128 dims, bf16
  EXPECT_EQ(text_only->stages[0].kv_cache_bytes, 2 * 512 * 32 * kv_row);
  req.hf.images = 1;
  auto one = Estimate(*spec, req);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->stages[0].kv_cache_bytes - text_only->stages[0].kv_cache_bytes,
            2 * (4 * 1601 * 8 * kv_row + 32 * kv_row));
  // generate: the cross rows stay, the self-attention cache grows with the new tokens.
  req.hf.generate = true;
  req.hf.new_tokens = 65;
  auto gen = Estimate(*spec, req);
  ASSERT_TRUE(gen.ok()) << gen.status();
  EXPECT_GE(gen->stages[0].kv_cache_bytes, one->stages[0].kv_cache_bytes);
  // Eager attention in the global layers spans all four tiles of an image at once.
  req.hf.generate = false;
  req.hf.eager_attention = true;
  auto eager = Estimate(*spec, req);
  ASSERT_TRUE(eager.ok()) << eager.status();
  const int64_t global = int64_t{2} * 16 * (4 * 1608) * (4 * 1608) * 4;  // fp32 scores at least
  EXPECT_GT(eager->stages[0].activation_peak_bytes, one->stages[0].activation_peak_bytes + global);
}

TEST(MllamaTest, EnginesNotModelledAreRefused) {
  auto spec = ParseModelConfig(Llama32Vision().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  for (Engine e : {Engine::kVllm, Engine::kSglang, Engine::kOpenvino, Engine::kLlamaCpp}) {
    EstimateRequest req;
    req.engine = e;
    req.gpu_memory_bytes = 80 * kGiB;
    auto est = Estimate(*spec, req);
    ASSERT_FALSE(est.ok()) << EngineName(e);
    EXPECT_EQ(est.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(est.status().message().find(absl::StrCat("engine=", EngineName(e))),
              std::string::npos)
        << est.status();
    EXPECT_NE(est.status().message().find("cross-attention"), std::string::npos) << est.status();
  }
  EstimateRequest training;
  training.engine = Engine::kTraining;
  training.gpu_memory_bytes = 80 * kGiB;
  training.training.seq_tokens = 1024;
  EXPECT_TRUE(Estimate(*spec, training).ok());
}

TEST(MllamaTest, BadConfigsNameTheField) {
  struct Case {
    const char* path;  // text_config or vision_config key
    json value;
    const char* expect;
  } cases[] = {
      {"text_config.cross_attention_layers", json::array(), "cross_attention_layers"},
      {"text_config.cross_attention_layers", json::array({3, 40}), "40"},
      {"text_config.cross_attention_layers", json::array({3, 3}), "twice"},
      {"text_config.cross_attention_layers", json::array({"x"}), "cross_attention_layers"},
      {"vision_config.vision_output_dim", 1280, "vision_output_dim"},
      {"vision_config.attention_heads", 7, "attention_heads"},
      {"vision_config.image_size", 10, "image_size"},
  };
  for (const Case& c : cases) {
    json config = Llama32Vision();
    const std::string path = c.path;
    const size_t dot = path.find('.');
    config[path.substr(0, dot)][path.substr(dot + 1)] = c.value;
    auto spec = ParseModelConfig(config.dump());
    ASSERT_FALSE(spec.ok()) << c.path;
    EXPECT_NE(spec.status().message().find(c.expect), std::string::npos)
        << c.path << ": " << spec.status();
  }
}

}  // namespace
}  // namespace fleetplan::estimator
