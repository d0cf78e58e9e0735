// SGLang's memory rules (sglang_model.cc); each test names the SGLang source it follows.

#include "planner/estimator/sglang.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/testing/test_models.h"
#include "planner/estimator/vllm.h"

namespace fleetplan::estimator {
namespace {

ModelSpec LoadModel(const std::string& slug) {
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/" + slug + ".json");
  std::stringstream s;
  s << in.rdbuf();
  auto spec = ParseModelConfig(s.str());
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

constexpr int64_t kH100 = 81559 * kMiB;  // what the driver reports for an 80 GB H100

EstimateRequest Sglang(int64_t tp = 1) {
  EstimateRequest r;
  r.engine = Engine::kSglang;
  r.gpu_memory_bytes = kH100;
  r.parallelism.tp = tp;
  return r;
}

// server_args.py _handle_gpu_memory_settings: on an 81,559 MiB H100 chunked prefill 8192 and
// 256 graph batch sizes at TP 1, so reserved = 512 + 1.5 x 8192 + 2 x 256 + 1/8 x 1024 = 13,440
// MiB and the fraction (81559 - 13440) / 81559 = 0.835; at TP 8, 512 graph sizes and 1 GiB for
// the parallelism: 14,848 MiB, 0.818. On a 24 GiB GPU the 10 GiB floor does not apply.
TEST(SglangTest, DefaultFractionFromTheGpu) {
  SglangResolved tp1 = ResolveSglang({}, kH100, {.tp = 1});
  EXPECT_EQ(tp1.chunked_prefill_size, 8192);
  EXPECT_EQ(tp1.cuda_graph_max_bs, 256);
  EXPECT_DOUBLE_EQ(tp1.mem_fraction_static, 0.835);
  // [1, 2, 4, 8, 12] + range(16, 257, 8): 5 + 31 sizes (_generate_cuda_graph_batch_sizes).
  EXPECT_EQ(tp1.capture_sizes, 36);
  SglangResolved tp8 = ResolveSglang({}, kH100, {.tp = 8});
  EXPECT_EQ(tp8.cuda_graph_max_bs, 512);
  EXPECT_DOUBLE_EQ(tp8.mem_fraction_static, 0.818);
  EXPECT_EQ(tp8.capture_sizes, 36 + 15 + 1);  // + range(272, 512, 16) + [512]
  // L4 (22.5 GiB): 2048 / 24; reserved 512 + 3072 + 48 + 128 = 3760 MiB.
  const int64_t l4 = 23034 * kMiB;
  SglangResolved small = ResolveSglang({}, l4, {.tp = 1});
  EXPECT_EQ(small.cuda_graph_max_bs, 24);
  EXPECT_DOUBLE_EQ(small.mem_fraction_static, std::round((23034.0 - 3760) / 23034 * 1000) / 1000);
  // Given values win.
  SglangResolved given =
      ResolveSglang({.mem_fraction_static = 0.7, .cuda_graph_max_bs = 8}, kH100, {.tp = 1});
  EXPECT_DOUBLE_EQ(given.mem_fraction_static, 0.7);
  EXPECT_EQ(given.capture_sizes, 4);
}

// server_args.py adjust_mem_fraction_for_vlm: a multimodal model's default fraction is x 0.95 and
// 0.1 less per doubling of its vision_config's num_hidden_layers x hidden_size^2 over ViT-L/14's;
// Gemma-3's SigLIP (27 x 1152^2) takes it from 0.835 to 0.760 on an H100. A given fraction stays.
TEST(SglangTest, VisionTowerLowersTheDefaultFraction) {
  const ModelSpec gemma = LoadModel("gemma-3-4b-it");
  ASSERT_TRUE(gemma.vision.has_value());
  EXPECT_TRUE(gemma.vision->in_vision_config);
  EXPECT_EQ(gemma.vision->config_num_hidden_layers, 27);
  EXPECT_EQ(gemma.vision->config_hidden_size, 1152);
  const double expected =
      0.835 * 0.95 * (1 - 0.1 * (27.0 * 1152 * 1152 / (24.0 * 1024 * 1024) - 1));
  EXPECT_DOUBLE_EQ(ResolveSglang({}, kH100, {.tp = 1}, &gemma).mem_fraction_static, expected);
  EstimateRequest r = Sglang();
  r.sglang.context_length = 8192;
  auto e = Estimate(gemma, r);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_DOUBLE_EQ(e->mem_fraction_static, expected);
  EXPECT_NE(SglangLaunchCommand("gemma", r, *e).find("--mem-fraction-static 0.7596"),
            std::string::npos)
      << SglangLaunchCommand("gemma", r, *e);
  r.sglang.mem_fraction_static = 0.8;
  auto given = Estimate(gemma, r);
  ASSERT_TRUE(given.ok());
  EXPECT_DOUBLE_EQ(given->mem_fraction_static, 0.8);
  // A text model keeps the plain rule.
  EXPECT_DOUBLE_EQ(Estimate(LoadModel("llama-3.1-8b-instruct"), Sglang())->mem_fraction_static,
                   0.835);
}

// model_runner profile_max_num_token: the pool is the free memory before the weights times the
// fraction, less the weights; cell = KV heads x (K + V) x layers x bytes.
TEST(SglangTest, KvPoolIsTheFractionLessTheWeights) {
  const ModelSpec spec = LoadModel("llama-3.1-8b-instruct");
  auto e = Estimate(spec, Sglang());
  ASSERT_TRUE(e.ok()) << e.status();
  const StageMemory& s = e->stages[0];
  EXPECT_EQ(s.kv_cache_bytes_per_token, 32 * 8 * 128 * 2 * 2);
  const int64_t free_before = kH100 - kCudaContextBytes;
  const int64_t rest =
      static_cast<int64_t>(std::floor(static_cast<double>(free_before) * 0.835)) - s.weights_bytes;
  EXPECT_EQ(s.kv_cache_tokens, rest / s.kv_cache_bytes_per_token);
  EXPECT_EQ(e->kv_cache_tokens, s.kv_cache_tokens);
  EXPECT_LT(e->kv_cache_tokens_low, e->kv_cache_tokens);
  // What comes after the pool fits the reserve, with its band.
  EXPECT_TRUE(e->fits) << e->reason;
  EXPECT_LT(s.high_bytes, kH100);
  EXPECT_GT(s.high_bytes, s.total_bytes);
  // ReqToTokenPool: int32 [max_running + 1, context_len + 4]; max_running is 2048 here (the pool
  // holds about 3 full contexts, x 512 is below the floor of 2048), beside vLLM's non-torch bytes.
  EXPECT_LT(e->kv_cache_tokens, 4 * 131072);
  EXPECT_EQ(s.engine_overhead_bytes,
            int64_t{4} * 2049 * (131072 + 4) + kVllmNonTorchSingleGpuBytes);
  // The launch line carries the fraction and the context length.
  const std::string line = SglangLaunchCommand("/models/llama", Sglang(), *e);
  EXPECT_EQ(line,
            "python -m sglang.launch_server --model-path /models/llama --mem-fraction-static "
            "0.835 --context-length 131072");
}

// TP splits the KV heads (8 over 2 ranks) and the weights; a larger fraction holds more tokens.
TEST(SglangTest, TensorParallelAndFraction) {
  const ModelSpec spec = LoadModel("llama-3.1-8b-instruct");
  auto one = Estimate(spec, Sglang(1));
  auto two = Estimate(spec, Sglang(2));
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(two->stages[0].kv_cache_bytes_per_token, one->stages[0].kv_cache_bytes_per_token / 2);
  EXPECT_GT(two->kv_cache_tokens, 2 * one->kv_cache_tokens);
  EstimateRequest more = Sglang();
  more.sglang.mem_fraction_static = 0.9;
  auto m = Estimate(spec, more);
  ASSERT_TRUE(m.ok());
  EXPECT_GT(m->kv_cache_tokens, one->kv_cache_tokens);
}

// A deployment that fits at the default does not at a fraction too small for the weights, nor a
// workload beyond max_running_requests; each says why.
// --enable-piecewise-cuda-graph (server_args.py _handle_gpu_memory_settings and
// _generate_piecewise_cuda_graph_tokens): the fraction keeps 8 MiB per prefill capture size, before
// the 10 GiB floor. On an H100 chunked prefill is 8192: 4..32 by 4 (8), 48..256 by 16 (14),
// 288..512 by 32 (8), 576..1024 by 64 (8), 1280..4096 by 256 (12) and 4608..8192 by 512 (8) = 58
// sizes, 464 MiB; an MLA model captures up to 2048 tokens: 8 + 14 + 8 + 8 + 4 = 42.
TEST(SglangTest, PiecewiseCudaGraphsAreReserved) {
  const SglangConfig on{.enable_piecewise_cuda_graph = true};
  const SglangResolved plain = ResolveSglang({}, kH100, {.tp = 1});
  const SglangResolved piecewise = ResolveSglang(on, kH100, {.tp = 1});
  EXPECT_EQ(plain.piecewise_sizes, 0);
  EXPECT_EQ(piecewise.piecewise_sizes, 58);
  EXPECT_DOUBLE_EQ(piecewise.mem_fraction_static,
                   std::round((81559.0 - 13440 - 58 * 8) / 81559 * 1000) / 1000);
  SglangConfig capped = on;
  capped.piecewise_cuda_graph_max_tokens = 1024;
  EXPECT_EQ(ResolveSglang(capped, kH100, {.tp = 1}).piecewise_sizes, 8 + 14 + 8 + 8);
  auto mla = ParseModelConfig(testing::TestModelText("deepseek-v3.json"));
  ASSERT_TRUE(mla.ok()) << mla.status();
  EXPECT_EQ(ResolveSglang(on, kH100, {.tp = 8}, &*mla).piecewise_sizes, 42);
  // The estimate: a smaller pool (the fraction) and the graphs' non-torch bytes after it.
  const ModelSpec spec = LoadModel("llama-3.1-8b-instruct");
  EstimateRequest r = Sglang();
  r.sglang.context_length = 8192;
  auto base = Estimate(spec, r);
  r.sglang.enable_piecewise_cuda_graph = true;
  auto with = Estimate(spec, r);
  ASSERT_TRUE(base.ok() && with.ok()) << base.status() << with.status();
  EXPECT_EQ(with->stages[0].cuda_graph_bytes - base->stages[0].cuda_graph_bytes, 58 * 8 * kMiB);
  EXPECT_LT(with->kv_cache_tokens, base->kv_cache_tokens);
  EXPECT_NE(SglangLaunchCommand("m", r, *with).find("--enable-piecewise-cuda-graph"),
            std::string::npos);
  r.sglang.piecewise_cuda_graph_max_tokens = 4096;
  EXPECT_NE(SglangLaunchCommand("m", r, *with).find("--piecewise-cuda-graph-max-tokens 4096"),
            std::string::npos);
  r.sglang.enable_piecewise_cuda_graph = false;
  auto refused = Estimate(spec, r);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("sglang.piecewise_cuda_graph_max_tokens=4096"),
            std::string::npos)
      << refused.status();
  r.sglang.enable_piecewise_cuda_graph = true;
  for (int64_t bad : {int64_t{-1}, int64_t{1} << 40}) {
    r.sglang.piecewise_cuda_graph_max_tokens = bad;
    auto out_of_range = Estimate(spec, r);
    ASSERT_FALSE(out_of_range.ok()) << bad;
    EXPECT_NE(out_of_range.status().message().find(
                  absl::StrCat("sglang.piecewise_cuda_graph_max_tokens=", bad)),
              std::string::npos)
        << out_of_range.status();
  }
}

TEST(SglangTest, RefusalsSayWhy) {
  const ModelSpec spec = LoadModel("llama-3.1-8b-instruct");
  EstimateRequest r = Sglang();
  r.sglang.mem_fraction_static = 0.1;
  auto small = Estimate(spec, r);
  ASSERT_TRUE(small.ok());
  EXPECT_FALSE(small->fits);
  EXPECT_NE(small->reason.find("mem-fraction-static"), std::string::npos) << small->reason;
  r = Sglang();
  r.sglang.max_running_requests = 16;
  r.concurrency = 32;
  r.context_tokens = 1024;
  auto over = Estimate(spec, r);
  ASSERT_TRUE(over.ok());
  EXPECT_FALSE(over->fits);
  EXPECT_NE(over->reason.find("max_running_requests 16"), std::string::npos) << over->reason;
  r.sglang.mem_fraction_static = 1.0;
  auto bad = Estimate(spec, r);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("sglang.mem_fraction_static=1"), std::string::npos);
  // Negative and huge values, each named with its value.
  struct Bad {
    void (*set)(SglangConfig&);
    const char* expect;
  };
  const Bad cases[] = {
      {[](SglangConfig& g) { g.mem_fraction_static = -0.1; }, "sglang.mem_fraction_static=-0.1"},
      {[](SglangConfig& g) { g.context_length = -1; }, "sglang.context_length=-1"},
      {[](SglangConfig& g) { g.chunked_prefill_size = -8; }, "sglang.chunked_prefill_size=-8"},
      {[](SglangConfig& g) { g.cuda_graph_max_bs = 1 << 20; }, "sglang.cuda_graph_max_bs=1048576"},
      {[](SglangConfig& g) { g.max_running_requests = -1; }, "sglang.max_running_requests=-1"},
      {[](SglangConfig& g) { g.page_size = 0; }, "sglang.page_size=0"},
  };
  for (const Bad& b : cases) {
    EstimateRequest q = Sglang();
    b.set(q.sglang);
    auto e = Estimate(spec, q);
    ASSERT_FALSE(e.ok()) << b.expect;
    EXPECT_NE(e.status().message().find(b.expect), std::string::npos) << e.status();
  }
}

// MLA (deepseek-v2-lite): the cell is the latent (kv_lora_rank + qk_rope_head_dim) per layer.
TEST(SglangTest, MlaCellIsTheLatent) {
  auto e = Estimate(LoadModel("deepseek-v2-lite"), Sglang());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->stages[0].kv_cache_bytes_per_token, 27 * (512 + 64) * 2);
}

