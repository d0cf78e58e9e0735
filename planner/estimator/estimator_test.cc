#include "planner/estimator/estimator.h"

#include <fstream>
#include <sstream>
#include <string>
#include <tuple>

#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/gpu_catalog.h"
#include "planner/estimator/inverse.h"
#include "planner/estimator/quantization.h"

namespace fleetplan::estimator {
namespace {

constexpr int64_t kH100 = 85017493504;

ModelSpec Load(const std::string& slug, const ParseOptions& options = {}) {
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/" + slug + ".json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto spec = ParseModelConfig(ss.str(), options);
  EXPECT_TRUE(spec.ok()) << slug << ": " << spec.status();
  return *spec;
}

EstimateRequest Vllm(int64_t tp = 1, int64_t pp = 1) {
  EstimateRequest r;
  r.engine = Engine::kVllm;
  r.gpu_memory_bytes = kH100;
  r.parallelism = {.tp = tp, .pp = pp};
  r.vllm = {.gpu_memory_utilization = 0.95,
            .max_model_len = 8192,
            .max_num_seqs = 1024,
            .max_num_batched_tokens = 8192};
  return r;
}

// ---- Quantization: bytes of each method -------------------------------------------------------

TEST(QuantizationTest, BytesPerMethod) {
  const Tensor linear{.name = "up_proj", .out = 4096, .in = 4096, .role = TensorRole::kLinear};
  const int64_t e = 4096 * 4096;
  struct Case {
    const char* method;
    int64_t group;
    int64_t bytes;
  };
  const Case cases[] = {
      {"none", 128, 2 * e},
      {"fp8", 128, e + 4096 * 4},  // fp32 scale per output channel
      {"w8a8", 128, e + 4096 * 4},
      {"gptq", 128, e / 2 + (4096 / 128) * 4096 * 2},  // packed int4 + fp16 group scales
      {"awq", 128, e / 2 + (4096 / 128) * 4096 * 2 + (4096 / 128) * 4096 / 2},  // + int4 zeros
      {"w4a16", -1, e / 2 + 4096 * 2},                                          // per-channel
      {"bnb-nf4", 128, e / 2 + e / 64 * 4},  // fp32 absmax per 64
      {"bnb-int8", 128, e + 4096 * 4},
  };
  for (const Case& c : cases) {
    auto q = ParseQuantization(nullptr, c.method, c.group);
    ASSERT_TRUE(q.ok()) << c.method << ": " << q.status();
    EXPECT_EQ(WeightBytes(*q, linear, linear.out, linear.in, 1, DType::kBFloat16), c.bytes)
        << c.method;
  }
}

TEST(QuantizationTest, UnquantizedRolesStayInModelDtype) {
  auto q = ParseQuantization(nullptr, "gptq", 128);
  ASSERT_TRUE(q.ok());
  for (TensorRole role : {TensorRole::kEmbedding, TensorRole::kLmHead, TensorRole::kNorm,
                          TensorRole::kRouter, TensorRole::kVision, TensorRole::kBias}) {
    Tensor t{.name = "x", .out = 1024, .in = 256, .role = role};
    EXPECT_FALSE(IsQuantized(*q, t));
    EXPECT_EQ(WeightBytes(*q, t, 1024, 256, 1, DType::kBFloat16), 1024 * 256 * 2);
  }
}

TEST(QuantizationTest, Mxfp4QuantizesOnlyExperts) {
  ModelSpec oss = Load("gpt-oss-20b");
  for (const LayerKind& k : oss.layer_kinds) {
    for (const Tensor& t : k.tensors) {
      EXPECT_EQ(IsQuantized(oss.quant, t), t.role == TensorRole::kExpertLinear) << t.name;
    }
  }
  const Tensor expert{
      .name = "e", .out = 64, .in = 64, .copies = 2, .role = TensorRole::kExpertLinear};
  EXPECT_EQ(WeightBytes(oss.quant, expert, 64, 64, 2, DType::kBFloat16),
            2 * 64 * 64 / 2 + 2 * 64 * 64 / 32);
}

TEST(QuantizationTest, Fp8BlockScales) {
  auto q = ParseQuantization(nullptr, "fp8", 0);
  ASSERT_TRUE(q.ok());
  QuantSpec block = *q;
  block.block_rows = block.block_cols = 128;
  const Tensor t{.name = "down_proj", .out = 7168, .in = 2048, .role = TensorRole::kLinear};
  EXPECT_EQ(WeightBytes(block, t, 7168, 2048, 1, DType::kBFloat16), 7168 * 2048 + 56 * 16 * 4);
}

TEST(QuantizationTest, QuantizedCheckpointShrinksWeights) {
  EstimateRequest r = Vllm();
  const int64_t bf16 = Estimate(Load("qwen2.5-7b-instruct"), r)->stages[0].weights_bytes;
  const int64_t w8 =
      Estimate(Load("qwen2.5-7b-instruct-quantized.w8a8"), r)->stages[0].weights_bytes;
  const int64_t awq =
      Estimate(Load("qwen2.5-7b-instruct", {.quantization = "awq"}), r)->stages[0].weights_bytes;
  EXPECT_LT(w8, bf16 * 6 / 10);
  EXPECT_LT(awq, w8 * 7 / 10);
  // Embeddings and lm_head stay bf16: 2 x 152064 x 3584 x 2 bytes = 2.18 GB survive any method.
  EXPECT_GT(awq, int64_t{2} * 152064 * 3584 * 2);
}

// ---- KV layouts ------------------------------------------------------------------------------

TEST(KvLayoutTest, GqaMlaSlidingAndFp8) {
  EstimateRequest r = Vllm();
  // Llama-3.1-8B: 32 layers x 8 kv heads x 128 x (K+V) x 2 bytes = 131072 B/token.
  EXPECT_EQ(KvBytesPerToken(Load("llama-3.1-8b"), r, 0), 131072);
  // MLA caches the 512 + 64 latent per layer, not per head: 27 x 576 x 2.
  EXPECT_EQ(KvBytesPerToken(Load("deepseek-v2-lite"), r, 0), 27 * 576 * 2);
  // fp8 KV halves it.
  r.kv_cache_dtype = KvCacheDType::kFp8;
  EXPECT_EQ(KvBytesPerToken(Load("llama-3.1-8b"), r, 0), 65536);
}

TEST(KvLayoutTest, TpSplitsKvHeadsUntilReplicated) {
  ModelSpec llama = Load("llama-3.1-8b");  // 8 KV heads
  EXPECT_EQ(KvBytesPerToken(llama, Vllm(2), 0), 131072 / 2);
  EXPECT_EQ(KvBytesPerToken(llama, Vllm(8), 0), 131072 / 8);
  // tp = 16 > 8 kv heads would replicate; llama's 32 query heads allow it.
  EXPECT_EQ(KvBytesPerToken(llama, Vllm(16), 0), 131072 / 8);
  // MLA latent is not split by TP.
  ModelSpec ds = Load("deepseek-v2-lite");
  EXPECT_EQ(KvBytesPerToken(ds, Vllm(4), 0), KvBytesPerToken(ds, Vllm(1), 0));
}

TEST(KvLayoutTest, HybridModelsShareBlocksAcrossGroups) {
  // Gemma-2: 13 sliding + 13 full layers -> 2 groups of 13: tokens = blocks / 2 x 16.
  auto e = Estimate(Load("gemma-2-2b-it"), Vllm());
  ASSERT_TRUE(e.ok()) << e.status();
  const StageMemory& s = e->stages[0];
  EXPECT_EQ(s.kv_cache_tokens, s.num_gpu_blocks / 2 * 16);
  // Gemma-3-4b: 29 sliding + 5 full -> groups of 5: 6 + 1 = 7 groups.
  auto g3 = Estimate(Load("gemma-3-4b-it"), Vllm());
  ASSERT_TRUE(g3.ok());
  EXPECT_EQ(g3->stages[0].kv_cache_tokens, g3->stages[0].num_gpu_blocks / 7 * 16);
}

// ---- Parallelism per rank --------------------------------------------------------------------

TEST(ParallelismTest, TensorParallelSplitsWeightsButNotVocabPaddingOrLatent) {
  ModelSpec llama = Load("llama-3.1-8b");
  const int64_t w1 = Estimate(llama, Vllm(1))->stages[0].weights_bytes;
  const int64_t w2 = Estimate(llama, Vllm(2))->stages[0].weights_bytes;
  const int64_t w4 = Estimate(llama, Vllm(4))->stages[0].weights_bytes;
  // Halves, except the replicated rope cache and norms.
  const int64_t rope = 131072 * 128 * 2;
  EXPECT_NEAR(static_cast<double>(w2 - rope), static_cast<double>(w1 - rope) / 2, 1e6);
  EXPECT_NEAR(static_cast<double>(w4 - rope), static_cast<double>(w1 - rope) / 4, 1e6);
}

TEST(ParallelismTest, PipelineStagesAreUneven) {
  ModelSpec llama = Load("llama-3.1-8b");
  auto e = Estimate(llama, Vllm(1, 4));
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->stages.size(), 4u);
  for (const StageMemory& s : e->stages) EXPECT_EQ(s.num_layers, 8);
  const int64_t embed = int64_t{128256} * 4096 * 2;
  // First stage holds the embedding, last the lm_head (untied, same size) + norm; middle neither.
  EXPECT_NEAR(static_cast<double>(e->stages[0].weights_bytes - e->stages[1].weights_bytes),
              static_cast<double>(embed), 1e3);
  EXPECT_NEAR(static_cast<double>(e->stages[3].weights_bytes - e->stages[1].weights_bytes),
              static_cast<double>(embed + 4096 * 2), 1e3);
  // Only the last stage runs the sampler; the others hand hidden states on.
  EXPECT_GT(e->stages[3].activation_peak_bytes, e->stages[1].activation_peak_bytes);
  EXPECT_EQ(e->BytesPerRank().size(), 4u);
}

TEST(ParallelismTest, PipelineRemainderGoesToEarlierStages) {
  ModelSpec ds = Load("deepseek-v2-lite");  // 27 layers over 4 stages: 6, 7, 7, 7
  auto e = Estimate(ds, Vllm(1, 4));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->stages[0].num_layers + e->stages[1].num_layers + e->stages[2].num_layers +
                e->stages[3].num_layers,
            27);
  EXPECT_EQ(e->stages[3].num_layers, 6);
}

