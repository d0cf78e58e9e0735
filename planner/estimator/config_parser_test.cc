#include "planner/estimator/config_parser.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace fleetplan::estimator {
namespace {

std::string ReadModel(const std::string& slug) {
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/" + slug + ".json");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every model file with a known `_params` (transformers' instantiated count) must match exactly.
TEST(ConfigParserTest, ParameterCountsMatchTransformersForEveryModelFile) {
  int checked = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models")) {
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    auto json = nlohmann::json::parse(ss.str());
    auto spec = ParseModelConfig(ss.str());
    ASSERT_TRUE(spec.ok()) << entry.path() << ": " << spec.status();
    if (!json.contains("_params")) continue;
    EXPECT_EQ(spec->num_params(), json["_params"].get<int64_t>())
        << entry.path().filename() << " language=" << spec->num_language_params()
        << " vision=" << spec->num_vision_params();
    ++checked;
  }
  EXPECT_GE(checked, 26);
}

TEST(ConfigParserTest, ExampleCatalogParsesWithExactCounts) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(FLEETPLAN_TESTDATA_DIR) +
                                                               "/../../deploy/examples/models")) {
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    auto json = nlohmann::json::parse(ss.str());
    auto spec = ParseModelConfig(ss.str());
    ASSERT_TRUE(spec.ok()) << entry.path() << ": " << spec.status();
    ++checked;
    if (json.contains("_params")) {
      EXPECT_EQ(spec->num_params(), json["_params"].get<int64_t>()) << entry.path().filename();
    }
  }
  EXPECT_GE(checked, 9);
}

struct FamilyCase {
  const char* slug;
  const char* model_type;
  int64_t layers;
  int num_kinds;
  bool moe;
  bool tied;
};

TEST(ConfigParserTest, FamiliesParseTheirStructure) {
  const FamilyCase cases[] = {
      {"llama-3.1-8b", "llama", 32, 1, false, false},
      {"qwen2.5-0.5b", "qwen2", 24, 1, false, true},
      {"qwen3-8b", "qwen3", 36, 1, false, false},
      {"gemma-2-2b", "gemma2", 26, 2, false, true},
      {"gemma-3-4b-it", "gemma3_text", 34, 2, false, true},
      {"mixtral-8x7b-v0.1-4l", "mixtral", 4, 1, true, false},
      {"qwen1.5-moe-a2.7b", "qwen2_moe", 24, 1, true, false},
      {"deepseek-v2-lite", "deepseek_v2", 27, 2, true, false},
      {"gpt-oss-20b", "gpt_oss", 24, 2, true, false},
      {"phi-2", "phi", 32, 1, false, false},
      {"granite-3.1-2b-instruct", "granite", 40, 1, false, true},
  };
  for (const FamilyCase& c : cases) {
    auto spec = ParseModelConfig(ReadModel(c.slug));
    ASSERT_TRUE(spec.ok()) << c.slug << ": " << spec.status();
    EXPECT_EQ(spec->model_type, c.model_type) << c.slug;
    EXPECT_EQ(spec->num_layers, c.layers) << c.slug;
    EXPECT_EQ(static_cast<int>(spec->layer_kinds.size()), c.num_kinds) << c.slug;
    EXPECT_EQ(spec->is_moe(), c.moe) << c.slug;
    EXPECT_EQ(spec->tie_word_embeddings, c.tied) << c.slug;
    EXPECT_FALSE(spec->generic_fallback) << c.slug;
  }
}

TEST(ConfigParserTest, SlidingWindowPatterns) {
  auto gemma2 = ParseModelConfig(ReadModel("gemma-2-2b"));
  ASSERT_TRUE(gemma2.ok());
  EXPECT_EQ(gemma2->attention(0).sliding_window, 4096);  // even layers slide
  EXPECT_EQ(gemma2->attention(1).sliding_window, 0);
  auto gemma3 = ParseModelConfig(ReadModel("gemma-3-4b-it"));
  ASSERT_TRUE(gemma3.ok());
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(gemma3->attention(i).sliding_window, (i + 1) % 6 == 0 ? 0 : 1024) << i;
  }
  auto oss = ParseModelConfig(ReadModel("gpt-oss-20b"));
  ASSERT_TRUE(oss.ok());
  EXPECT_EQ(oss->attention(0).sliding_window, 128);
  EXPECT_EQ(oss->attention(1).sliding_window, 0);
}