// vLLM --enable-lora: per slot and layer lora_a [rank, in] and lora_b [out, rank] of qkv_proj,
// o_proj, gate_up_proj and down_proj (vllm/lora/layers create_lora_weights), counted as weights,
// so the KV pool gives them up: a workload that fits without adapters does not with 32 slots of
// rank 64 (10 GiB on Llama-3.1-8B).
TEST(ServingLoraTest, SlotsTakeTheKvPool) {
  const ModelSpec spec = LoadModel("llama-3.1-8b-instruct");
  EstimateRequest r;
  r.engine = Engine::kVllm;
  r.gpu_memory_bytes = kH100;
  r.vllm.max_model_len = 8192;
  r.context_tokens = 8192;
  auto plain = Estimate(spec, r);
  ASSERT_TRUE(plain.ok()) << plain.status();
  r.concurrency = plain->max_concurrency_low;
  plain = Estimate(spec, r);
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(plain->fits) << plain->reason;
  r.vllm.enable_lora = true;
  r.vllm.max_loras = 32;
  r.vllm.max_lora_rank = 64;
  auto lora = Estimate(spec, r);
  ASSERT_TRUE(lora.ok()) << lora.status();
  // Per layer and slot (elements): qkv 3 x 64 x 4096 + 64 x (4096 + 2 x 1024), o 64 x 4096 +
  // 4096 x 64, gate_up 2 x 64 x 4096 + 64 x 2 x 14336, down 64 x 14336 + 4096 x 64.
  const int64_t per_layer = (3 * 64 * 4096 + 64 * 6144) + (2 * 64 * 4096) +
                            (2 * 64 * 4096 + 64 * 2 * 14336) + (64 * 14336 + 4096 * 64);
  EXPECT_EQ(lora->stages[0].weights_bytes - plain->stages[0].weights_bytes,
            int64_t{32} * 32 * per_layer * 2);
  EXPECT_FALSE(lora->fits);
  EXPECT_LT(lora->max_concurrency_low, plain->max_concurrency_low);
  // max_cpu_loras (default max_loras: 32) whole adapters in the rank's host memory.
  EXPECT_EQ(lora->host_bytes, int64_t{32} * 32 * per_layer * 2);
  // TP 2 splits lora_b of the column-parallel layers and lora_a of the row-parallel ones.
  r.parallelism.tp = 2;
  r.concurrency = 0;
  auto tp2 = Estimate(spec, r);
  ASSERT_TRUE(tp2.ok());
  r.vllm.enable_lora = false;
  auto tp2_plain = Estimate(spec, r);
  ASSERT_TRUE(tp2_plain.ok());
  const int64_t per_layer_tp2 = (3 * 64 * 4096 + 64 * (2048 + 2 * 512)) + (64 * 2048 + 4096 * 64) +
                                (2 * 64 * 4096 + 64 * 2 * 7168) + (64 * 7168 + 4096 * 64);
  EXPECT_EQ(tp2->stages[0].weights_bytes - tp2_plain->stages[0].weights_bytes,
            int64_t{32} * 32 * per_layer_tp2 * 2);
  // Each of the 2 ranks' processes caches 32 whole adapters (taken as 2 rank slots each).
  EXPECT_EQ(tp2->host_bytes, int64_t{32} * (32 * per_layer_tp2 * 2 * 2) * 2);
  // vllm/config/lora.py: the rank must be one vLLM has kernels for.
  r.vllm.enable_lora = true;
  r.vllm.max_lora_rank = 48;
  auto bad = Estimate(spec, r);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("vllm.max_lora_rank=48"), std::string::npos);
  r.vllm.max_lora_rank = 16;
  r.vllm.max_loras = 0;
  EXPECT_NE(Estimate(spec, r).status().message().find("vllm.max_loras=0"), std::string::npos);
  r.vllm.max_loras = 1;
  r.vllm.max_cpu_loras = -1;
  EXPECT_NE(Estimate(spec, r).status().message().find("vllm.max_cpu_loras=-1"), std::string::npos);
}