TEST(ParallelismTest, ExpertParallelSplitsExperts) {
  ModelSpec moe = Load("qwen1.5-moe-a2.7b");  // 60 experts
  EstimateRequest tp4 = Vllm(4);
  EstimateRequest ep4 = Vllm(4);
  ep4.parallelism.ep = 4;
  const int64_t a = Estimate(moe, tp4)->stages[0].weights_bytes;
  const int64_t b = Estimate(moe, ep4)->stages[0].weights_bytes;
  // Both hold a quarter of the expert weights: TP shards inside experts, EP whole experts.
  EXPECT_NEAR(static_cast<double>(a), static_cast<double>(b), 0.01 * static_cast<double>(a));
  EstimateRequest ep60 = Vllm(4);
  ep60.parallelism.ep = 64;
  EXPECT_FALSE(Estimate(moe, ep60).ok());
}

TEST(ParallelismTest, VisionTowerReplicatedOnEveryTpRank) {
  ModelSpec g3 = Load("gemma-3-27b-it");
  const int64_t w1 = Estimate(g3, Vllm(1))->stages[0].weights_bytes;
  const int64_t w2 = Estimate(g3, Vllm(2))->stages[0].weights_bytes;
  const int64_t vision = g3.num_vision_params() * 2;
  const int64_t rope = 2 * int64_t{131072} * 128 * 2;  // two rope caches, replicated too
  // The language model halves; the vision tower and projector stay whole on each rank.
  EXPECT_NEAR(static_cast<double>(w2 - vision - rope), static_cast<double>(w1 - vision - rope) / 2,
              2e6);
}