TEST(ConfigParserTest, MlaAttention) {
  auto spec = ParseModelConfig(ReadModel("deepseek-v2-lite"));
  ASSERT_TRUE(spec.ok());
  const AttentionSpec& a = spec->attention(0);
  EXPECT_TRUE(a.mla);
  EXPECT_EQ(a.kv_lora_rank, 512);
  EXPECT_EQ(a.qk_rope_head_dim, 64);
  EXPECT_EQ(a.head_dim, 192);
  EXPECT_EQ(a.v_head_dim, 128);
  EXPECT_EQ(spec->layer_kinds[static_cast<size_t>(spec->layer_kind_of[0])].name, "dense");
  EXPECT_EQ(spec->layer_kinds[static_cast<size_t>(spec->layer_kind_of[1])].name, "moe");
}

TEST(ConfigParserTest, VisionLanguageWrappers) {
  auto gemma3 = ParseModelConfig(ReadModel("gemma-3-4b-it"));
  ASSERT_TRUE(gemma3.ok());
  ASSERT_TRUE(gemma3->vision.has_value());
  EXPECT_EQ(gemma3->wrapper_type, "gemma3");
  EXPECT_EQ(gemma3->vision->fixed_tokens_per_image, 256);
  auto granite = ParseModelConfig(ReadModel("granite-vision-3.3-2b"));
  ASSERT_TRUE(granite.ok());
  ASSERT_TRUE(granite->vision.has_value());
  EXPECT_EQ(granite->model_type, "granite");
  EXPECT_EQ(granite->vision->token_rule, VisionSpec::TokenRule::kLlavaNext);
  auto kimi = ParseModelConfig(ReadModel("kimi-vl-a3b-instruct"));
  ASSERT_TRUE(kimi.ok()) << kimi.status();
  EXPECT_EQ(kimi->model_type, "deepseek_v3");
  EXPECT_FALSE(kimi->notes.empty());
}

TEST(ConfigParserTest, Qwen25VlParsesTopLevelTextFields) {
  // Qwen2.5-VL-7B-Instruct's published config (language fields at the top level). Parameter count
  // from transformers' Qwen2_5_VLForConditionalGeneration on the meta device: 8,292,166,656.
  const char* config = R"({
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
    "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28,
    "num_hidden_layers": 28, "num_key_value_heads": 4, "vocab_size": 152064,
    "max_position_embeddings": 128000, "rms_norm_eps": 1e-06, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16",
    "vision_config": {"depth": 32, "hidden_act": "silu", "hidden_size": 1280,
      "intermediate_size": 3420, "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584,
      "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14, "window_size": 112,
      "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2, "temporal_patch_size": 2}
  })";
  auto spec = ParseModelConfig(config);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->model_type, "qwen2");
  ASSERT_TRUE(spec->vision.has_value());
  EXPECT_EQ(spec->num_params(), 8292166656);
}

TEST(ConfigParserTest, UnknownModelTypeFallsBackToGenericDecoder) {
  const char* config = R"({"model_type": "brand_new_lm", "hidden_size": 1024,
    "num_hidden_layers": 4, "num_attention_heads": 16, "num_key_value_heads": 4,
    "intermediate_size": 4096, "vocab_size": 32000})";
  auto spec = ParseModelConfig(config);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->generic_fallback);
  ASSERT_FALSE(spec->notes.empty());
  EXPECT_NE(spec->notes[0].find("brand_new_lm"), std::string::npos);
  // embed + 4 x (q,k,v,o + 3 mlp + 2 norms) + norm + lm_head
  const int64_t per_layer = 1024 * 1024 * 2 + 1024 * 256 * 2 + 3 * 1024 * 4096 + 2 * 1024;
  EXPECT_EQ(spec->num_params(), 2 * 32000 * 1024 + 4 * per_layer + 1024);
}

struct BadCase {
  const char* what;
  std::string config;
  const char* expect;
};

std::string Llama(const std::string& override_fields) {
  return R"({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "intermediate_size": 14336, "vocab_size": 128256)" +
         override_fields + "}";
}

TEST(ConfigParserTest, BadImageGridPinpointsNameTheEntry) {
  const struct {
    nlohmann::json pinpoints;
    const char* expect;
  } cases[] = {
      {nlohmann::json::parse("[[384, 0]]"),
       "image_grid_pinpoints entry [384,0] must be [height, width] > 0"},
      {nlohmann::json::parse("[[-384, 384]]"), "entry [-384,384]"},
      {nlohmann::json::parse("[[384]]"), "entry [384]"},
      {nlohmann::json::parse(R"([["384", 384]])"), "entry [\"384\",384]"},
      {nlohmann::json::parse("[384]"), "entry 384"},
  };
  for (const auto& c : cases) {
    nlohmann::json config = nlohmann::json::parse(ReadModel("granite-vision-3.3-2b"));
    config["image_grid_pinpoints"] = c.pinpoints;
    auto spec = ParseModelConfig(config.dump());
    ASSERT_FALSE(spec.ok()) << c.pinpoints.dump();
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(spec.status().message().find(c.expect), std::string::npos) << spec.status();
  }
  nlohmann::json config = nlohmann::json::parse(ReadModel("granite-vision-3.3-2b"));
  config["image_grid_pinpoints"] = "384x384";
  auto wrong_type = ParseModelConfig(config.dump());
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_NE(wrong_type.status().message().find("image_grid_pinpoints"), std::string::npos)
      << wrong_type.status();
}