// SGLang --enable-lora: LoRAMemoryPool's buffers (python/sglang/srt/lora/mem_pool.py
// get_lora_A_shape / get_lora_B_shape: A [slots, rank x stacked, in], B [slots, out, rank] per
// layer and normalized target module, sharded as the base layer) are allocated before
// init_memory_pool (model_runner.py initialize), so the pool gives them up: a workload that fits
// without adapters does not with 8 slots of rank 256. Attention-only targets take only qkv and o;
// the launch line carries the flags; MoE experts and unknown targets are refused by name.
TEST(ServingLoraTest, SglangAdapterPoolTakesTheKvPool) {
  const ModelSpec spec = LoadModel("llama-3.1-8b-instruct");
  EstimateRequest r = Sglang();
  r.sglang.context_length = 8192;
  r.context_tokens = 8192;
  auto plain = Estimate(spec, r);
  ASSERT_TRUE(plain.ok()) << plain.status();
  r.concurrency = plain->max_concurrency_low;
  plain = Estimate(spec, r);
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(plain->fits) << plain->reason;
  r.sglang.enable_lora = true;
  r.sglang.max_lora_rank = 256;  // max_loras_per_batch: SGLang's default 8
  auto lora = Estimate(spec, r);
  ASSERT_TRUE(lora.ok()) << lora.status();
  // Per layer and slot (elements), rank 256: qkv 3 x 256 x 4096 + 256 x (4096 + 2 x 1024), o
  // 256 x 4096 + 4096 x 256, gate_up 2 x 256 x 4096 + 256 x 2 x 14336, down 256 x 14336 + 4096 x
  // 256; 32 layers, 8 slots, bf16.
  const int64_t per_layer = (3 * 256 * 4096 + 256 * 6144) + (2 * 256 * 4096) +
                            (2 * 256 * 4096 + 256 * 2 * 14336) + (256 * 14336 + 4096 * 256);
  EXPECT_EQ(lora->stages[0].weights_bytes - plain->stages[0].weights_bytes,
            int64_t{8} * 32 * per_layer * 2);
  EXPECT_FALSE(lora->fits);
  EXPECT_LT(lora->max_concurrency_low, plain->max_concurrency_low);
  EXPECT_NE(SglangLaunchCommand("m", r, *lora)
                .find("--enable-lora --max-loras-per-batch 8 --max-lora-rank 256 "
                      "--lora-target-modules all"),
            std::string::npos);
  // Unbounded host adapters are not counted; --max-loaded-loras 20 keeps 20 whole adapters in
  // the (one) rank's host memory (lora.py LoRAAdapter initialize_weights loads them on the CPU).
  EXPECT_EQ(lora->host_bytes, 0);
  EstimateRequest loaded = r;
  loaded.sglang.max_loaded_loras = 20;
  auto host = Estimate(spec, loaded);
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_EQ(host->host_bytes, int64_t{20} * 32 * per_layer * 2);
  EXPECT_EQ(host->stages[0].total_bytes, lora->stages[0].total_bytes);  // GPU bytes unchanged
  EXPECT_NE(SglangLaunchCommand("m", loaded, *host).find("--max-loaded-loras 20 --enable-lora"),
            std::string::npos);
  loaded.sglang.max_loaded_loras = int64_t{1} << 30;
  auto huge = Estimate(spec, loaded);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("sglang.max_loaded_loras=1073741824"), std::string::npos)
      << huge.status();
  loaded.sglang.max_loaded_loras = -1;
  EXPECT_NE(Estimate(spec, loaded).status().message().find("sglang.max_loaded_loras=-1"),
            std::string::npos);
  loaded.sglang.max_loaded_loras = 4;  // fewer than the 8 a batch may use
  auto few = Estimate(spec, loaded);
  ASSERT_FALSE(few.ok());
  EXPECT_NE(few.status().message().find("sglang.max_loaded_loras=4"), std::string::npos)
      << few.status();
  // Attention only.
  r.sglang.lora_target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
  auto attn = Estimate(spec, r);
  ASSERT_TRUE(attn.ok()) << attn.status();
  EXPECT_EQ(attn->stages[0].weights_bytes - plain->stages[0].weights_bytes,
            int64_t{8} * 32 * ((3 * 256 * 4096 + 256 * 6144) + (2 * 256 * 4096)) * 2);
  // Refusals.
  r.sglang.lora_target_modules = {"lm_head"};
  auto head = Estimate(spec, r);
  ASSERT_FALSE(head.ok());
  EXPECT_NE(head.status().message().find("\"lm_head\" is not modelled"), std::string::npos)
      << head.status();
  r.sglang.lora_target_modules.clear();
  r.sglang.max_lora_rank = 0;
  auto rank = Estimate(spec, r);
  ASSERT_FALSE(rank.ok());
  EXPECT_NE(rank.status().message().find("sglang.max_lora_rank=0"), std::string::npos);
  r.sglang.max_lora_rank = 16;
  r.sglang.max_loras_per_batch = 0;
  EXPECT_NE(Estimate(spec, r).status().message().find("sglang.max_loras_per_batch=0"),
            std::string::npos);
  EstimateRequest moe = Sglang(2);
  moe.sglang.enable_lora = true;
  moe.sglang.max_lora_rank = 16;
  auto experts = Estimate(LoadModel("qwen1.5-moe-a2.7b"), moe);
  ASSERT_FALSE(experts.ok());
  EXPECT_NE(experts.status().message().find("per-expert LoRA buffers"), std::string::npos)
      << experts.status();
}