// ---- vLLM capacity and fits ------------------------------------------------------------------

TEST(VllmTest, KvCapacityFollowsUtilization) {
  ModelSpec llama = Load("llama-3.1-8b-instruct");
  EstimateRequest r = Vllm();
  auto hi = Estimate(llama, r);
  r.vllm.gpu_memory_utilization = 0.5;
  auto lo = Estimate(llama, r);
  ASSERT_TRUE(hi.ok() && lo.ok());
  // 0.45 x 79.18 GiB less = 35.6 GiB / 128 KiB per token = ~292k tokens fewer.
  EXPECT_NEAR(static_cast<double>(hi->kv_cache_tokens - lo->kv_cache_tokens),
              0.45 * kH100 / 131072.0, 200);
}

TEST(VllmTest, TooBigModelDoesNotFitAndSaysWhy) {
  ModelSpec big = Load("llama-3.3-70b-instruct-fp8-dynamic");
  EstimateRequest r = Vllm();
  r.vllm.gpu_memory_utilization = 0.5;
  auto e = Estimate(big, r);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->fits);
  EXPECT_NE(e->reason.find("no memory is left for the KV cache"), std::string::npos) << e->reason;
  EXPECT_EQ(e->risk, Risk::kHigh);
}

TEST(VllmTest, WorkloadBeyondCapacityDoesNotFit) {
  ModelSpec llama = Load("llama-3.1-8b-instruct");
  EstimateRequest r = Vllm();
  r.concurrency = 10000;
  r.context_tokens = 8192;
  auto e = Estimate(llama, r);
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->fits);
  EXPECT_NE(e->reason.find("the workload needs 10000"), std::string::npos) << e->reason;
}

// ---- Uncertainty bands (uncertainty.h) ---------------------------------------------------------