TEST(ConfigParserTest, BadConfigsNameFieldAndValue) {
  const BadCase cases[] = {
      {"not json", "{", "not valid JSON"},
      {"array", "[1,2]", "must be a JSON object"},
      {"no model_type", R"({"hidden_size": 1})", "model_type is missing"},
      {"missing hidden", R"({"model_type": "llama", "num_hidden_layers": 2})",
       "hidden_size is missing"},
      {"zero kv heads", Llama(R"(, "num_key_value_heads": 0)"),
       "num_key_value_heads=0 must be >= 1"},
      {"negative heads", Llama(R"(, "num_attention_heads": -4)"),
       "num_attention_heads=-4 must be >= 1"},
      {"kv not dividing", Llama(R"(, "num_key_value_heads": 5)"),
       "num_attention_heads=32 is not a multiple of num_key_value_heads=5"},
      {"heads not dividing hidden",
       Llama(R"(, "num_attention_heads": 30, "num_key_value_heads": 30)"),
       "hidden_size=4096 is not divisible by num_attention_heads=30"},
      {"string layers", Llama(R"(, "num_hidden_layers": "32")"),
       "num_hidden_layers=\"32\" must be an integer"},
      {"fractional", Llama(R"(, "intermediate_size": 1.5)"),
       "intermediate_size=1.5 must be an integer"},
      {"absurd hidden", Llama(R"(, "hidden_size": 1000000000000)"),
       "hidden_size=1000000000000 is absurdly large"},
      {"overflowing params",
       Llama(
           R"(, "hidden_size": 4000000, "num_attention_heads": 1, "num_hidden_layers": 4000, "intermediate_size": 4000000)"),
       "parameters, more than the limit"},
      {"bad dtype", Llama(R"(, "torch_dtype": "float64")"), "torch_dtype=\"float64\""},
      {"bad quant", Llama(R"(, "quantization_config": {"quant_method": "magic"})"),
       "quant_method=\"magic\""},
      {"gemma3 nested",
       R"({"model_type": "gemma3", "text_config": {"hidden_size": 0}, "vision_config": {}})",
       "text_config.hidden_size=0 must be >= 1"},
      {"vlm no vision",
       R"({"model_type": "llava", "text_config": {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 64, "vocab_size": 10}})",
       "vision_config is missing"},
      {"layer_types not array", Llama(R"(, "layer_types": "full_attention")"),
       "layer_types=\"full_attention\" must be an array"},
      {"layer_types short", Llama(R"(, "layer_types": ["full_attention"])"),
       "layer_types has 1 entries, fewer than num_hidden_layers=32"},
  };
  for (const BadCase& c : cases) {
    auto spec = ParseModelConfig(c.config);
    ASSERT_FALSE(spec.ok()) << c.what;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(spec.status().message().find(c.expect), std::string::npos)
        << c.what << ": " << spec.status().message();
  }
}

TEST(ConfigParserTest, QuantizationFromConfigAndOverride) {
  auto fp8 = ParseModelConfig(ReadModel("llama-3.3-70b-instruct-fp8-dynamic"));
  ASSERT_TRUE(fp8.ok());
  EXPECT_EQ(fp8->quant.method, QuantSpec::Method::kFp8);
  auto w8a8 = ParseModelConfig(ReadModel("qwen2.5-7b-instruct-quantized.w8a8"));
  ASSERT_TRUE(w8a8.ok());
  EXPECT_EQ(w8a8->quant.method, QuantSpec::Method::kInt8);
  auto oss = ParseModelConfig(ReadModel("gpt-oss-20b"));
  ASSERT_TRUE(oss.ok());
  EXPECT_EQ(oss->quant.method, QuantSpec::Method::kMxfp4);
  EXPECT_TRUE(oss->quant.experts_only);
  auto awq = ParseModelConfig(ReadModel("llama-3.1-8b"), {.quantization = "awq", .group_size = 64});
  ASSERT_TRUE(awq.ok());
  EXPECT_EQ(awq->quant.method, QuantSpec::Method::kInt4);
  EXPECT_EQ(awq->quant.group_size, 64);
  auto bad = ParseModelConfig(ReadModel("llama-3.1-8b"), {.quantization = "int3"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("quantization=\"int3\""), std::string::npos);
}

}  // namespace
}  // namespace fleetplan::estimator