// Speculative decoding with a draft (vllm/v1/spec_decode: the drafter is loaded and profiled
// with the target): its weights and its layers' KV share the budget, each sequence keeps
// num_speculative_tokens lookahead slots; a workload that fits without it does not with it.
TEST(ServingDraftTest, DraftTakesTheKvPool) {
  const ModelSpec target = LoadModel("qwen2.5-7b-instruct");
  const ModelSpec draft_spec = LoadModel("qwen2.5-0.5b");
  EstimateRequest r;
  r.engine = Engine::kVllm;
  r.gpu_memory_bytes = kH100;
  r.vllm.max_model_len = 8192;
  r.context_tokens = 8192;
  auto plain = Estimate(target, r);
  ASSERT_TRUE(plain.ok()) << plain.status();
  r.concurrency = plain->max_concurrency_low;
  plain = Estimate(target, r);
  ASSERT_TRUE(plain.ok() && plain->fits) << plain->reason;
  EstimateRequest with = r;
  with.vllm.draft = &draft_spec;
  with.vllm.draft_model = "Qwen/Qwen2.5-0.5B";
  with.vllm.num_speculative_tokens = 4;
  auto spec = Estimate(target, with);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->fits);
  EXPECT_LT(spec->max_concurrency_low, plain->max_concurrency_low);
  // 24 layers x 2 KV heads x 64 x (K + V) x bf16 more per token; the draft's weights on top.
  EXPECT_EQ(spec->stages[0].kv_cache_bytes_per_token,
            plain->stages[0].kv_cache_bytes_per_token + 24 * 2 * 64 * 2 * 2);
  EstimateRequest alone;
  alone.engine = Engine::kHfTransformers;
  alone.gpu_memory_bytes = kH100;
  EXPECT_GT(spec->stages[0].weights_bytes - plain->stages[0].weights_bytes,
            Estimate(draft_spec, alone)->stages[0].weights_bytes * 9 / 10);
  EXPECT_FALSE(spec->band_widened.empty());
  // The launch line names the draft.
  auto fit = FitVllm(target, with);
  ASSERT_TRUE(fit.ok());
  EXPECT_NE(VllmServeCommand("qwen", *fit)
                .find("--speculative-config "
                      "'{\"model\":\"Qwen/Qwen2.5-0.5B\",\"num_speculative_tokens\":4}'"),
            std::string::npos)
      << VllmServeCommand("qwen", *fit);
  // V0's profiler did not count the draft: its pool takes the draft's memory and the GPU
  // overflows by it.
  with.vllm.version = "0.6.3";
  auto v0 = Estimate(target, with);
  ASSERT_TRUE(v0.ok());
  bool noted = false;
  for (const auto& n : v0->notes) noted |= n.find("PR #14067") != std::string::npos;
  EXPECT_TRUE(noted);
  // Refused by name: pp > 1, sliding-window layers, speculative tokens without a draft.
  with.vllm.version.clear();
  with.parallelism.pp = 2;
  EXPECT_NE(Estimate(target, with).status().message().find("pp=2 with a draft"), std::string::npos);
  with.parallelism.pp = 1;
  const ModelSpec gemma = LoadModel("gemma-2-2b-it");
  EXPECT_NE(Estimate(gemma, with).status().message().find("sliding-window"), std::string::npos);
  r.vllm.num_speculative_tokens = 3;
  EXPECT_NE(Estimate(target, r).status().message().find("needs a draft model"), std::string::npos);
}

// An EAGLE head for Llama-3.1-8B (the shape of yuhuili/EAGLE-LLaMA3.1-Instruct-8B's config.json):
// one llama decoder layer at the target's width.
constexpr char kEagleHead[] = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
  "num_key_value_heads": 8, "num_hidden_layers": 1, "vocab_size": 128256,
  "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
  "torch_dtype": "bfloat16", "tie_word_embeddings": false})";

bool HasNote(const MemoryEstimate& e, const std::string& part) {
  for (const std::string& n : e.notes) {
    if (n.find(part) != std::string::npos) return true;
  }
  return false;
}