TEST(BandTest, EveryStageCarriesABandAroundItsEstimate) {
  ModelSpec llama = Load("llama-3.1-8b");
  for (Engine engine : {Engine::kVllm, Engine::kHfTransformers, Engine::kTraining}) {
    // vLLM at PP 2 (its stages differ), the others on one GPU as calibrated.
    EstimateRequest r = Vllm(1, engine == Engine::kVllm ? 2 : 1);
    r.engine = engine;
    auto e = Estimate(llama, r);
    ASSERT_TRUE(e.ok()) << e.status();
    for (const StageMemory& s : e->stages) {
      EXPECT_LT(s.low_bytes, s.total_bytes) << EngineName(engine);
      EXPECT_GT(s.high_bytes, s.total_bytes) << EngineName(engine);
      // Inside the calibrated domain the band is narrow.
      EXPECT_LT(s.high_bytes - s.total_bytes, s.total_bytes / 20) << EngineName(engine);
    }
    EXPECT_EQ(e->BytesPerRank().front(), e->stages.front().high_bytes) << "the planner reserves "
                                                                          "the high end";
    EXPECT_EQ(e->headroom_bytes, e->gpu_memory_bytes - e->max_high_bytes);
    EXPECT_TRUE(e->band_widened.empty()) << e->band_widened.front();
  }
}

TEST(BandTest, WhatMustFitIsTheHighEnd) {
  // A prefill whose estimate fits a GPU that its band's high end does not: it does not fit.
  ModelSpec llama = Load("llama-3.1-8b");
  EstimateRequest r{.engine = Engine::kHfTransformers, .gpu_memory_bytes = kH100};
  r.hf.batch = 16;
  r.hf.prompt_tokens = 4096;
  auto e = Estimate(llama, r);
  ASSERT_TRUE(e.ok());
  r.gpu_memory_bytes = (e->max_total_bytes + e->max_high_bytes) / 2;
  e = Estimate(llama, r);
  ASSERT_TRUE(e.ok());
  EXPECT_LE(e->max_total_bytes, r.gpu_memory_bytes);
  EXPECT_FALSE(e->fits);
  EXPECT_NE(e->reason.find("needs up to"), std::string::npos) << e->reason;
  EXPECT_EQ(e->risk, Risk::kHigh);
}

TEST(BandTest, VllmCountsOnThePoolsLowEnd) {
  ModelSpec llama = Load("llama-3.1-8b-instruct");
  EstimateRequest r = Vllm();
  auto e = Estimate(llama, r);
  ASSERT_TRUE(e.ok());
  EXPECT_LT(e->kv_cache_tokens_low, e->kv_cache_tokens);
  EXPECT_GT(e->kv_cache_tokens_low, e->kv_cache_tokens * 95 / 100);
  // A workload between the low end and the estimate does not fit: a plan never counts on more
  // than the low end.
  r.context_tokens = 8192;
  r.concurrency = (e->kv_cache_tokens_low + e->kv_cache_tokens) / 2 / 8192;
  ASSERT_GT(r.concurrency * 8192, e->kv_cache_tokens_low);
  auto over = Estimate(llama, r);
  ASSERT_TRUE(over.ok());
  EXPECT_FALSE(over->fits);
  EXPECT_NE(over->reason.find("at the low end of its band"), std::string::npos) << over->reason;
}

TEST(BandTest, WidensOutsideTheCalibrationFiles) {
  // Fine-grained MoE under sdpa (64 experts, top-6) is not in the files: the transient margin is
  // 100 %, and the estimate says why.
  ModelSpec moe = Load("deepseek-v2-lite");
  EstimateRequest r{.engine = Engine::kHfTransformers, .gpu_memory_bytes = kH100};
  r.hf.prompt_tokens = 8192;
  r.hf.batch = 4;
  auto sdpa = Estimate(moe, r);
  r.hf.eager_attention = true;
  r.hf.prompt_tokens = 2048;
  auto eager = Estimate(moe, r);
  ASSERT_TRUE(sdpa.ok() && eager.ok());
  const StageMemory& s = sdpa->stages[0];
  EXPECT_GE(s.high_bytes - s.total_bytes, s.activation_peak_bytes);
  ASSERT_FALSE(sdpa->band_widened.empty());
  EXPECT_NE(sdpa->band_widened[0].find("fine-grained MoE under sdpa"), std::string::npos);
  EXPECT_TRUE(eager->band_widened.empty()) << "deepseek-v2-lite under eager is calibrated";

  // vLLM on another GPU than the calibrated H100: a wider KV low end.
  ModelSpec llama = Load("llama-3.1-8b-instruct");
  EstimateRequest v = Vllm();
  auto h100 = Estimate(llama, v);
  v.gpu_memory_bytes = 48 * kGiB;
  auto other = Estimate(llama, v);
  ASSERT_TRUE(h100.ok() && other.ok());
  ASSERT_FALSE(other->band_widened.empty());
  EXPECT_NE(other->band_widened[0].find("H100 80GB only"), std::string::npos);
  const auto share = [](const MemoryEstimate& e) {
    return static_cast<double>(e.kv_cache_tokens - e.kv_cache_tokens_low) /
           static_cast<double>(e.kv_cache_tokens);
  };
  EXPECT_GT(share(*other), 2 * share(*h100));
}

