// Qwen3-Next (families/qwen3_next.cc): the parameter count recomputed from transformers'
// modeling_qwen3_next.py (79.67 B without the checkpoint's MTP layer, which transformers does not
// load); the linear layers' per-sequence state next to the full layers' per-token KV; the engines
// not modelled for it refused by name.

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/sglang.h"
#include "planner/estimator/testing/test_models.h"
#include "planner/estimator/vllm.h"

namespace fleetplan::estimator {
namespace {

using nlohmann::json;

json Qwen3Next() { return testing::TestModelJson("qwen3-next-80b-a3b.json"); }

// A serving request at tp=2 on 140 GiB GPUs: `concurrency` sequences of 32K tokens, the engine's
// context limit set to them.
EstimateRequest OnH200Pair(Engine engine, int64_t concurrency) {
  EstimateRequest req;
  req.engine = engine;
  req.gpu_memory_bytes = 140 * kGiB;
  req.parallelism.tp = 2;
  req.vllm.max_model_len = engine == Engine::kVllm ? 32768 : 0;
  req.sglang.context_length = engine == Engine::kSglang ? 32768 : 0;
  req.context_tokens = 32768;
  req.concurrency = concurrency;
  return req;
}

TEST(Qwen3NextTest, ParametersAreTransformers) {
  auto spec = ParseModelConfig(Qwen3Next().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << (spec->notes.empty() ? "" : spec->notes.back());
  const int64_t h = 2048;
  // Gated delta net: in_proj_qkvz [H, 2 x 2048 + 2 x 4096], in_proj_ba [H, 64], conv1d 8192 x 4,
  // dt_bias and A_log [32], the gated norm [128], out_proj [4096, H].
  const int64_t linear = h * 12288 + h * 64 + 8192 * 4 + 2 * 32 + 128 + 4096 * h;
  // Gated attention: q_proj [H, 16 x 256 x 2], k and v [H, 2 x 256], o [4096, H], q/k norms.
  const int64_t full = h * 8192 + 2 * h * 512 + 4096 * h + 2 * 256;
  // MoE: router [512, H], 512 experts of 512, a shared expert of 512 and its gate; two norms.
  const int64_t moe = 512 * h + 512 * 3 * h * 512 + 3 * h * 512 + h + 2 * h;
  const int64_t total = 36 * linear + 12 * full + 48 * moe + 2 * 151936 * h + h;
  EXPECT_EQ(spec->num_params(), total);
  EXPECT_EQ(total, 79'674'391'296);
  int linear_layers = 0;
  for (int k : spec->layer_kind_of) {
    linear_layers += spec->layer_kinds[static_cast<size_t>(k)].attention.linear_attention ? 1 : 0;
  }
  EXPECT_EQ(linear_layers, 36);
  EXPECT_EQ(spec->layer_kinds.size(), 2u);  // linear/moe and gated/moe, nothing left over
  // layer_types, when written, says the same.
  json typed = Qwen3Next();
  json types = json::array();
  for (int i = 0; i < 48; ++i)
    types.push_back((i + 1) % 4 == 0 ? "full_attention" : "linear_attention");
  typed["layer_types"] = types;
  auto same = ParseModelConfig(typed.dump());
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->num_params(), total);
}

TEST(Qwen3NextTest, LinearLayersKeepAStatePerSequence) {
  auto spec = ParseModelConfig(Qwen3Next().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EstimateRequest req;
  req.engine = Engine::kHfTransformers;
  req.gpu_memory_bytes = 200 * kGiB;
  req.hf.batch = 4;
  req.hf.prompt_tokens = 1024;
  auto short_prompt = Estimate(*spec, req);
  req.hf.prompt_tokens = 4096;
  auto long_prompt = Estimate(*spec, req);
  ASSERT_TRUE(short_prompt.ok() && long_prompt.ok());
  const int64_t per_token = 12 * 2 * 256 * 2 * 2;  // 12 full layers, 2 KV heads, bf16
  const int64_t state = 36 * (8192 * 4 * 2 + 32 * 128 * 128 * 4);  // conv (bf16) + fp32 recurrent
  EXPECT_EQ(short_prompt->stages[0].kv_cache_bytes, 4 * (1024 * per_token + state));
  EXPECT_EQ(long_prompt->stages[0].kv_cache_bytes - short_prompt->stages[0].kv_cache_bytes,
            4 * 3072 * per_token);
  bool widened = false;
  for (const std::string& w : long_prompt->band_widened) {
    widened |= w.find("linear-attention") != std::string::npos;
  }
  EXPECT_TRUE(widened);
}

// vLLM's hybrid allocator (vllm_model.cc KvGroups), the figures worked by hand from its source:
// at tp=2 a full layer's page is 1 KV head x (256 + 256) x 2 bytes = 1024 bytes per token; a
// linear layer's state is conv [3, 8192 / 2] + recurrent [32 / 2, 128, 128], bf16 = 548,864 bytes
// (mamba_utils.py gated_delta_net_state_shape). The attention block becomes
// 16 x ceil(548864 / (16 x 1024)) = 544 tokens, the state's page is padded by 1.49 % to 557,056
// bytes (models/config.py HybridAttentionMambaModelConfig: vLLM logs "Setting attention block size
// to 544 tokens" and "Padding mamba page size by 1.49%"), and 12 full + 36 linear layers make 4
// groups of 12 (kv_cache_utils.py _get_kv_cache_groups_uniform_page_size).
TEST(Qwen3NextTest, VllmGrowsTheBlockToHoldTheState) {
  auto spec = ParseModelConfig(Qwen3Next().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  const EstimateRequest req = OnH200Pair(Engine::kVllm, 4);
  auto est = Estimate(*spec, req);
  ASSERT_TRUE(est.ok()) << est.status();
  const StageMemory& s = est->stages[0];
  EXPECT_EQ(s.kv_block_bytes, 544 * 1024 * 12);
  EXPECT_EQ(s.kv_cache_bytes_per_token, 1024 * 12);  // the full layers only
  // A sequence: ceil(32768 / 544) = 61 blocks of the full group, one page in each of the three
  // state groups, whatever its length.
  EXPECT_EQ(s.kv_blocks_per_sequence, 61 + 3);
  EXPECT_EQ(s.workload_kv_bytes, 4 * 64 * s.kv_block_bytes);
  ASSERT_GT(s.num_gpu_blocks, 0);
  // "GPU KV cache size": blocks / groups x the attention block.
  EXPECT_EQ(s.kv_cache_tokens, s.num_gpu_blocks / 4 * 544);
  EXPECT_EQ(est->max_concurrency, s.num_gpu_blocks / 64);
  bool logged = false;
  for (const std::string& n : est->notes) {
    logged |= n.find("attention block size to 544 tokens") != std::string::npos &&
              n.find("by 1.49%") != std::string::npos;
  }
  EXPECT_TRUE(logged);
  bool widened = false;
  for (const std::string& w : est->band_widened) {
    widened |= w.find("linear-attention layers on vLLM") != std::string::npos;
  }
  EXPECT_TRUE(widened);

  // The state shrinks with tp (conv [3, 2048], recurrent [8, 128, 128]: 274,432 bytes) while the
  // 2 KV heads replicate to 1 per rank: 16 x ceil(274432 / 16384) = 272 tokens.
  EstimateRequest tp4 = req;
  tp4.parallelism.tp = 4;
  auto four = Estimate(*spec, tp4);
  ASSERT_TRUE(four.ok()) << four.status();
  EXPECT_EQ(four->stages[0].kv_block_bytes, 272 * 1024 * 12);
  EXPECT_EQ(four->stages[0].kv_blocks_per_sequence, 121 + 3);  // ceil(32768 / 272) = 121

  // N-gram drafting of 2 tokens: 2 more conv rows (565,248 bytes: a 560-token block) and 2 more
  // pages per state layer group (MambaSpec num_speculative_blocks).
  EstimateRequest ngram = req;
  ngram.vllm.speculative_method = SpeculativeMethod::kNgram;
  ngram.vllm.num_speculative_tokens = 2;
  auto drafted = Estimate(*spec, ngram);
  ASSERT_TRUE(drafted.ok()) << drafted.status();
  EXPECT_EQ(drafted->stages[0].kv_block_bytes, 560 * 1024 * 12);
  EXPECT_EQ(drafted->stages[0].kv_blocks_per_sequence, 59 + 3 * 3);  // ceil(32770 / 560) = 59

  // An fp32 recurrent state (--mamba-ssm-cache-dtype float32): 24,576 + 1,048,576 bytes, a
  // 16 x ceil(1073152 / 16384) = 1056-token block; the launch line carries the flag.
  EstimateRequest fp32 = req;
  fp32.vllm.mamba_ssm_cache_dtype = "float32";
  auto wide = Estimate(*spec, fp32);
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_EQ(wide->stages[0].kv_block_bytes, 1056 * 1024 * 12);
  EXPECT_EQ(wide->stages[0].kv_blocks_per_sequence, 32 + 3);  // ceil(32768 / 1056) = 32
  auto fit = FitVllm(*spec, fp32);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_NE(VllmServeCommand("Qwen/Qwen3-Next-80B-A3B-Instruct", *fit)
                .find("--mamba-ssm-cache-dtype float32"),
            std::string::npos);
  fp32.vllm.mamba_cache_dtype = "fp8";
  auto bad = Estimate(*spec, fp32);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("vllm.mamba_cache_dtype=\"fp8\""), std::string::npos)
      << bad.status();
  fp32.vllm.mamba_cache_dtype = "";
  fp32.vllm.mamba_ssm_cache_dtype = "int8";
  auto bad_ssm = Estimate(*spec, fp32);
  ASSERT_FALSE(bad_ssm.ok());
  EXPECT_NE(bad_ssm.status().message().find("vllm.mamba_ssm_cache_dtype=\"int8\""),
            std::string::npos)
      << bad_ssm.status();

  // More context costs attention blocks only.
  EstimateRequest longer = req;
  longer.vllm.max_model_len = 65536;
  longer.context_tokens = 65536;
  auto lengthened = Estimate(*spec, longer);
  ASSERT_TRUE(lengthened.ok()) << lengthened.status();
  EXPECT_EQ(lengthened->stages[0].kv_blocks_per_sequence, 121 + 3);  // ceil(65536 / 544) = 121
}

TEST(Qwen3NextTest, VllmRefusesWhatItDoesNotServe) {
  auto spec = ParseModelConfig(Qwen3Next().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EstimateRequest req = OnH200Pair(Engine::kVllm, 1);
  req.vllm.version = "0.10.1";
  auto old = Estimate(*spec, req);
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.status().message().find("vllm.version=0.10.1"), std::string::npos) << old.status();
  EXPECT_NE(old.status().message().find("0.10.2"), std::string::npos) << old.status();
  req.vllm.version = "0.10.2";
  EXPECT_TRUE(Estimate(*spec, req).ok());
  req.vllm.version = "";
  EstimateRequest mtp = req;
  mtp.vllm.speculative_method = SpeculativeMethod::kMtp;
  mtp.vllm.num_speculative_tokens = 1;
  auto drafted = Estimate(*spec, mtp);
  ASSERT_FALSE(drafted.ok());
  EXPECT_NE(drafted.status().message().find("vllm.speculative_method=mtp"), std::string::npos)
      << drafted.status();
  // Every layer linear: no attention page to align the state to.
  json config = Qwen3Next();
  config["layer_types"] = json::array();
  for (int i = 0; i < 48; ++i) config["layer_types"].push_back("linear_attention");
  auto all_linear = ParseModelConfig(config.dump());
  ASSERT_TRUE(all_linear.ok()) << all_linear.status();
  auto refused = Estimate(*all_linear, req);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("on every layer"), std::string::npos)
      << refused.status();
}

// SGLang's mamba state pool (sglang_model.cc), worked by hand: at tp=2 a linear layer's state is
// conv [4096, 3] bf16 + recurrent [16, 128, 128] fp32 = 1,073,152 bytes, 38,633,472 for the 36
// layers (Mamba2CacheParams.mamba_cache_per_req); the states take 0.9 / 1.9 of the pool after the
// weights, the 12 full layers' 1024-byte cells the rest, and a running request holds three states
// with the radix cache.
TEST(Qwen3NextTest, SglangSplitsThePoolBetweenStatesAndTokens) {
  auto spec = ParseModelConfig(Qwen3Next().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  const EstimateRequest req = OnH200Pair(Engine::kSglang, 8);
  auto est = Estimate(*spec, req);
  ASSERT_TRUE(est.ok()) << est.status();
  const StageMemory& s = est->stages[0];
  const int64_t per_request = 38'633'472;
  const int64_t rest = s.available_kv_cache_bytes;
  const int64_t states = static_cast<int64_t>(static_cast<double>(rest) * 0.9 / 1.9) / per_request;
  ASSERT_GT(states, 3);
  EXPECT_EQ(s.kv_cache_tokens, (rest - states * per_request) / (12 * 1024));
  EXPECT_EQ(s.kv_cache_bytes, s.kv_cache_tokens * 12 * 1024 + states * per_request);
  // At 32K tokens a sequence the tokens bind (70 sequences, 221 running requests' states)...
  EXPECT_EQ(est->max_concurrency, s.kv_cache_tokens / 32768);
  EXPECT_LT(est->max_concurrency, states / 3);
  // ... at 4K the states do.
  EstimateRequest short_context = req;
  short_context.context_tokens = 4096;
  auto shorter = Estimate(*spec, short_context);
  ASSERT_TRUE(shorter.ok()) << shorter.status();
  EXPECT_EQ(shorter->max_concurrency, states / 3);
  bool noted = false;
  for (const std::string& n : est->notes) {
    noted |=
        n.find(absl::StrCat(states, " states of ", per_request, " bytes")) != std::string::npos;
  }
  EXPECT_TRUE(noted);

  // A bf16 recurrent state halves it; a fixed --max-mamba-cache-size leaves the rest to tokens.
  EstimateRequest bf16 = req;
  bf16.sglang.mamba_ssm_dtype = "bfloat16";
  bf16.sglang.max_mamba_cache_size = 90;
  auto half = Estimate(*spec, bf16);
  ASSERT_TRUE(half.ok()) << half.status();
  EXPECT_EQ(half->stages[0].kv_cache_tokens,
            (half->stages[0].available_kv_cache_bytes - 90 * 19'759'104) / (12 * 1024));
  EXPECT_EQ(half->max_concurrency, 30);  // 90 states / 3
  const std::string line = SglangLaunchCommand("Qwen/Qwen3-Next-80B-A3B-Instruct", bf16, *half);
  EXPECT_NE(line.find("--max-mamba-cache-size 90 --mamba-ssm-dtype bfloat16"), std::string::npos)
      << line;

  // Without the radix cache a running request holds one state: max_running_requests of them.
  EstimateRequest no_radix = req;
  no_radix.sglang.disable_radix_cache = true;
  no_radix.sglang.max_running_requests = 40;
  auto one = Estimate(*spec, no_radix);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->stages[0].kv_cache_bytes - one->stages[0].kv_cache_tokens * 12 * 1024,
            40 * per_request);
  EXPECT_EQ(one->max_concurrency, std::min<int64_t>(40, one->kv_cache_tokens / 32768));
  EXPECT_GT(one->max_concurrency, est->max_concurrency / 3);

  // A larger ratio gives the states more of the pool and the tokens less.
  EstimateRequest ratio = req;
  ratio.sglang.mamba_full_memory_ratio = 2.0;
  auto more = Estimate(*spec, ratio);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_LT(more->kv_cache_tokens, est->kv_cache_tokens);
  EXPECT_GT(more->stages[0].kv_cache_bytes - more->stages[0].kv_cache_tokens * 12 * 1024,
            states * per_request);

  struct Bad {
    const char* what;
    void (*set)(SglangConfig&);
    const char* expect;
  } bad[] = {
      {"old", [](SglangConfig& g) { g.version = "0.5.9"; }, "sglang.version=0.5.9"},
      {"ngram", [](SglangConfig& g) { g.speculative_algorithm = SglangSpeculative::kNgram; },
       "sglang.speculative_algorithm=NGRAM"},
      {"lora",
       [](SglangConfig& g) {
         g.enable_lora = true;
         g.max_lora_rank = 16;
       },
       "sglang.enable_lora"},
      {"dtype", [](SglangConfig& g) { g.mamba_ssm_dtype = "int8"; }, "sglang.mamba_ssm_dtype"},
      {"ratio", [](SglangConfig& g) { g.mamba_full_memory_ratio = -1; },
       "sglang.mamba_full_memory_ratio=-1"},
      {"states", [](SglangConfig& g) { g.max_mamba_cache_size = -5; },
       "sglang.max_mamba_cache_size=-5"},
      {"huge states", [](SglangConfig& g) { g.max_mamba_cache_size = int64_t{1} << 40; },
       "sglang.max_mamba_cache_size=1099511627776"},
      {"huge ratio", [](SglangConfig& g) { g.mamba_full_memory_ratio = 1e9; },
       "sglang.mamba_full_memory_ratio=1e+09"},
      {"empty-ish dtype", [](SglangConfig& g) { g.mamba_ssm_dtype = "float16"; },
       "sglang.mamba_ssm_dtype=\"float16\""},
  };
  for (const Bad& b : bad) {
    EstimateRequest r = req;
    b.set(r.sglang);
    auto refused = Estimate(*spec, r);
    ASSERT_FALSE(refused.ok()) << b.what;
    EXPECT_NE(refused.status().message().find(b.expect), std::string::npos)
        << b.what << ": " << refused.status();
  }
}

TEST(Qwen3NextTest, EnginesNotModelledAndBadConfigs) {
  auto spec = ParseModelConfig(Qwen3Next().dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  for (Engine e : {Engine::kOpenvino, Engine::kLlamaCpp}) {
    EstimateRequest req;
    req.engine = e;
    req.gpu_memory_bytes = 140 * kGiB;
    req.parallelism.tp = 2;
    auto est = Estimate(*spec, req);
    ASSERT_FALSE(est.ok()) << EngineName(e);
    EXPECT_NE(est.status().message().find(absl::StrCat("engine=", EngineName(e))),
              std::string::npos)
        << est.status();
    EXPECT_NE(est.status().message().find("linear-attention"), std::string::npos) << est.status();
  }
  struct Case {
    const char* field;
    json value;
    const char* expect;
  } cases[] = {
      {"linear_num_value_heads", 24, "linear_num_value_heads=24"},
      {"linear_key_head_dim", nullptr, "linear_key_head_dim"},
      {"linear_conv_kernel_dim", 0, "linear_conv_kernel_dim"},
      {"layer_types", json::array({"linear_attention"}), "layer_types"},
  };
  for (const Case& c : cases) {
    json config = Qwen3Next();
    if (c.value.is_null()) {
      config.erase(c.field);
    } else {
      config[c.field] = c.value;
    }
    auto bad = ParseModelConfig(config.dump());
    ASSERT_FALSE(bad.ok()) << c.field;
    EXPECT_NE(bad.status().message().find(c.expect), std::string::npos)
        << c.field << ": " << bad.status();
  }
  // Another family's layer_types cannot name linear layers.
  json llama = {{"model_type", "llama"},
                {"hidden_size", 256},
                {"num_hidden_layers", 2},
                {"num_attention_heads", 4},
                {"intermediate_size", 512},
                {"vocab_size", 1000},
                {"layer_types", {"full_attention", "linear_attention"}}};
  auto refused = ParseModelConfig(llama.dump());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("layer_types[1]"), std::string::npos)
      << refused.status();
}

}  // namespace
}  // namespace fleetplan::estimator