// SGLang EAGLE up to 0.5.10 (server_args.py _handle_gpu_memory_settings, model_runner.py): the
// fraction keeps 2 GiB more for "eagle draft models and cuda graphs", the target's pool is sized
// on its own cell, and the draft (weights, its pool of as many tokens, its graphs) is loaded after,
// out of what the fraction leaves. --max-running-requests falls to 48 and the graphs with it
// (cuda_graph_runner.py get_batch_sizes_to_capture).
TEST(ServingDraftTest, SglangEagleBefore0511SizesThePoolOnTheTarget) {
  const ModelSpec target = LoadModel("llama-3.1-8b-instruct");
  absl::StatusOr<ModelSpec> head = ParseModelConfig(kEagleHead);
  ASSERT_TRUE(head.ok()) << head.status();
  EstimateRequest r = Sglang();
  r.sglang.context_length = 8192;
  r.context_tokens = 8192;
  auto plain = Estimate(target, r);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EstimateRequest e = r;
  e.sglang.speculative_algorithm = SglangSpeculative::kEagle;
  e.sglang.draft = &*head;
  e.sglang.draft_model = "yuhuili/EAGLE-LLaMA3.1-Instruct-8B";
  const SglangResolved res = ResolveSglang(e.sglang, kH100, {.tp = 1});
  EXPECT_DOUBLE_EQ(res.mem_fraction_static,
                   std::round((81559.0 - 13440 - 2048) / 81559 * 1000) / 1000);
  EXPECT_EQ(res.max_running_requests, 48);
  EXPECT_EQ(res.num_steps, 3);
  EXPECT_EQ(res.eagle_topk, 1);
  EXPECT_EQ(res.num_draft_tokens, 4);
  // With top-k 1 SGLang sets the draft tokens to steps + 1 whatever is given; NGRAM, which has no
  // draft model, also falls to 48 requests (_handle_speculative_decoding).
  SglangConfig adjusted = e.sglang;
  adjusted.speculative_num_steps = 5;
  adjusted.speculative_num_draft_tokens = 8;
  EXPECT_EQ(ResolveSglang(adjusted, kH100, {.tp = 1}).num_draft_tokens, 6);
  adjusted.speculative_eagle_topk = 4;
  EXPECT_EQ(ResolveSglang(adjusted, kH100, {.tp = 1}).num_draft_tokens, 8);
  SglangConfig ngram;
  ngram.speculative_algorithm = SglangSpeculative::kNgram;
  EXPECT_EQ(ResolveSglang(ngram, kH100, {.tp = 1}).max_running_requests, 48);
  // Speculating: range(1, 9) + range(10, 33, 2) + 40 44 48 up to the 48 requests, and 47.
  EXPECT_EQ(res.capture_sizes, 8 + 12 + 3 + 1);
  auto spec = Estimate(target, e);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const StageMemory& p = plain->stages[0];
  const StageMemory& s = spec->stages[0];
  // The draft's layer, its final norm, fc (2 x 4096 -> 4096, with bias) and rope cache; embedding
  // and lm_head are the target's.
  const int64_t layer = 4096 * 4096 * 2 + 1024 * 4096 * 2 + 14336 * 4096 * 3 + 4096 * 2;
  const int64_t fc = 2 * 4096 * 4096 + 4096;
  EXPECT_EQ(s.weights_bytes - p.weights_bytes, 2 * (layer + 4096 + fc) + 2 * 131072 * 128);
  EXPECT_EQ(s.kv_cache_bytes_per_token, p.kv_cache_bytes_per_token + 8 * 128 * 2 * 2);
  const int64_t free_before = kH100 - kCudaContextBytes;
  const int64_t rest =
      static_cast<int64_t>(std::floor(static_cast<double>(free_before) * res.mem_fraction_static)) -
      p.weights_bytes;
  EXPECT_EQ(s.kv_cache_tokens, rest / p.kv_cache_bytes_per_token);
  // 49 request rows of context + 4 + 4 draft tokens.
  EXPECT_EQ(s.engine_overhead_bytes, int64_t{4} * 49 * (8192 + 8) + kVllmNonTorchSingleGpuBytes);
  EXPECT_TRUE(spec->fits) << spec->reason;
  EXPECT_TRUE(HasNote(*spec, "loaded after the KV pool is sized")) << spec->notes.size();
  EXPECT_TRUE(HasNote(*spec, "resets --max-running-requests to 48"));
  const std::string line = SglangLaunchCommand("/models/llama", e, *spec);
  EXPECT_NE(line.find("--speculative-algorithm EAGLE --speculative-draft-model-path "
                      "yuhuili/EAGLE-LLaMA3.1-Instruct-8B --speculative-num-steps 3 "
                      "--speculative-eagle-topk 1 --speculative-num-draft-tokens 4"),
            std::string::npos)
      << line;
  // At the largest fraction the target alone fits, the draft loaded after its pool does not.
  double largest = 0;
  for (double f = 0.80; f < 0.99; f += 0.005) {
    r.sglang.mem_fraction_static = f;
    auto alone = Estimate(target, r);
    ASSERT_TRUE(alone.ok());
    if (alone->fits) largest = f;
  }
  ASSERT_GT(largest, 0.85);
  e.sglang.mem_fraction_static = largest;
  auto tight = Estimate(target, e);
  ASSERT_TRUE(tight.ok());
  EXPECT_FALSE(tight->fits) << largest;
  // From 0.5.11 the same fraction leaves room for the draft: its weights and pool are budgeted.
  e.sglang.version = "0.5.11";
  auto budgeted = Estimate(target, e);
  ASSERT_TRUE(budgeted.ok());
  EXPECT_TRUE(budgeted->fits) << budgeted->reason;
}