TEST(BandTest, UnverifiedModelsGetHalfTheirEstimateEitherWay) {
  // A model_type no family knows is parsed as a generic decoder, unverified.
  auto spec = ParseModelConfig(R"({"model_type": "brand_new_lm", "hidden_size": 2048,
      "num_hidden_layers": 8, "num_attention_heads": 16, "intermediate_size": 8192,
      "vocab_size": 32000, "torch_dtype": "bfloat16"})");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_TRUE(spec->unverified());
  EstimateRequest r{.engine = Engine::kHfTransformers, .gpu_memory_bytes = kH100};
  auto e = Estimate(*spec, r);
  ASSERT_TRUE(e.ok());
  const StageMemory& s = e->stages[0];
  EXPECT_GE(s.high_bytes - s.total_bytes, s.total_bytes / 2);
  EXPECT_LE(s.low_bytes, s.total_bytes / 2);
  EXPECT_FALSE(e->band_widened.empty());
}

// ---- Inverse queries -------------------------------------------------------------------------

TEST(InverseTest, MaxConcurrencyAndContextAreConsistent) {
  ModelSpec llama = Load("llama-3.1-8b-instruct");
  EstimateRequest r = Vllm();
  r.vllm.max_model_len = 131072;
  auto n = MaxConcurrency(llama, r, 8192);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, Estimate(llama, r)->kv_cache_tokens_low / 8192);
  auto c = MaxContext(llama, r, *n);
  ASSERT_TRUE(c.ok());
  EXPECT_GE(*c, 8192);
  auto more = MaxConcurrency(llama, r, *c + 16);
  ASSERT_TRUE(more.ok());
  EXPECT_LT(*more, *n);
  EXPECT_FALSE(MaxConcurrency(llama, r, 0).ok());
}

TEST(InverseTest, BudgetGrowsWithContextAndConcurrency) {
  ModelSpec llama = Load("llama-3.1-8b-instruct");
  auto cells = Budget(llama, Vllm(), {2048, 8192}, {1, 16});
  ASSERT_TRUE(cells.ok()) << cells.status();
  ASSERT_EQ(cells->size(), 4u);
  EXPECT_LT((*cells)[0].bytes_per_gpu, (*cells)[1].bytes_per_gpu);
  EXPECT_LT((*cells)[0].bytes_per_gpu, (*cells)[2].bytes_per_gpu);
  // 16 x 8192 tokens x 128 KiB = 16 GiB more than 1 x 8192.
  EXPECT_EQ((*cells)[3].bytes_per_gpu - (*cells)[2].bytes_per_gpu, 15 * 8192 * int64_t{131072});
}

TEST(InverseTest, MinUtilizationHoldsTheWorkload) {
  ModelSpec llama = Load("llama-3.1-8b-instruct");
  EstimateRequest r = Vllm();
  auto util = MinGpuMemoryUtilization(llama, r, 8192, 16);
  ASSERT_TRUE(util.ok()) << util.status();
  r.vllm.gpu_memory_utilization = *util;
  r.concurrency = 16;
  r.context_tokens = 8192;
  EXPECT_TRUE(Estimate(llama, r)->fits);
  r.vllm.gpu_memory_utilization = *util - 0.01;
  EXPECT_FALSE(Estimate(llama, r)->fits);
}

// ---- HF-transformers -------------------------------------------------------------------------

TEST(HfTest, EagerAttentionGrowsWithSquaredLength) {
  ModelSpec llama = Load("llama-3.1-8b");
  EstimateRequest r{.engine = Engine::kHfTransformers, .gpu_memory_bytes = kH100};
  r.hf.prompt_tokens = 2048;
  const int64_t sdpa = Estimate(llama, r)->stages[0].activation_peak_bytes;
  r.hf.eager_attention = true;
  const int64_t eager = Estimate(llama, r)->stages[0].activation_peak_bytes;
  // 32 heads x 2048^2 x kEagerScoreBytes.
  EXPECT_GE(eager, 32 * 2048 * int64_t{2048} * kEagerScoreBytes);
  EXPECT_GT(eager, sdpa);
}

TEST(HfTest, FullLogitsAddVocabPerToken) {
  ModelSpec qwen = Load("qwen2.5-0.5b");
  EstimateRequest r{.engine = Engine::kHfTransformers, .gpu_memory_bytes = kH100};
  r.hf.prompt_tokens = 2048;
  const int64_t last = Estimate(qwen, r)->stages[0].activation_peak_bytes;
  r.hf.all_logits = true;
  const int64_t all = Estimate(qwen, r)->stages[0].activation_peak_bytes;
  EXPECT_GE(all - last, int64_t{2048} * 151936 * 2 - int64_t{2048} * 40000);
}