namespace fleetplan::estimator {
namespace {

struct PublishedCase {
  const char* name;
  const char* config;
  int64_t params;  // transformers' instantiated count as published on the model card / hub
};

TEST(ConfigParserTest, PublishedParameterCountsOfOtherFamilies) {
  const PublishedCase cases[] = {
      {"mistralai/Mistral-7B-v0.1",
       R"({"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
           "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
           "vocab_size": 32000, "sliding_window": 4096, "tie_word_embeddings": false})",
       7241732096},
      {"facebook/opt-125m",
       R"({"model_type": "opt", "hidden_size": 768, "ffn_dim": 3072, "num_attention_heads": 12,
           "num_hidden_layers": 12, "vocab_size": 50272, "max_position_embeddings": 2048,
           "word_embed_proj_dim": 768, "do_layer_norm_before": true, "enable_bias": true})",
       125239296},
      {"microsoft/Phi-3-mini-4k-instruct",
       R"({"model_type": "phi3", "hidden_size": 3072, "intermediate_size": 8192,
           "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
           "vocab_size": 32064, "sliding_window": 2047, "tie_word_embeddings": false})",
       3821079552},
  };
  for (const PublishedCase& c : cases) {
    auto spec = ParseModelConfig(c.config);
    ASSERT_TRUE(spec.ok()) << c.name << ": " << spec.status();
    EXPECT_EQ(spec->num_params(), c.params) << c.name;
    EXPECT_FALSE(spec->generic_fallback) << c.name;
  }
}

TEST(ConfigParserTest, Qwen3MoeHasNoSharedExpertAndQkNorms) {
  auto spec = ParseModelConfig(R"({"model_type": "qwen3_moe", "hidden_size": 2048,
      "intermediate_size": 6144, "moe_intermediate_size": 768, "num_experts": 128,
      "num_experts_per_tok": 8, "num_attention_heads": 32, "num_key_value_heads": 4,
      "head_dim": 128, "num_hidden_layers": 2, "vocab_size": 1000, "mlp_only_layers": [1]})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->layer_kinds[static_cast<size_t>(spec->layer_kind_of[0])].name, "moe");
  EXPECT_EQ(spec->layer_kinds[static_cast<size_t>(spec->layer_kind_of[1])].name, "dense");
  const LayerKind& moe = spec->layer_kinds[static_cast<size_t>(spec->layer_kind_of[0])];
  EXPECT_EQ(moe.mlp.shared_intermediate_size, 0);
  // q (2048x4096) + k, v (2048x512 each) + o + q/k norms (128 each) + router + 128 experts x 3
  // x 2048 x 768 + 2 norms.
  int64_t expected = 2048 * 4096 * 2 + 2048 * 512 * 2 + 256 + 128 * 2048 +
                     int64_t{128} * 3 * 2048 * 768 + 2 * 2048;
  int64_t got = 0;
  for (const Tensor& t : moe.tensors) got += t.elements();
  EXPECT_EQ(got, expected);
}

// An EAGLE3 head's reduced vocabulary and its target's width must be integers in range.
TEST(ConfigParserTest, Eagle3HeadFieldsAreChecked) {
  const std::string base =
      R"({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 1,
          "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
          "vocab_size": 128256, )";
  struct Case {
    const char* field;
    const char* expect;
  } cases[] = {
      {R"("draft_vocab_size": 32000.5})", "draft_vocab_size"},
      {R"("draft_vocab_size": 200000})", "draft_vocab_size"},
      {R"("draft_vocab_size": -1})", "draft_vocab_size"},
      {R"("target_hidden_size": "4096"})", "target_hidden_size"},
      {R"("target_hidden_size": 1e30})", "target_hidden_size"},
  };
  for (const Case& c : cases) {
    auto spec = ParseModelConfig(base + c.field);
    ASSERT_FALSE(spec.ok()) << c.field;
    EXPECT_NE(spec.status().message().find(c.expect), std::string::npos)
        << c.field << ": " << spec.status();
  }
  auto good = ParseModelConfig(base + R"("draft_vocab_size": 32000, "target_hidden_size": 5120})");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->draft_vocab_size, 32000);
  EXPECT_EQ(good->target_hidden_size, 5120);
}

TEST(ConfigParserTest, EmptyMllamaNamesTheMissingField) {
  auto spec =
      ParseModelConfig(R"({"model_type": "mllama", "text_config": {}, "vision_config": {}})");
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("text_config.hidden_size"), std::string::npos)
      << spec.status();
}

}  // namespace
}  // namespace fleetplan::estimator