// After 0.5.10 (PRs #23862, #28855): no flat reserve; both models' weights come out of the
// fraction first and pool_configurator.py scales the cell by (1 + draft layers / target layers).
TEST(ServingDraftTest, SglangEagleFrom0511BudgetsTheDraft) {
  const ModelSpec target = LoadModel("llama-3.1-8b-instruct");
  absl::StatusOr<ModelSpec> head = ParseModelConfig(kEagleHead);
  ASSERT_TRUE(head.ok()) << head.status();
  EstimateRequest e = Sglang();
  e.sglang.context_length = 8192;
  e.sglang.version = "0.5.11";
  e.sglang.speculative_algorithm = SglangSpeculative::kEagle;
  e.sglang.draft = &*head;
  e.sglang.speculative_num_steps = 5;
  e.sglang.speculative_eagle_topk = 4;
  e.sglang.speculative_num_draft_tokens = 8;
  e.sglang.max_running_requests = 64;
  const SglangResolved res = ResolveSglang(e.sglang, kH100, {.tp = 1});
  EXPECT_DOUBLE_EQ(res.mem_fraction_static, 0.835);
  EXPECT_EQ(res.max_running_requests, 64);
  auto spec = Estimate(target, e);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const StageMemory& s = spec->stages[0];
  const int64_t target_cell = 32 * 8 * 128 * 2 * 2;
  const int64_t free_before = kH100 - kCudaContextBytes;
  const int64_t rest =
      static_cast<int64_t>(std::floor(static_cast<double>(free_before) * 0.835)) - s.weights_bytes;
  EXPECT_EQ(s.kv_cache_tokens, rest / (target_cell + target_cell / 32));
  EXPECT_EQ(s.engine_overhead_bytes,
            int64_t{4} * 65 * (8192 + 4 + 8) + kVllmNonTorchSingleGpuBytes);
  EXPECT_TRUE(HasNote(*spec, "counted before the KV pool is sized"));
  EXPECT_FALSE(HasNote(*spec, "resets --max-running-requests"));
  EXPECT_NE(SglangLaunchCommand("m", e, *spec)
                .find("--speculative-num-steps 5 --speculative-eagle-topk 4 "
                      "--speculative-num-draft-tokens 8"),
            std::string::npos);
  // EAGLE3 keeps its own lm_head, and its fc reads 3h (no bias) and its midlayer's qkv_proj 2h.
  e.sglang.speculative_algorithm = SglangSpeculative::kEagle3;
  auto eagle3 = Estimate(target, e);
  ASSERT_TRUE(eagle3.ok()) << eagle3.status();
  EXPECT_EQ(eagle3->stages[0].weights_bytes - s.weights_bytes,
            2 * (int64_t{128256} * 4096 + 3 * 4096 * 4096 + 4096 * (32 + 16) * 128 -
                 (2 * 4096 * 4096 + 4096)));  // EAGLE's 2h fc is not EAGLE3's
}

// STANDALONE: a whole small model (its own embedding and head), 6 GiB more reserve up to 0.5.10;
// NEXTN: the model's MTP layers (config.json num_nextn_predict_layers) sharing embedding and head.
TEST(ServingDraftTest, SglangStandaloneAndNextn) {
  const ModelSpec target = LoadModel("qwen2.5-7b-instruct");
  const ModelSpec small = LoadModel("qwen2.5-0.5b");
  EstimateRequest r = Sglang();
  r.sglang.context_length = 8192;
  auto plain = Estimate(target, r);
  auto alone = Estimate(small, r);
  ASSERT_TRUE(plain.ok() && alone.ok());
  EstimateRequest e = r;
  e.sglang.speculative_algorithm = SglangSpeculative::kStandalone;
  e.sglang.draft = &small;
  EXPECT_DOUBLE_EQ(ResolveSglang(e.sglang, kH100, {.tp = 1}).mem_fraction_static,
                   std::round((81559.0 - 13440 - 6144) / 81559 * 1000) / 1000);
  auto standalone = Estimate(target, e);
  ASSERT_TRUE(standalone.ok()) << standalone.status();
  EXPECT_EQ(standalone->stages[0].weights_bytes - plain->stages[0].weights_bytes,
            alone->stages[0].weights_bytes);
  EXPECT_EQ(standalone->stages[0].kv_cache_bytes_per_token,
            plain->stages[0].kv_cache_bytes_per_token + alone->stages[0].kv_cache_bytes_per_token);
  EXPECT_GT(standalone->stages[0].cuda_graph_bytes, 0);

  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/../models/glm-4.5-air.json");
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<ModelSpec> glm = ParseModelConfig(text.str());
  ASSERT_TRUE(glm.ok()) << glm.status();
  ASSERT_NE(glm->mtp, nullptr);
  EstimateRequest g = Sglang(4);
  g.sglang.context_length = 8192;
  auto base = Estimate(*glm, g);
  ASSERT_TRUE(base.ok()) << base.status();
  g.sglang.speculative_algorithm = SglangSpeculative::kNextn;
  auto nextn = Estimate(*glm, g);
  ASSERT_TRUE(nextn.ok()) << nextn.status();
  const int64_t added = nextn->stages[0].weights_bytes - base->stages[0].weights_bytes;
  // One MoE layer (a 46th of the decoder's layers, roughly) without the 151,552 x 4096 head.
  const int64_t head_per_rank = int64_t{151552} / 4 * 4096 * 2;
  EXPECT_GT(added, 0);
  EXPECT_LT(added, (base->stages[0].weights_bytes - 2 * head_per_rank) / 46 * 2);
  EXPECT_EQ(nextn->stages[0].kv_cache_bytes_per_token - base->stages[0].kv_cache_bytes_per_token,
            base->stages[0].kv_cache_bytes_per_token / 46);
  EXPECT_EQ(SglangLaunchCommand("m", g, *nextn).find("--speculative-draft-model-path"),
            std::string::npos);
}

// vLLM's EAGLE heads (--speculative-config '{"method": "eagle", "model": ...}'): eagle.py
// load_model shares the target's embedding (same shape) and, for eagle, its lm_head; the head's
// layers join the KV pool as a draft model's do.
TEST(ServingDraftTest, VllmEagleHeadSharesEmbeddingAndHead) {
  const ModelSpec target = LoadModel("llama-3.1-8b-instruct");
  absl::StatusOr<ModelSpec> head = ParseModelConfig(kEagleHead);
  ASSERT_TRUE(head.ok()) << head.status();
  EstimateRequest r;
  r.engine = Engine::kVllm;
  r.gpu_memory_bytes = kH100;
  r.vllm.max_model_len = 8192;
  auto plain = Estimate(target, r);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EstimateRequest e = r;
  e.vllm.speculative_method = SpeculativeMethod::kEagle;
  e.vllm.draft = &*head;
  e.vllm.draft_model = "yuhuili/EAGLE-LLaMA3.1-Instruct-8B";
  e.vllm.num_speculative_tokens = 3;
  auto eagle = Estimate(target, e);
  ASSERT_TRUE(eagle.ok()) << eagle.status();
  const int64_t layer = 4096 * 4096 * 2 + 1024 * 4096 * 2 + 14336 * 4096 * 3 + 4096 * 2;
  const int64_t fc = 2 * 4096 * 4096 + 4096;
  EXPECT_EQ(eagle->stages[0].weights_bytes - plain->stages[0].weights_bytes,
            2 * (layer + 4096 + fc) + 2 * 131072 * 128);
  EXPECT_EQ(eagle->stages[0].kv_cache_bytes_per_token,
            plain->stages[0].kv_cache_bytes_per_token + 8 * 128 * 2 * 2);
  EXPECT_LT(eagle->kv_cache_tokens, plain->kv_cache_tokens);
  EXPECT_TRUE(HasNote(*eagle, "EAGLE head yuhuili/EAGLE-LLaMA3.1-Instruct-8B"));
  // The same head as a whole draft model would count its own embedding and lm_head.
  EstimateRequest whole = e;
  whole.vllm.speculative_method = SpeculativeMethod::kDraftModel;
  auto as_model = Estimate(target, whole);
  ASSERT_TRUE(as_model.ok());
  EXPECT_EQ(as_model->stages[0].weights_bytes - eagle->stages[0].weights_bytes,
            2 * (2 * int64_t{128256} * 4096 - fc));
  auto fit = FitVllm(target, e);
  ASSERT_TRUE(fit.ok());
  EXPECT_NE(VllmServeCommand("llama", *fit)
                .find("--speculative-config '{\"method\":\"eagle\",\"model\":\"yuhuili/"
                      "EAGLE-LLaMA3.1-Instruct-8B\",\"num_speculative_tokens\":3}'"),
            std::string::npos)
      << VllmServeCommand("llama", *fit);
  // EAGLE3 keeps its lm_head.
  e.vllm.speculative_method = SpeculativeMethod::kEagle3;
  auto eagle3 = Estimate(target, e);
  ASSERT_TRUE(eagle3.ok()) << eagle3.status();
  EXPECT_EQ(eagle3->stages[0].weights_bytes - eagle->stages[0].weights_bytes,
            2 * (int64_t{128256} * 4096 + 3 * 4096 * 4096 + 4096 * 48 * 128 - fc));
  // Refused by name: no head, a head of another width.
  e.vllm.draft = nullptr;
  EXPECT_NE(Estimate(target, e).status().message().find("needs the head's config.json"),
            std::string::npos);
  const ModelSpec small = LoadModel("qwen2.5-0.5b");
  e.vllm.draft = &small;
  EXPECT_NE(Estimate(target, e).status().message().find("the head's hidden_size 896"),
            std::string::npos)
      << Estimate(target, e).status();
}