TEST(HfTest, VisionTokensPerImage) {
  ModelSpec g3 = Load("gemma-3-4b-it");
  ASSERT_TRUE(g3.vision.has_value());
  EXPECT_EQ(g3.vision->fixed_tokens_per_image, 256);  // Gemma-3: fixed 256 per image
  ModelSpec granite = Load("granite-vision-3.3-2b");
  ASSERT_TRUE(granite.vision.has_value());
  EXPECT_EQ(granite.vision->fixed_tokens_per_image, 27 * 27);  // SigLIP-384/14, "full" features
}

// Expected counts come from transformers' processors (LlavaNextProcessor._get_number_of_features,
// Qwen2VL smart_resize) run in Python on the same sizes.
TEST(HfTest, ImageTokensFollowTheProcessor) {
  EXPECT_EQ(ImageTokens(Load("gemma-3-4b-it"), 896, 896), 256);
  EXPECT_EQ(ImageTokens(Load("gemma-3-4b-it"), 1080, 1920), 256);  // pan-and-scan off: fixed
  EXPECT_EQ(ImageTokens(Load("qwen2.5-7b"), 896, 896), 0);         // no vision tower
  ModelSpec granite = Load("granite-vision-3.3-2b");
  EXPECT_EQ(ImageTokens(granite, 384, 384), 1485);  // base 729 + one 27x27 tile + 27 newlines
  EXPECT_EQ(ImageTokens(granite, 768, 768), 3699);
  EXPECT_EQ(ImageTokens(granite, 480, 1280), 5089);  // wide: best grid, then unpadded rows
  EXPECT_EQ(ImageTokens(granite, 1080, 1920), 5967);
  EXPECT_EQ(ImageTokens(granite, 1000, 300), 2835);  // tall: unpadded columns
  EXPECT_EQ(ImageTokens(granite, 0, 0), 1485);       // native 384x384
}

TEST(HfTest, Qwen25VlImageTokensAreMergedPatches) {
  auto qwen = ParseModelConfig(R"({"model_type": "qwen2_5_vl", "hidden_size": 3584,
    "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "vocab_size": 152064, "max_position_embeddings": 128000,
    "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
      "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2}})");
  ASSERT_TRUE(qwen.ok()) << qwen.status();
  EXPECT_EQ(ImageTokens(*qwen, 448, 448), 256);      // (32 x 32 patches) / 4
  EXPECT_EQ(ImageTokens(*qwen, 1080, 1920), 2691);   // rounded to 28 px multiples
  EXPECT_EQ(ImageTokens(*qwen, 4000, 6000), 16224);  // shrunk under max_pixels
  EXPECT_EQ(ImageTokens(*qwen, 20, 20), 4);          // grown to min_pixels
  // Dynamic resolution without a native size: the request must say how large its images are.
  EXPECT_EQ(ImageTokens(*qwen, 0, 0), 0);
  EstimateRequest r{.engine = Engine::kHfTransformers, .gpu_memory_bytes = kH100};
  r.hf.images = 1;
  const auto sizeless = Estimate(*qwen, r);
  ASSERT_FALSE(sizeless.ok());
  EXPECT_NE(sizeless.status().message().find("image_height"), std::string::npos);
  r.hf.image_height = r.hf.image_width = 448;
  EXPECT_TRUE(Estimate(*qwen, r).ok());
}

