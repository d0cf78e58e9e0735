// vLLM version profiles (vllm_version.h): each version range's KV budget rule, scheduler defaults
// and default utilization, as that version's source has them.

#include "planner/estimator/vllm_version.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/engine_constants.h"
#include "planner/estimator/estimator.h"
#include "planner/estimator/vllm.h"

namespace fleetplan::estimator {
namespace {

constexpr int64_t kH100 = 85017493504;

ModelSpec Llama() {
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/llama-3.1-8b-instruct.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return *ParseModelConfig(ss.str());
}

EstimateRequest At(const std::string& version, int64_t gpu_bytes = kH100) {
  EstimateRequest r{.engine = Engine::kVllm, .gpu_memory_bytes = gpu_bytes};
  r.vllm.version = version;
  r.vllm.max_model_len = 8192;
  return r;
}

TEST(VllmVersionTest, ParsesReleasesAndRefusesGarbageByName) {
  EXPECT_EQ(ParseVllmVersion("v", "0.19.1")->ToString(), "0.19.1");
  EXPECT_EQ(ParseVllmVersion("v", "v0.6.3.post1")->ToString(), "0.6.3");
  EXPECT_EQ(ParseVllmVersion("v", "0.11.0rc2")->ToString(), "0.11.0");
  EXPECT_EQ(ParseVllmVersion("v", "0.10.1+cu128")->ToString(), "0.10.1");
  EXPECT_EQ(ParseVllmVersion("v", "0.8")->ToString(), "0.8.0");
  EXPECT_EQ(ParseVllmVersion("v", "")->ToString(), "0.19.0") << "empty: the calibrated default";
  for (const char* bad : {"latest", "19", "0", "x.y", "0.99999999.1", "1000.1"}) {
    absl::StatusOr<VllmVersion> v = ParseVllmVersion("vllm.version", bad);
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_NE(v.status().message().find(std::string("vllm.version=\"") + bad), std::string::npos)
        << v.status().message();
  }
}

TEST(VllmVersionTest, ProfilesFollowEachVersionsSource) {
  const auto profile = [](const char* v) { return VllmProfileFor(*ParseVllmVersion("v", v)); };
  EXPECT_EQ(profile("0.2.1").profiling, VllmProfiling::kTorchPeakOnly);  // before PR #2031
  EXPECT_EQ(profile("0.5.4").profiling, VllmProfiling::kWholeDevicePeak);
  EXPECT_EQ(profile("0.6.3").profiling, VllmProfiling::kWholeDevicePeak);
  EXPECT_EQ(profile("0.6.4").profiling, VllmProfiling::kSnapshotIncrease);  // memory_profiling
  EXPECT_FALSE(profile("0.7.3").v1);
  EXPECT_EQ(profile("0.7.3").max_cudagraph_batch, 256);
  EXPECT_TRUE(profile("0.8.5").v1);
  EXPECT_EQ(profile("0.8.5").profiling, VllmProfiling::kWholeDevicePeak);
  EXPECT_FALSE(profile("0.8.5").large_gpu_batch_defaults);
  EXPECT_EQ(profile("0.9.1").profiling, VllmProfiling::kSnapshotIncrease);
  EXPECT_TRUE(profile("0.9.1").large_gpu_batch_defaults);
  EXPECT_EQ(profile("0.21.0").default_utilization, 0.9);
  EXPECT_EQ(profile("0.22.0").default_utilization, 0.92);
  EXPECT_TRUE(profile("0.19.2").calibrated);
  EXPECT_FALSE(profile("0.18.0").calibrated);
}

TEST(VllmVersionTest, SchedulerDefaultsByVersionAndGpu) {
  const VllmProfile now = VllmProfileFor({0, 19, 0});
  EXPECT_EQ(VllmSchedulerDefaults(now, kH100, "H100-80GB", 8192).max_num_seqs, 1024);
  EXPECT_EQ(VllmSchedulerDefaults(now, kH100, "H100-80GB", 8192).max_num_batched_tokens, 8192);
  // PR #17885: no large defaults on an A100, whatever its memory.
  EXPECT_EQ(VllmSchedulerDefaults(now, kH100, "NVIDIA A100-SXM4-80GB", 8192).max_num_seqs, 256);
  EXPECT_EQ(VllmSchedulerDefaults(now, kH100, "A100-80GB", 8192).max_num_batched_tokens, 2048);
  EXPECT_EQ(VllmSchedulerDefaults(now, 24 * kGiB, "L4", 8192).max_num_seqs, 256);
  const VllmProfile v0 = VllmProfileFor({0, 6, 3});
  EXPECT_EQ(VllmSchedulerDefaults(v0, kH100, "H100", 8192).max_num_batched_tokens, 8192)
      << "V0 without chunked prefill: a whole prompt";
  EXPECT_EQ(VllmSchedulerDefaults(v0, kH100, "H100", 1024).max_num_batched_tokens, 2048);
  EXPECT_EQ(VllmSchedulerDefaults(v0, kH100, "H100", 131072).max_num_batched_tokens, 2048)
      << "chunked prefill on above 32K";
  EXPECT_EQ(VllmSchedulerDefaults(VllmProfileFor({0, 8, 5}), kH100, "H100", 8192).max_num_seqs,
            256);
}

TEST(VllmVersionTest, EstimatesFollowTheVersion) {
  const ModelSpec llama = Llama();
  auto now = Estimate(llama, At(""));
  auto v019 = Estimate(llama, At("0.19.0"));
  auto v022 = Estimate(llama, At("0.22.0"));
  auto v085 = Estimate(llama, At("0.8.5"));
  auto v073 = Estimate(llama, At("0.7.3"));
  auto v021 = Estimate(llama, At("0.2.1"));
  ASSERT_TRUE(now.ok() && v019.ok() && v022.ok() && v085.ok() && v073.ok() && v021.ok());
  EXPECT_EQ(now->kv_cache_tokens, v019->kv_cache_tokens);
  // 0.22's default utilization 0.92 gives 2 % of the GPU more to the KV cache.
  EXPECT_NEAR(static_cast<double>(v022->stages[0].available_kv_cache_bytes -
                                  v019->stages[0].available_kv_cache_bytes),
              0.02 * static_cast<double>(kH100), 1e6);
  // 0.8.x counted the CUDA context in the budget; 0.19 does not.
  // (0.8.5 also has the small scheduler defaults, hence a different profile peak.)
  EXPECT_EQ(v019->stages[0].available_kv_cache_bytes - v085->stages[0].available_kv_cache_bytes -
                (v085->stages[0].activation_peak_bytes - v019->stages[0].activation_peak_bytes),
            kCudaContextBytes);
  // V0's profile run samples through the sort of top-k/top-p: a larger peak than V1's sampler at
  // the same 256 sequences.
  EXPECT_GT(v073->stages[0].activation_peak_bytes, 2 * v085->stages[0].activation_peak_bytes);
  EXPECT_GT(v073->stages[0].activation_peak_bytes,
            256 * llama.vocab_size * (2 + kVllmV0SamplerFp32BytesPerLogit));
  // Before PR #2031 nothing outside torch was counted: more KV, and it comes on top.
  EXPECT_GT(v021->stages[0].available_kv_cache_bytes, v073->stages[0].available_kv_cache_bytes);
  // Only 0.19 is calibrated: other versions' bands are wider, and say so.
  EXPECT_TRUE(v019->band_widened.empty());
  ASSERT_FALSE(v073->band_widened.empty());
  EXPECT_NE(v073->band_widened[0].find("vLLM 0.7.3 is modelled from its source"),
            std::string::npos);
  EXPECT_LT(v073->kv_cache_tokens_low, v073->kv_cache_tokens * 95 / 100);
  // The estimate names the semantics it used.
  bool named = false;
  for (const std::string& n : v073->notes) named |= n.find("vLLM 0.7.3 (V0") != std::string::npos;
  EXPECT_TRUE(named);
  // A bad version is refused by name.
  auto bad = Estimate(llama, At("banana"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("vllm.version=\"banana\""), std::string::npos);
}

TEST(VllmVersionTest, TheLaunchLineCarriesTheVersionsDefaultUtilization) {
  const ModelSpec llama = Llama();
  EstimateRequest r = At("0.22.1");
  auto fit = FitVllm(llama, r, Utilization::kAsGiven);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->gpu_memory_utilization, 0.92);
  EXPECT_NE(VllmServeCommand("m", *fit).find("--gpu-memory-utilization 0.92"), std::string::npos);
}

TEST(VllmVersionTest, A100GetsTheSmallDefaultsOnItsOwnName) {
  const ModelSpec llama = Llama();
  EstimateRequest h100 = At("");
  h100.gpu_name = "H100-80GB";
  EstimateRequest a100 = h100;
  a100.gpu_name = "A100-80GB";
  auto h = Estimate(llama, h100);
  auto a = Estimate(llama, a100);
  ASSERT_TRUE(h.ok() && a.ok());
  // 256 sequences and 2048 tokens instead of 1024 and 8192: a smaller profile peak.
  EXPECT_LT(a->stages[0].activation_peak_bytes, h->stages[0].activation_peak_bytes / 2);
  EXPECT_GT(a->kv_cache_tokens, h->kv_cache_tokens);
}

}  // namespace
}  // namespace fleetplan::estimator
