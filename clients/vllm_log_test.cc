#include "clients/vllm_log.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "planner/estimator/calibration.h"

namespace fleetplan::cli {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
std::string Log(const std::string& name) {
  return Read(std::string(FLEETPLAN_SOURCE_DIR) + "/tests/data/vllm_logs/" + name);
}

// The 0.19 DEBUG log of a case in the shared calibration set reads back as that case.
TEST(VllmLog, V1DebugLogReadsBackAsTheSharedCase) {
  auto log = ParseVllmLog(Log("v0.19.0-llama-3.1-8b-h100.log"), "l");
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->version, "0.19.0");
  EXPECT_EQ(log->generation, "V1");
  EXPECT_EQ(log->config.at("kv_cache_dtype"), "fp8");
  EXPECT_EQ(log->config.at("dtype"), "bfloat16");
  EXPECT_EQ(*log->max_model_len, 8192);
  EXPECT_EQ(*log->max_num_seqs, 1024);
  EXPECT_DOUBLE_EQ(*log->gpu_memory_utilization, 0.95);
  auto c = CaseFromLog(*log, {.case_id = "x",
                              .model_path = "models/llama-3.1-8b-instruct.json",
                              .gpu = "H100-80GB",
                              .source = "test"});
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string shared =
      Read(std::string(FLEETPLAN_SOURCE_DIR) + "/tests/data/calibration/vllm_startup.jsonl");
  nlohmann::json want;
  std::istringstream lines(shared);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["case"] == "vllm/48-llama-3.1-8b-instruct") want = j;
  }
  ASSERT_FALSE(want.is_null());
  const int64_t precision = (*c)["measured"]["precision_bytes"];
  EXPECT_EQ(precision, want["measured"]["precision_bytes"].get<int64_t>());
  for (const char* key :
       {"weights_bytes", "non_torch_bytes", "activation_peak_bytes", "available_kv_cache_bytes",
        "cuda_graph_bytes", "non_kv_bytes", "requested_bytes"}) {
    EXPECT_NEAR((*c)["measured"][key].get<double>(), want["measured"][key].get<double>(),
                2.0 * static_cast<double>(precision))
        << key;
  }
  EXPECT_EQ((*c)["measured"]["kv_cache_tokens"], want["measured"]["kv_cache_tokens"]);
  // The total, printed only at DEBUG level elsewhere, follows from requested / utilization.
  EXPECT_NEAR((*c)["gpu_total_bytes"].get<double>(), want["gpu_total_bytes"].get<double>(),
              3.0 * static_cast<double>(precision));
  EXPECT_EQ((*c)["input_confidence"], "high");
  // And it scores like the shared case.
  const estimator::CaseResult r = estimator::ScoreCase(
      c->dump(), Read(std::string(FLEETPLAN_SOURCE_DIR) +
                      "/tests/data/calibration/models/llama-3.1-8b-instruct.json"));
  ASSERT_TRUE(r.skip_reason.empty()) << r.skip_reason;
  EXPECT_LT(std::abs(r.metrics.at("kv_cache_tokens").rel_err()), 0.01);
}

TEST(VllmLog, V0FormatsAndBlocks) {
  auto old = ParseVllmLog(Log("v0.6.3-llama-3.1-8b-a100.log"), "l");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->version, "0.6.3.post1");
  EXPECT_EQ(old->generation, "V0");
  EXPECT_EQ(*old->gpu_total_bytes, static_cast<int64_t>(79.15 * (1 << 30) + 0.5));
  EXPECT_DOUBLE_EQ(*old->gpu_memory_utilization, 0.90);
  // "Loading model weights took 14.9888 GB" (GiB, whatever the unit says); the torch peak of 0.6
  // includes the weights.
  EXPECT_EQ(old->measured.at("weights_bytes"), static_cast<int64_t>(14.9888 * (1 << 30) + 0.5));
  EXPECT_NEAR(static_cast<double>(old->measured.at("activation_peak_bytes")),
              (16.19 - 14.9888) * (1 << 30), 1e3);
  EXPECT_EQ(old->measured.at("num_gpu_blocks"), 27934);
  EXPECT_EQ(old->measured.at("kv_cache_tokens"), 27934 * 16) << "blocks x block_size";
  EXPECT_EQ(old->measured.count("cuda_graph_bytes"), 0u) << "0.6 printed no size";

  auto mid = ParseVllmLog(Log("v0.7.3-llama-3.1-8b-l40s.log"), "l");
  ASSERT_TRUE(mid.ok()) << mid.status();
  EXPECT_EQ(mid->version, "0.7.3");
  EXPECT_EQ(mid->generation, "V0");
  EXPECT_EQ(*mid->max_model_len, 4096);
  EXPECT_EQ(mid->measured.at("num_gpu_blocks"), 12154);
  EXPECT_EQ(mid->measured.at("cuda_graph_bytes"), static_cast<int64_t>(0.29 * (1 << 30) + 0.5));
  EXPECT_EQ(mid->measured.at("available_kv_cache_bytes"),
            static_cast<int64_t>(23.74 * (1 << 30) + 0.5));
}

TEST(VllmLog, FailedStartsAndBadLogs) {
  auto failed = ParseVllmLog(Log("v0.9.1-failed-a10g.log"), "l");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_TRUE(failed->failed);
  auto c = CaseFromLog(*failed, {.case_id = "f", .model_path = "m.json", .gpu = "A10G"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)["startup_status"], "failed");
  EXPECT_NE((*c)["notes"].get<std::string>().find("larger than the available KV cache"),
            std::string::npos);
  auto garbled = ParseVllmLog(Log("garbled.log"), "garbled.log");
  EXPECT_EQ(garbled.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(garbled.status().message().find("garbled.log: line 2: expected a number of GiB after "
                                            "'model weights take'"),
            std::string::npos)
      << garbled.status();
  auto truncated = ParseVllmLog(Log("truncated.log"), "truncated.log");
  EXPECT_NE(truncated.status().message().find("no vLLM memory lines"), std::string::npos);
  EXPECT_FALSE(ParseVllmLog("", "e").ok());
  EXPECT_FALSE(ParseVllmLog("GPU KV cache size: lots tokens\n", "e").ok());
  EXPECT_FALSE(ParseVllmLog("Maximum concurrency for  tokens per request\n", "e").ok());
  // A V1 INFO log without utilization: the case says what to pass.
  auto info = ParseVllmLog("INFO [gpu_worker.py:1] Available KV cache memory: 10.00 GiB\n", "i");
  ASSERT_TRUE(info.ok());
  auto no_util = CaseFromLog(
      *info,
      {.case_id = "i", .model_path = "m", .gpu = "H100-80GB", .gpu_total_bytes = 85017493504});
  EXPECT_NE(no_util.status().message().find("gpu_memory_utilization"), std::string::npos);
}

}  // namespace
}  // namespace fleetplan::cli