TEST(HfTest, ImagesLengthenThePrompt) {
  ModelSpec g3 = Load("gemma-3-4b-it");
  EstimateRequest r{.engine = Engine::kHfTransformers, .gpu_memory_bytes = kH100};
  r.hf.prompt_tokens = 256;
  const auto text = Estimate(g3, r);
  r.hf.images = 3;
  r.hf.image_height = r.hf.image_width = 896;
  const auto with_images = Estimate(g3, r);
  r.hf.images = 0;
  r.hf.prompt_tokens = 256 + 3 * 256;
  const auto long_text = Estimate(g3, r);
  ASSERT_TRUE(text.ok() && with_images.ok() && long_text.ok());
  EXPECT_GT(with_images->stages[0].activation_peak_bytes, text->stages[0].activation_peak_bytes);
  EXPECT_GE(with_images->stages[0].activation_peak_bytes,
            long_text->stages[0].activation_peak_bytes);
  EXPECT_EQ(with_images->stages[0].kv_cache_bytes, long_text->stages[0].kv_cache_bytes);
  // pixel_values: 3 images x 3 channels x 896 x 896 in bf16.
  EXPECT_EQ(
      with_images->stages[0].engine_overhead_bytes - long_text->stages[0].engine_overhead_bytes,
      int64_t{3} * 3 * 896 * 896 * 2);
  // Eager attention in the tower: 16 x 4096^2 fp32 scores per image dwarf the short text prefill.
  r.hf = {.eager_attention = true,
          .prompt_tokens = 16,
          .images = 4,
          .image_height = 896,
          .image_width = 896};
  const auto eager = Estimate(g3, r);
  ASSERT_TRUE(eager.ok()) << eager.status();
  EXPECT_GE(eager->stages[0].activation_peak_bytes, int64_t{4} * 16 * 4096 * 4096 * 4);

  for (const auto& [height, width, field] :
       {std::tuple{int64_t{-1}, int64_t{896}, "image_height=-1"},
        std::tuple{int64_t{896}, int64_t{1} << 20, "image_width=1048576"}}) {
    r.hf = {.prompt_tokens = 16, .images = 1, .image_height = height, .image_width = width};
    const auto bad = Estimate(g3, r);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.status().message().find(field), std::string::npos) << bad.status();
  }
  r.hf = {.prompt_tokens = 16, .images = -2};
  EXPECT_NE(Estimate(g3, r).status().message().find("images=-2"), std::string::npos);
  r.hf = {.prompt_tokens = 16, .images = 1};
  auto no_vision = Estimate(Load("qwen2.5-0.5b"), r);
  ASSERT_FALSE(no_vision.ok());
  EXPECT_NE(no_vision.status().message().find("images=1"), std::string::npos);
}

// ---- Training --------------------------------------------------------------------------------

EstimateRequest Training(TrainingConfig t, int64_t dp = 1) {
  EstimateRequest r{.engine = Engine::kTraining, .gpu_memory_bytes = kH100};
  r.parallelism.dp = dp;
  r.training = t;
  return r;
}

TEST(TrainingTest, OptimizerStatesAndGradients) {
  ModelSpec q = Load("qwen2.5-0.5b");
  const int64_t p = q.num_params();
  auto bf16 = Estimate(q, Training({.optimizer = Optimizer::kAdamW,
                                    .param_dtype = DType::kBFloat16,
                                    .batch = 1,
                                    .seq_tokens = 16}));
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ(bf16->stages[0].optimizer_bytes, 2 * p * 2);
  auto amp = Estimate(q, Training({.optimizer = Optimizer::kAdamW,
                                   .param_dtype = DType::kFloat32,
                                   .autocast_bf16 = true,
                                   .batch = 1,
                                   .seq_tokens = 16}));
  ASSERT_TRUE(amp.ok());
  EXPECT_EQ(amp->stages[0].optimizer_bytes, 2 * p * 4);
  EXPECT_EQ(amp->stages[0].weights_bytes, p * 4);
  auto sgd = Estimate(q, Training({.optimizer = Optimizer::kSgd,
                                   .param_dtype = DType::kFloat32,
                                   .batch = 1,
                                   .seq_tokens = 16}));
  EXPECT_EQ(sgd->stages[0].optimizer_bytes, 0);
  auto adam8 = Estimate(q, Training({.optimizer = Optimizer::kAdamW8bit,
                                     .param_dtype = DType::kBFloat16,
                                     .batch = 1,
                                     .seq_tokens = 16}));
  EXPECT_EQ(adam8->stages[0].optimizer_bytes, 2 * p);
}

TEST(TrainingTest, CheckpointingCutsActivations) {
  ModelSpec q = Load("qwen2.5-0.5b");
  TrainingConfig t{
      .param_dtype = DType::kFloat32, .autocast_bf16 = true, .batch = 4, .seq_tokens = 4096};
  const int64_t full = Estimate(q, Training(t))->max_total_bytes;
  t.gradient_checkpointing = true;
  const int64_t ckpt = Estimate(q, Training(t))->max_total_bytes;
  EXPECT_LT(ckpt, full * 3 / 4);
}

TEST(TrainingTest, LoraTrainsOnlyAdapters) {
  ModelSpec q = Load("qwen2.5-0.5b");
  auto lora = Estimate(q, Training({.lora_rank = 16, .batch = 1, .seq_tokens = 16}));
  ASSERT_TRUE(lora.ok());
  // 24 layers x r16 x (q 896+896, k 896+128, v 896+128, o 896+896, gate/up 2 x (896+4864),
  // down 4864+896) = 8,798,208 adapter params, fp32 AdamW: 2 x 4 B each.
  EXPECT_EQ(lora->stages[0].optimizer_bytes, 8798208 * 8);
}

