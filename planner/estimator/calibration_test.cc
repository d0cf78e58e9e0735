// The estimator against the measured calibration cases in tests/data/calibration (copies of
// ../shared/calibration). These are the acceptance figures of the estimator; a change to the
// physics that makes any of them worse fails here.

#include "planner/estimator/calibration.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace fleetplan::estimator {
namespace {

std::vector<CaseResult> ScoreFile(const std::string& name) {
  const std::filesystem::path dir = FLEETPLAN_CALIBRATION_DIR;
  std::ifstream in(dir / name);
  std::vector<CaseResult> results;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto model = CaseModelPath(line);
    EXPECT_TRUE(model.ok()) << line.substr(0, 80);
    std::ifstream m(dir / *model);
    std::stringstream ss;
    ss << m.rdbuf();
    results.push_back(ScoreCase(line, ss.str()));
  }
  return results;
}

std::vector<CaseResult> All() {
  std::vector<CaseResult> all;
  for (const char* f :
       {"hf_transformers_h100.jsonl", "hf_transformers_train_h100.jsonl", "vllm_startup.jsonl"}) {
    auto r = ScoreFile(f);
    all.insert(all.end(), r.begin(), r.end());
  }
  return all;
}

TEST(CalibrationTest, SkipsNothingAndMeetsTheAccuracyTargets) {
  const std::vector<CaseResult> results = All();
  ASSERT_EQ(results.size(), 171u);
  const ValidationSummary s = Summarize(results);
  EXPECT_TRUE(s.skipped.empty()) << s.skipped.front().first << ": " << s.skipped.front().second;
  EXPECT_EQ(s.scored, 171);

  const MetricSummary& params = s.metrics.at("params");
  EXPECT_EQ(params.max_abs_rel_err, 0.0);

  const MetricSummary& peak = s.metrics.at("peak_allocated_bytes");
  EXPECT_EQ(peak.n, 127);
  EXPECT_LE(peak.median_abs_rel_err, 0.015);
  EXPECT_LE(peak.p90_abs_rel_err, 0.04);
  EXPECT_EQ(peak.under_predicted_over_2pct, 0);

  EXPECT_LE(s.metrics.at("kv_cache_tokens").median_abs_rel_err, 0.02);
  EXPECT_LE(s.metrics.at("kv_cache_tokens").p90_abs_rel_err, 0.05);
  EXPECT_LE(s.metrics.at("kv_cache_bytes").max_abs_rel_err, 0.001);
  EXPECT_EQ(s.oom_cases, s.oom_predicted_not_fit);
}

TEST(CalibrationTest, VllmWeightsWithinOnePercent) {
  const ValidationSummary s = Summarize(ScoreFile("vllm_startup.jsonl"));
  EXPECT_LE(s.metrics.at("weights_bytes").median_abs_rel_err, 0.01);
  EXPECT_LE(s.metrics.at("available_kv_cache_bytes").median_abs_rel_err, 0.02);
}

// The uncertainty bands (uncertainty.h) on every calibration file: the measured value lies on the
// safe side of the band (memory <= high, KV capacity >= low) in at least 99 % of the cases, and
// the band is narrow: its safe end is within 5 % of the point estimate in the median.
TEST(CalibrationTest, BandsCoverTheMeasuredCases) {
  for (const char* file :
       {"hf_transformers_h100.jsonl", "hf_transformers_train_h100.jsonl", "vllm_startup.jsonl"}) {
    const ValidationSummary s = Summarize(ScoreFile(file));
    ASSERT_FALSE(s.bands.empty()) << file;
    for (const auto& [name, b] : s.bands) {
      SCOPED_TRACE(std::string(file) + " " + name);
      EXPECT_GT(b.n, 10);
      EXPECT_GE(b.coverage(), 0.99) << b.covered << " of " << b.n << ", worst " << b.worst_case;
      EXPECT_LE(b.median_width, 0.05);
    }
  }
  // The memory band of the total is checked on every HF and training case, the KV-capacity band
  // on every vLLM case.
  EXPECT_EQ(Summarize(ScoreFile("vllm_startup.jsonl")).bands.at("kv_cache_tokens").n, 44);
  EXPECT_EQ(Summarize(ScoreFile("hf_transformers_h100.jsonl")).bands.at("peak_allocated_bytes").n,
            107);
}

// A band that cannot fail is no check: moving every measured value 30 % to the unsafe side leaves
// most cases outside their band.
TEST(CalibrationTest, BandsAreNotWideEnoughToHideA30PercentError) {
  std::vector<CaseResult> results = ScoreFile("hf_transformers_h100.jsonl");
  for (CaseResult& r : results) {
    for (auto& [name, b] : r.bands) b.measured = b.point + (b.point * 3) / 10;
  }
  const ValidationSummary s = Summarize(results);
  EXPECT_LT(s.bands.at("peak_allocated_bytes").coverage(), 0.1);
}

TEST(CalibrationTest, MalformedCasesAreSkippedWithAReason) {
  CaseResult r = ScoreCase("{not json", "{}");
  EXPECT_FALSE(r.skip_reason.empty());
  r = ScoreCase(R"({"case": "x", "engine": "tgi", "measured": {}})", R"({"model_type": "llama"})");
  EXPECT_NE(r.skip_reason.find("model config"), std::string::npos) << r.skip_reason;
  r = ScoreCase(R"({"case": "x", "engine": "tgi", "model": "m", "measured": {}})",
                R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 1,
                    "num_attention_heads": 1, "intermediate_size": 64, "vocab_size": 10})");
  EXPECT_NE(r.skip_reason.find("engine \"tgi\" is not modelled"), std::string::npos)
      << r.skip_reason;
  r = ScoreCase(R"({"case": "x", "engine": "vllm"})", "{}");
  EXPECT_NE(r.skip_reason.find("measured"), std::string::npos);
}

TEST(CalibrationTest, OomCaseMustBePredictedNotToFit) {
  // A synthetic OOM: Llama-3.1-8B prefill of 64 x 32768 tokens on the H100 cannot fit.
  const std::string model = R"({"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
    "vocab_size": 128256, "torch_dtype": "bfloat16"})";
  const std::string line = R"({"case": "oom", "model": "m", "engine": "hf-transformers",
    "attn": "sdpa", "dtype": "bfloat16", "phase": "prefill", "batch": 64, "prompt_tokens": 32768,
    "new_tokens": 0, "logits": "last", "gpu_total_bytes": 85017493504,
    "measured": {"params": 8030261248, "weights_bytes": 16060524032,
                 "peak_allocated_bytes": 84000000000, "oom": true}})";
  CaseResult r = ScoreCase(line, model);
  ASSERT_TRUE(r.skip_reason.empty()) << r.skip_reason;
  EXPECT_TRUE(r.measured_oom);
  EXPECT_FALSE(r.predicted_fits);
  ValidationSummary s = Summarize({r});
  EXPECT_EQ(s.oom_cases, 1);
  EXPECT_EQ(s.oom_predicted_not_fit, 1);
}

}  // namespace
}  // namespace fleetplan::estimator
