// GLM-4.5-Air and DeepSeek-V3: parameter counts recomputed from transformers' modules
// (modeling_glm4_moe.py, modeling_deepseek_v3.py) and checked against the published totals; their
// MTP layers (num_nextn_predict_layers) as vLLM's drafter builds them (glm4_moe_mtp.py,
// deepseek_mtp.py: enorm, hnorm, eh_proj 2H -> H, one decoder layer, shared_head norm + head; the
// embedding shared with the target, v1 spec_decode load_eagle_model) and counted only when
// speculative decoding asks for them.

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/testing/test_models.h"
#include "planner/estimator/vllm.h"

namespace fleetplan::estimator {
namespace {

using nlohmann::json;

json ReadConfig(const std::string& name) { return testing::TestModelJson(name); }

// tests/data/models: the published configs (recalled; see their _source).
json Glm45Air() { return ReadConfig("glm-4.5-air.json"); }

json DeepSeekV3() { return ReadConfig("deepseek-v3.json"); }

TEST(Glm4MoeTest, Glm45AirParametersAreThePublished106B) {
  auto spec = ParseModelConfig(Glm45Air().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << spec->notes.back();
  const int64_t h = 4096, q = 96 * 128, kv = 8 * 128;
  const int64_t attention = h * q + q + 2 * (h * kv + kv) + q * h;  // q/k/v biased, o not
  const int64_t dense = 3 * h * 10944;
  const int64_t experts = 128;
  // Router weight + the e_score_correction_bias buffer; experts; one shared expert of 1408.
  const int64_t moe = experts * h + experts + experts * 3 * h * 1408 + 3 * h * 1408;
  const int64_t layers = 46 * (attention + 2 * h) + dense + 45 * moe;
  const int64_t total = layers + 2 * 151552 * h + h;
  EXPECT_EQ(spec->num_params(), total);
  EXPECT_NEAR(static_cast<double>(total) / 1e9, 106.85, 0.01);  // "106B total parameters"
  // The MTP layer: one more MoE decoder layer, enorm + hnorm, eh_proj, shared_head norm + head.
  ASSERT_NE(spec->mtp, nullptr);
  EXPECT_EQ(spec->mtp->num_layers, 1);
  EXPECT_EQ(spec->mtp->num_params(), attention + 2 * h + moe + 2 * h + 2 * h * h + h + 151552 * h);
}

TEST(Glm4MoeTest, DeepSeekV3ParametersAndMtp) {
  auto spec = ParseModelConfig(DeepSeekV3().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << spec->notes.back();
  EXPECT_EQ(spec->num_params(), 671026419200LL);  // the 671B of the DeepSeek-V3 report
  ASSERT_NE(spec->mtp, nullptr);
  const int64_t h = 7168;
  const int64_t attention =
      h * 1536 + 1536 + 1536 * 128 * 192 + h * 576 + 512 + 512 * 128 * 256 + 128 * 128 * h;
  const int64_t moe = 256 * h + 256 + 256 * 3 * h * 2048 + 3 * h * 2048;
  const int64_t mtp = attention + 2 * h + moe + 2 * h + 2 * h * h + h + 129280LL * h;
  EXPECT_EQ(spec->mtp->num_params(), mtp);
  // With its own embedding the module is the report's "14B" MTP weights.
  EXPECT_NEAR(static_cast<double>(mtp + 129280LL * h) / 1e9, 13.46, 0.01);
  EXPECT_TRUE(spec->mtp->quant.quantized());  // the MTP layer is FP8 like the rest
}

// vLLM with --speculative-config '{"method": "mtp"}': the MTP layer's weights and its KV join every
// rank; a deployment that fits without it does not with it. n-gram drafting adds no weights.
TEST(Glm4MoeTest, MtpDrafterTakesMemoryNgramDoesNot) {
  auto spec = ParseModelConfig(Glm45Air().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EstimateRequest plain;
  plain.engine = Engine::kVllm;
  plain.gpu_memory_bytes = 140 * kGiB;
  plain.parallelism.tp = 2;
  plain.context_tokens = 8192;
  auto base = Estimate(*spec, plain);
  ASSERT_TRUE(base.ok()) << base.status();

  EstimateRequest mtp = plain;
  mtp.vllm.speculative_method = SpeculativeMethod::kMtp;
  mtp.vllm.num_speculative_tokens = 1;
  auto with = Estimate(*spec, mtp);
  ASSERT_TRUE(with.ok()) << with.status();
  const int64_t added = with->stages[0].weights_bytes - base->stages[0].weights_bytes;
  // bf16 on each of tp 2: half the MoE layer's attention, experts and shared expert (1.17 B
  // parameters), the replicated router and eh_proj (34 M), half the head (310 M): 3.03 GB.
  EXPECT_GT(added, 2'950'000'000);
  EXPECT_LT(added, 3'100'000'000);
  EXPECT_LT(with->kv_cache_tokens, base->kv_cache_tokens);
  auto fit = FitVllm(*spec, mtp);
  ASSERT_TRUE(fit.ok()) << fit.status();
  const std::string line = VllmServeCommand("zai-org/GLM-4.5-Air", *fit);
  EXPECT_NE(line.find("\"method\":\"mtp\""), std::string::npos) << line;

  EstimateRequest ngram = plain;
  ngram.vllm.speculative_method = SpeculativeMethod::kNgram;
  ngram.vllm.num_speculative_tokens = 4;
  auto lookup = Estimate(*spec, ngram);
  ASSERT_TRUE(lookup.ok()) << lookup.status();
  EXPECT_EQ(lookup->stages[0].weights_bytes, base->stages[0].weights_bytes);
  auto ngram_fit = FitVllm(*spec, ngram);
  ASSERT_TRUE(ngram_fit.ok()) << ngram_fit.status();
  const std::string ngram_line = VllmServeCommand("zai-org/GLM-4.5-Air", *ngram_fit);
  EXPECT_NE(ngram_line.find("\"method\":\"ngram\""), std::string::npos) << ngram_line;

  // A model without MTP layers cannot draft with them.
  json none = Glm45Air();
  none.erase("num_nextn_predict_layers");
  auto plain_spec = ParseModelConfig(none.dump());
  ASSERT_TRUE(plain_spec.ok()) << plain_spec.status();
  EXPECT_EQ(plain_spec->mtp, nullptr);
  auto refused = Estimate(*plain_spec, mtp);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("num_nextn_predict_layers"), std::string::npos)
      << refused.status();
}

}  // namespace
}  // namespace fleetplan::estimator