TEST(TrainingTest, ZeroShardsOverDataParallel) {
  ModelSpec q = Load("qwen2.5-0.5b");
  TrainingConfig t{
      .param_dtype = DType::kFloat32, .autocast_bf16 = true, .batch = 1, .seq_tokens = 16};
  auto z0 = Estimate(q, Training(t, 8));
  t.zero_stage = 1;
  auto z1 = Estimate(q, Training(t, 8));
  t.zero_stage = 3;
  auto z3 = Estimate(q, Training(t, 8));
  ASSERT_TRUE(z0.ok() && z1.ok() && z3.ok());
  EXPECT_EQ(z1->stages[0].optimizer_bytes, (z0->stages[0].optimizer_bytes + 7) / 8);
  EXPECT_LT(z3->stages[0].weights_bytes, z0->stages[0].weights_bytes / 7);
  EXPECT_LT(z3->max_total_bytes, z1->max_total_bytes);
}

// ---- Bad requests ----------------------------------------------------------------------------

TEST(EstimateTest, BadRequestsNameFieldAndValue) {
  ModelSpec llama = Load("llama-3.1-8b");
  struct Case {
    const char* what;
    EstimateRequest req;
    const char* expect;
  };
  EstimateRequest base = Vllm();
  auto with = [&](auto mutate) {
    EstimateRequest r = base;
    mutate(r);
    return r;
  };
  const Case cases[] = {
      {"tp not dividing heads", with([](EstimateRequest& r) { r.parallelism.tp = 3; }),
       "tp=3 does not divide num_attention_heads=32"},
      {"zero tp", with([](EstimateRequest& r) { r.parallelism.tp = 0; }),
       "tp=0 must be in [1, 4096]"},
      {"pp beyond layers", with([](EstimateRequest& r) { r.parallelism.pp = 33; }), "pp=33"},
      {"no gpu memory", with([](EstimateRequest& r) { r.gpu_memory_bytes = 0; }),
       "gpu_memory_bytes=0 must be > 0"},
      {"negative util", with([](EstimateRequest& r) { r.vllm.gpu_memory_utilization = -0.5; }),
       "gpu_memory_utilization=-0.5"},
      {"util above one", with([](EstimateRequest& r) { r.vllm.gpu_memory_utilization = 1.5; }),
       "gpu_memory_utilization=1.5"},
      {"huge context", with([](EstimateRequest& r) { r.context_tokens = int64_t{1} << 40; }),
       "context_tokens="},
      {"ep on dense", with([](EstimateRequest& r) { r.parallelism.ep = 2; }),
       "ep=2 needs an MoE model"},
      {"zero block", with([](EstimateRequest& r) { r.vllm.block_size = 0; }), "block_size=0"},
  };
  for (const Case& c : cases) {
    auto e = Estimate(llama, c.req);
    ASSERT_FALSE(e.ok()) << c.what;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(e.status().message().find(c.expect), std::string::npos)
        << c.what << ": " << e.status().message();
  }
  EstimateRequest hf{.engine = Engine::kHfTransformers, .gpu_memory_bytes = kH100};
  hf.hf.batch = 0;
  EXPECT_EQ(Estimate(llama, hf).status().code(), absl::StatusCode::kInvalidArgument);
  hf.hf.batch = 1;
  hf.parallelism.tp = 2;
  EXPECT_NE(Estimate(llama, hf).status().message().find("one GPU"), std::string::npos);
  EstimateRequest train{.engine = Engine::kTraining, .gpu_memory_bytes = kH100};
  train.training.zero_stage = 4;
  EXPECT_NE(Estimate(llama, train).status().message().find("zero_stage=4"), std::string::npos);
  train.training.zero_stage = 0;
  train.training.autocast_bf16 = true;  // with bf16 params
  EXPECT_NE(Estimate(llama, train).status().message().find("autocast_bf16 needs fp32"),
            std::string::npos);
}

TEST(GpuCatalogTest, LooksUpByNameAndAlias) {
  auto h100 = FindGpu("h100");
  ASSERT_TRUE(h100.ok());
  EXPECT_EQ(h100->memory_bytes, kH100);
  EXPECT_TRUE(FindGpu("NVIDIA H100 80GB HBM3").ok());
  EXPECT_TRUE(FindGpu("A100-40GB").ok());
  // nvidia-smi's product names reach the same entries.
  EXPECT_EQ(FindGpu("NVIDIA GeForce RTX 5090")->memory_bytes, 3137 * kGiB / 100);
  EXPECT_EQ(std::string(FindGpu("NVIDIA RTX A4000")->name), "RTX-A4000");
  EXPECT_EQ(std::string(FindGpu("NVIDIA A30")->name), "A30");
  auto missing = FindGpu("Voodoo2");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("gpu \"Voodoo2\""), std::string::npos);
  for (const GpuInfo& g : GpuCatalog()) {
    EXPECT_GT(g.memory_bytes, 8 * kGiB) << g.name;
    EXPECT_NE(std::string(g.source), "") << g.name;
  }
}

}  // namespace
}  // namespace fleetplan::estimator