// A real EAGLE3 head's config (yuhuili/EAGLE3-LLaMA3.1-Instruct-8B's shape) says draft_vocab_size:
// its lm_head and draft_id_to_target_id (int64) cover 32,000 tokens, not 128,256; it is read, so
// the head is not unverified. target_hidden_size is the width its fc and the check read.
TEST(ServingDraftTest, Eagle3DraftVocabulary) {
  const ModelSpec target = LoadModel("llama-3.1-8b-instruct");
  std::string text = kEagleHead;
  text.insert(text.size() - 1, R"(, "draft_vocab_size": 32000)");
  absl::StatusOr<ModelSpec> reduced = ParseModelConfig(text);
  absl::StatusOr<ModelSpec> full = ParseModelConfig(kEagleHead);
  ASSERT_TRUE(reduced.ok() && full.ok()) << reduced.status();
  EXPECT_FALSE(reduced->unverified());
  EXPECT_EQ(reduced->draft_vocab_size, 32000);
  for (Engine engine : {Engine::kVllm, Engine::kSglang}) {
    EstimateRequest r;
    r.engine = engine;
    r.gpu_memory_bytes = kH100;
    r.vllm.max_model_len = 8192;
    r.vllm.speculative_method = SpeculativeMethod::kEagle3;
    r.vllm.num_speculative_tokens = 3;
    r.sglang.context_length = 8192;
    r.sglang.speculative_algorithm = SglangSpeculative::kEagle3;
    r.vllm.draft = r.sglang.draft = &*full;
    auto a = Estimate(target, r);
    r.vllm.draft = r.sglang.draft = &*reduced;
    auto b = Estimate(target, r);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
    EXPECT_EQ(a->stages[0].weights_bytes - b->stages[0].weights_bytes,
              2 * int64_t{128256 - 32000} * 4096 - 8 * 32000)
        << EngineName(engine);
  }
  // A head for a wider target: the check reads target_hidden_size.
  std::string wide = kEagleHead;
  wide.insert(wide.size() - 1, R"(, "target_hidden_size": 8192)");
  absl::StatusOr<ModelSpec> other = ParseModelConfig(wide);
  ASSERT_TRUE(other.ok()) << other.status();
  EstimateRequest r = Sglang();
  r.sglang.speculative_algorithm = SglangSpeculative::kEagle3;
  r.sglang.draft = &*other;
  EXPECT_NE(
      Estimate(target, r).status().message().find("hidden_size 8192 is not the target's 4096"),
      std::string::npos);
}

// What SGLang would refuse, or what is not modelled, is refused by name.
TEST(ServingDraftTest, SglangSpeculativeRefusals) {
  const ModelSpec target = LoadModel("llama-3.1-8b-instruct");
  absl::StatusOr<ModelSpec> head = ParseModelConfig(kEagleHead);
  ASSERT_TRUE(head.ok());
  auto refused = [&](const EstimateRequest& r) {
    auto e = Estimate(target, r);
    return e.ok() ? std::string("accepted") : std::string(e.status().message());
  };
  EstimateRequest r = Sglang();
  r.sglang.speculative_algorithm = SglangSpeculative::kEagle;
  EXPECT_NE(refused(r).find("sglang.speculative_algorithm=EAGLE needs the draft"),
            std::string::npos);
  r.sglang.speculative_algorithm = SglangSpeculative::kNgram;
  r.sglang.draft = &*head;
  EXPECT_NE(refused(r).find("only EAGLE, EAGLE3 and STANDALONE take one"), std::string::npos);
  r.sglang.draft = nullptr;
  EXPECT_EQ(refused(r), "accepted");  // NGRAM drafts from the prompt: no model
  r.sglang.speculative_algorithm = SglangSpeculative::kNextn;
  EXPECT_NE(refused(r).find("has no MTP layers"), std::string::npos);
  r.sglang.speculative_algorithm = SglangSpeculative::kNone;
  r.sglang.speculative_num_steps = 3;
  EXPECT_NE(refused(r).find("need sglang.speculative_algorithm"), std::string::npos);
  r.sglang.speculative_algorithm = SglangSpeculative::kEagle;
  r.sglang.draft = &*head;
  r.sglang.speculative_num_steps = 65;
  EXPECT_NE(refused(r).find("sglang.speculative_num_steps=65"), std::string::npos);
  r.sglang.speculative_num_steps = -1;
  EXPECT_NE(refused(r).find("sglang.speculative_num_steps=-1"), std::string::npos);
  r.sglang.speculative_num_steps = 0;
  r.sglang.speculative_eagle_topk = -2;
  EXPECT_NE(refused(r).find("sglang.speculative_eagle_topk=-2"), std::string::npos);
  r.sglang.speculative_eagle_topk = 0;
  r.sglang.speculative_num_draft_tokens = -4;
  EXPECT_NE(refused(r).find("sglang.speculative_num_draft_tokens=-4"), std::string::npos);
  r.sglang.speculative_num_draft_tokens = 0;
  r.parallelism.pp = 2;
  EXPECT_NE(refused(r).find("at pp=2"), std::string::npos);
  r.parallelism.pp = 1;
  r.sglang.enable_lora = true;
  r.sglang.max_lora_rank = 16;
  EXPECT_NE(refused(r).find("only with NGRAM"), std::string::npos);
  r.sglang.enable_lora = false;
  r.sglang.version = "0.five";
  EXPECT_NE(refused(r).find("sglang.version"), std::string::npos);
  r.sglang.version = "0.5.11";
  EXPECT_EQ(refused(r), "accepted");
}

// gpt-oss is a hybrid SWA model for SGLang (model_config.py is_hybrid_swa_model): the pool is
// profiled as if all 24 layers were full, then set_num_tokens_hybrid_swa splits its 24 x T tokens
// so each of the 12 sliding layers holds swa_full_tokens_ratio of a full layer's.
TEST(SglangTest, HybridSwaPoolSplitsTheTokens) {
  const ModelSpec spec = LoadModel("gpt-oss-20b");
  EstimateRequest r = Sglang();
  r.sglang.context_length = 8192;
  EstimateRequest one_pool = r;
  one_pool.sglang.disable_hybrid_swa_memory = true;
  auto flat = Estimate(spec, one_pool);
  auto hybrid = Estimate(spec, r);
  ASSERT_TRUE(flat.ok() && hybrid.ok()) << flat.status() << hybrid.status();
  const int64_t t = flat->kv_cache_tokens;
  EXPECT_EQ(hybrid->kv_cache_tokens,
            static_cast<int64_t>(static_cast<double>(t) * 24 / (0.8 * 12 + 12)));
  EXPECT_GT(hybrid->kv_cache_tokens, t);
  // Full-context sequences: the full layers bind (a sliding layer keeps 128 tokens of each).
  EXPECT_EQ(hybrid->max_concurrency, hybrid->kv_cache_tokens / 8192);
  EXPECT_GT(hybrid->max_concurrency, flat->max_concurrency);
  // Sequences shorter than the window: the sliding layers' smaller pool binds.
  EstimateRequest short_ones = r;
  short_ones.context_tokens = 64;
  short_ones.sglang.swa_full_tokens_ratio = 0.05;
  short_ones.sglang.max_running_requests = 1 << 20;
  auto few = Estimate(spec, short_ones);
  ASSERT_TRUE(few.ok()) << few.status();
  EXPECT_LT(few->max_concurrency, few->kv_cache_tokens / 64);
  // The same bytes, shared out differently (up to a token per layer's rounding).
  const int64_t cell = flat->stages[0].kv_cache_bytes_per_token;
  EXPECT_LE(flat->stages[0].kv_cache_bytes - hybrid->stages[0].kv_cache_bytes, cell);
  EXPECT_GE(flat->stages[0].kv_cache_bytes - hybrid->stages[0].kv_cache_bytes, 0);
  EXPECT_TRUE(HasNote(*hybrid, "hybrid SWA pool"));
  EXPECT_TRUE(HasNote(*hybrid, "radix prefix cache changes capacity, not memory"));
  EXPECT_TRUE(HasNote(*flat, "--disable-hybrid-swa-memory"));
  // On a B200 SGLang picks trtllm_mha for gpt-oss and turns the hybrid pool off itself.
  EstimateRequest b200 = r;
  b200.gpu_name = "NVIDIA B200";
  auto blackwell = Estimate(spec, b200);
  ASSERT_TRUE(blackwell.ok());
  EXPECT_EQ(blackwell->kv_cache_tokens, t);
  EXPECT_TRUE(HasNote(*blackwell, "SM100"));
  EXPECT_NE(SglangLaunchCommand("m", one_pool, *flat).find("--disable-hybrid-swa-memory"),
            std::string::npos);
  r.sglang.swa_full_tokens_ratio = 0.5;
  auto half = Estimate(spec, r);
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->kv_cache_tokens,
            static_cast<int64_t>(static_cast<double>(t) * 24 / (0.5 * 12 + 12)));
  EXPECT_NE(SglangLaunchCommand("m", r, *half).find("--swa-full-tokens-ratio 0.5"),
            std::string::npos);
  // Gemma-2's sliding layers are not SGLang's hybrid pool: one full-size pool, said so.
  auto gemma = Estimate(LoadModel("gemma-2-2b-it"), Sglang());
  ASSERT_TRUE(gemma.ok());
  EXPECT_TRUE(HasNote(*gemma, "held at full size, as SGLang does for this architecture"));
  r.sglang.swa_full_tokens_ratio = 1.5;
  EXPECT_NE(Estimate(spec, r).status().message().find("sglang.swa_full_tokens_ratio=1.5"),
            std::string::npos);
  r.sglang.swa_full_tokens_ratio = -0.25;
  EXPECT_NE(Estimate(spec, r).status().message().find("sglang.swa_full_tokens_ratio=-0.25"),
            std::string::npos);
  r.sglang.swa_full_tokens_ratio = std::nan("");
  EXPECT_NE(Estimate(spec, r).status().message().find("sglang.swa_full_tokens_ratio=nan"),
            std::string::npos);
}

// --cpu-offload-gb: that much of each GPU's weights lives in host memory (GPU and host bytes
// apart; the KV pool gains what the GPU gives up); V0's --swap-space is host memory per GPU.
TEST(ServingOffloadTest, WeightsToHostAndSwap) {
  const ModelSpec spec = LoadModel("llama-3.1-8b-instruct");
  EstimateRequest r;
  r.engine = Engine::kVllm;
  r.gpu_memory_bytes = kH100;
  r.vllm.max_model_len = 8192;
  r.parallelism.tp = 2;
  auto plain = Estimate(spec, r);
  r.vllm.cpu_offload_gb = 2;
  auto off = Estimate(spec, r);
  ASSERT_TRUE(plain.ok() && off.ok());
  EXPECT_EQ(plain->stages[0].weights_bytes - off->stages[0].weights_bytes, 2 * kGiB);
  EXPECT_EQ(off->host_bytes - plain->host_bytes, 2 * 2 * kGiB) << "2 GiB from each of 2 GPUs";
  EXPECT_GT(off->kv_cache_tokens, plain->kv_cache_tokens);
  // More than the weights: all of them, no more.
  r.vllm.cpu_offload_gb = 1000;
  auto all = Estimate(spec, r);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->stages[0].weights_bytes, 0);
  EXPECT_EQ(all->host_bytes, plain->stages[0].weights_bytes * 2);
  // V0: 4 GiB of CPU swap per GPU unless --swap-space says otherwise.
  r.vllm.cpu_offload_gb = 0;
  r.vllm.version = "0.6.3";
  auto v0 = Estimate(spec, r);
  ASSERT_TRUE(v0.ok());
  EXPECT_EQ(v0->host_bytes, 2 * 4 * kGiB);
  r.vllm.swap_space_gb = 16;
  EXPECT_EQ(Estimate(spec, r)->host_bytes, 2 * 16 * kGiB);
  r.vllm.swap_space_gb = -1;
  EXPECT_NE(Estimate(spec, r).status().message().find("swap_space_gb=-1"), std::string::npos);
}

}  // namespace
}  // namespace fleetplan::estimator
