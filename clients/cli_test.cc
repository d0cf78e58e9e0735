#include "clients/cli.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/common/version.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/gpu_catalog.h"
#include "planner/estimator/llama_cpp.h"
#include "planner/estimator/testing/gguf_writer.h"

namespace fleetplan::cli {
namespace {

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunArgs(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = RunCli(args, out, err);
  return {code, out.str(), err.str()};
}

nlohmann::json RunJson(const std::vector<std::string>& args) {
  Result r = RunArgs(args);
  EXPECT_EQ(r.code, kExitOk) << r.err;
  return r.code == kExitOk ? nlohmann::json::parse(r.out) : nlohmann::json::object();
}

TEST(CliTest, NoArgumentsIsUsageError) {
  Result r = RunArgs({});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("Usage: fleetplan <command>"), std::string::npos);
}

TEST(CliTest, UnknownCommandIsUsageError) {
  Result r = RunArgs({"frobnicate"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("unknown command \"frobnicate\""), std::string::npos);
}

TEST(CliTest, HelpListsCommands) {
  Result r = RunArgs({"--help"});
  EXPECT_EQ(r.code, kExitOk);
  EXPECT_NE(r.out.find("version"), std::string::npos);
  EXPECT_NE(r.out.find("health"), std::string::npos);
}

TEST(CliTest, EverySubcommandHasHelp) {
  for (const std::string name : {"version", "health", "estimate", "validate"}) {
    Result r = RunArgs({name, "--help"});
    EXPECT_EQ(r.code, kExitOk) << name;
    EXPECT_NE(r.out.find("Usage: fleetplan " + name), std::string::npos) << name;
    Result via_help = RunArgs({"help", name});
    EXPECT_EQ(via_help.out, r.out) << name;
  }
}

TEST(CliTest, VersionTableAndJson) {
  Result table = RunArgs({"version"});
  EXPECT_EQ(table.code, kExitOk);
  EXPECT_EQ(table.out, std::string("fleetplan ") + kVersion + "\n");
  Result json = RunArgs({"version", "--output=json"});
  ASSERT_EQ(json.code, kExitOk);
  EXPECT_EQ(nlohmann::json::parse(json.out)["client_version"], kVersion);
}

TEST(CliTest, BadOutputFormatIsUsageError) {
  Result r = RunArgs({"version", "--output=yaml"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--output=\"yaml\" must be table or json"), std::string::npos);
}

TEST(CliTest, UnknownFlagIsUsageError) {
  Result r = RunArgs({"version", "--frob"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("unknown flag --frob"), std::string::npos);
}

TEST(CliTest, BadTimeoutIsUsageError) {
  Result r = RunArgs({"health", "--timeout=0"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--timeout=0"), std::string::npos);
}

TEST(CliTest, UnreachableServerIsOperationalError) {
  // Port 1 on loopback: nothing listens there; the deadline keeps the test short.
  Result r = RunArgs({"health", "--server=127.0.0.1:1", "--timeout=0.5"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_NE(r.err.find("fleetplan health: UNAVAILABLE"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fleetplan::cli

namespace fleetplan::cli {
namespace {

const std::string kModels = std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(EstimateCliTest, JsonHasExactBytesPerStage) {
  Result r = RunArgs({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json", "--pp=2",
                      "--gpu=H100-80GB", "--gpu-memory-utilization=0.95", "--max-model-len=8192",
                      "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["params"], 8030261248);
  ASSERT_EQ(j["stages"].size(), 2u);
  EXPECT_GT(j["stages"][0]["weights_bytes"].get<int64_t>(), 7 * (int64_t{1} << 30));
  EXPECT_EQ(j["bytes_per_rank"].size(), 2u);
  EXPECT_TRUE(j["fits"].get<bool>());
  EXPECT_GT(j["kv_cache_tokens"].get<int64_t>(), 1000000);
  // Each stage's band, and the reservation the plan makes (its high end) per rank.
  for (const auto& s : j["stages"]) {
    EXPECT_LT(s["low_bytes"].get<int64_t>(), s["total_bytes"].get<int64_t>());
    EXPECT_GT(s["high_bytes"].get<int64_t>(), s["total_bytes"].get<int64_t>());
  }
  EXPECT_EQ(j["bytes_per_rank"][1], j["stages"][1]["high_bytes"]);
  EXPECT_LT(j["kv_cache_tokens_low"].get<int64_t>(), j["kv_cache_tokens"].get<int64_t>());
  EXPECT_GE(j["max_high_bytes"].get<int64_t>(), j["max_total_bytes"].get<int64_t>());
}

// --gguf: llama.cpp's llama-server from the file's header, in the same JSON contract as every
// engine (stages[].weights_bytes ...), with host memory and the launch line beside it; the
// numbers are the estimator's (planner/estimator/llama_cpp.h).
TEST(EstimateCliTest, LlamaCppFromGguf) {
  const std::string file = ::testing::TempDir() + "/fleetplan_cli_model.gguf";
  estimator::testing::TestModel m;
  m.layers = 8;
  { std::ofstream(file, std::ios::binary) << estimator::testing::WriteModel(m); }
  Result r = RunArgs({"estimate", "--gguf=" + file, "--gpu=L4", "--concurrency=6", "--context=2048",
                      "--n-gpu-layers=5", "--cache-type-k=q8_0", "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["engine"], "llama.cpp");
  EXPECT_EQ(j["model_type"], "llama");
  EXPECT_EQ(j["launch_command"], "llama-server -m " + file + " -c 12288 -np 6 -ngl 5 -ctk q8_0");
  EXPECT_EQ(j["llama_cpp"]["gpu_layers"], 4);
  EXPECT_EQ(j["llama_cpp"]["n_ctx_seq"], 2048);
  EXPECT_EQ(j["max_concurrency"], 6);
  auto parsed = estimator::ParseGgufHeader(estimator::testing::WriteModel(m));
  ASSERT_TRUE(parsed.ok());
  estimator::EstimateRequest req{.engine = estimator::Engine::kLlamaCpp,
                                 .gpu_memory_bytes = j["gpu_memory_bytes"].get<int64_t>(),
                                 .concurrency = 6,
                                 .context_tokens = 2048};
  req.llama_cpp.n_gpu_layers = 5;
  req.llama_cpp.cache_type_k = "q8_0";
  auto offline = estimator::EstimateLlamaCpp(*parsed, req);
  ASSERT_TRUE(offline.ok()) << offline.status();
  ASSERT_EQ(j["stages"].size(), 1u);
  const auto& g = offline->memory.stages[0];
  EXPECT_EQ(j["stages"][0]["weights_bytes"], g.weights_bytes);
  EXPECT_EQ(j["stages"][0]["kv_cache_bytes"], g.kv_cache_bytes);
  EXPECT_EQ(j["stages"][0]["high_bytes"], g.high_bytes);
  EXPECT_EQ(j["host_bytes"], offline->memory.host_bytes);
  EXPECT_GT(j["host_bytes"].get<int64_t>(), 0) << "four blocks stay on the CPU";

  Result table = RunArgs({"estimate", "--gguf=" + file, "--tensor-split=1,1", "--pp=2"});
  ASSERT_EQ(table.code, kExitOk) << table.err;
  EXPECT_NE(table.out.find("engine llama.cpp"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("host memory"), std::string::npos);
  EXPECT_NE(table.out.find("-ts 1,1"), std::string::npos) << table.out;

  // Bad input: another engine, a file that is not GGUF, a missing file, a bad flag value.
  Result engine = RunArgs({"estimate", "--gguf=" + file, "--engine=vllm"});
  EXPECT_EQ(engine.code, kExitUsage);
  EXPECT_NE(engine.err.find("--engine=llama.cpp"), std::string::npos) << engine.err;
  Result not_gguf =
      RunArgs({"estimate", "--gguf=" + std::string(FLEETPLAN_SOURCE_DIR) + "/README.md"});
  EXPECT_EQ(not_gguf.code, kExitUsage);
  EXPECT_NE(not_gguf.err.find("magic"), std::string::npos) << not_gguf.err;
  EXPECT_EQ(RunArgs({"estimate", "--gguf=/nonexistent.gguf"}).code, kExitError);
  Result split = RunArgs({"estimate", "--gguf=" + file, "--tensor-split=1,x"});
  EXPECT_EQ(split.code, kExitUsage);
  EXPECT_NE(split.err.find("\"x\" is not a number"), std::string::npos) << split.err;
  Result fit = RunArgs({"estimate", "--gguf=" + file, "--fit=maybe"});
  EXPECT_EQ(fit.code, kExitUsage);
  EXPECT_NE(fit.err.find("--fit=\"maybe\" must be on or off"), std::string::npos) << fit.err;
  Result fa_word = RunArgs({"estimate", "--gguf=" + file, "--flash-attn=sometimes"});
  EXPECT_EQ(fa_word.code, kExitUsage);
  EXPECT_NE(fa_word.err.find("sometimes"), std::string::npos) << fa_word.err;
  Result fa = RunArgs({"estimate", "--gguf=" + file, "--flash-attn=off", "--cache-type-v=q4_0"});
  EXPECT_EQ(fa.code, kExitUsage);
  EXPECT_NE(fa.err.find("cache_type_v=q4_0"), std::string::npos) << fa.err;
  // --mmproj FILE beside it: on the first GPU, in the launch line; a text GGUF is not an mmproj.
  const std::string mmproj = ::testing::TempDir() + "/fleetplan_cli_mmproj.gguf";
  { std::ofstream(mmproj, std::ios::binary) << estimator::testing::WriteMmproj(); }
  Result with_mmproj = RunArgs(
      {"estimate", "--gguf=" + file, "--mmproj=" + mmproj, "--n-gpu-layers=99", "--output=json"});
  ASSERT_EQ(with_mmproj.code, kExitOk) << with_mmproj.err;
  auto mj = nlohmann::json::parse(with_mmproj.out);
  EXPECT_EQ(mj["llama_cpp"]["mmproj"], true);
  EXPECT_NE(mj["launch_command"].get<std::string>().find("--mmproj " + mmproj), std::string::npos)
      << mj["launch_command"];
  EXPECT_EQ(mj["stages"][0]["weights_bytes"].get<int64_t>(),
            RunJson({"estimate", "--gguf=" + file, "--n-gpu-layers=99",
                     "--output=json"})["stages"][0]["weights_bytes"]
                    .get<int64_t>() +
                64 * 64 * 2 + 64 * 512 * 2);
  Result text_mmproj = RunArgs({"estimate", "--gguf=" + file, "--mmproj=" + file});
  EXPECT_EQ(text_mmproj.code, kExitUsage);
  EXPECT_NE(text_mmproj.err.find("general.architecture=llama"), std::string::npos)
      << text_mmproj.err;
  Result config_mmproj =
      RunArgs({"estimate", "--model=" + kModels + "qwen2.5-0.5b.json", "--mmproj=" + mmproj});
  EXPECT_EQ(config_mmproj.code, kExitUsage);
  EXPECT_NE(config_mmproj.err.find("--mmproj goes with a GGUF model"), std::string::npos)
      << config_mmproj.err;
  // With --server the mmproj's header is sent with the model's: read (and refused) here first.
  Result remote_mmproj = RunArgs(
      {"estimate", "--gguf=" + file, "--mmproj=/nonexistent-mmproj.gguf", "--server=127.0.0.1:1"});
  EXPECT_EQ(remote_mmproj.code, kExitError);
  EXPECT_NE(remote_mmproj.err.find("/nonexistent-mmproj.gguf"), std::string::npos)
      << remote_mmproj.err;
  // A config.json with --engine=llama.cpp says what to give instead.
  Result config = RunArgs(
      {"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json", "--engine=llama.cpp"});
  EXPECT_NE(config.code, kExitOk);
  EXPECT_NE(config.err.find("--gguf"), std::string::npos) << config.err;
}

// --engine=llama.cpp from a config.json: the GGUF --gguf-type names, as llama.cpp's converter and
// quantizer would write it (planner/estimator/gguf_convert.h), with the same numbers as the
// estimator and a launch line; a VLM brings its mmproj; no file type is refused, not assumed.
TEST(EstimateCliTest, LlamaCppFromConfigThroughTheConversion) {
  const std::string model = kModels + "llama-3.1-8b-instruct.json";
  Result r = RunArgs({"estimate", "--model=" + model, "--engine=llama.cpp", "--gguf-type=q4_K_M",
                      "--gpu=L4", "--ctx-size=8192", "--parallel=2", "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["engine"], "llama.cpp");
  EXPECT_EQ(j["llama_cpp"]["file_type"], "q4_K_M");
  EXPECT_EQ(j["llama_cpp"]["mmproj"], false);
  EXPECT_EQ(j["launch_command"], "llama-server -m MODEL-q4_K_M.gguf -c 8192 -np 2 -ngl 33");
  auto text = estimator::ParseModelConfig(ReadAll(model));
  ASSERT_TRUE(text.ok());
  estimator::EstimateRequest req{.engine = estimator::Engine::kLlamaCpp,
                                 .gpu_memory_bytes = j["gpu_memory_bytes"].get<int64_t>()};
  req.llama_cpp.file_type = "q4_K_M";
  req.llama_cpp.n_ctx = 8192;
  req.llama_cpp.n_parallel = 2;
  auto offline = estimator::Estimate(*text, req);
  ASSERT_TRUE(offline.ok()) << offline.status();
  EXPECT_EQ(j["stages"][0]["weights_bytes"], offline->stages[0].weights_bytes);
  EXPECT_EQ(j["stages"][0]["high_bytes"], offline->stages[0].high_bytes);
  EXPECT_EQ(j["kv_cache_tokens"], 8192);

  // --ollama: Ollama's defaults on a 22 GiB L4 (one slot of 4096 tokens) and its serve line.
  Result ollama = RunArgs({"estimate", "--model=" + model, "--engine=llama.cpp",
                           "--gguf-type=q4_K_M", "--gpu=L4", "--ollama", "--output=json"});
  ASSERT_EQ(ollama.code, kExitOk) << ollama.err;
  auto o = nlohmann::json::parse(ollama.out);
  EXPECT_EQ(o["launch_command"], "OLLAMA_CONTEXT_LENGTH=4096 OLLAMA_NUM_PARALLEL=1 ollama serve");
  EXPECT_EQ(o["kv_cache_tokens"], 4096);

  // Gemma-3-4B with an image: the mmproj's weights and clip's buffer on the first GPU.
  const std::string vlm = kModels + "gemma-3-4b-it.json";
  Result with_image =
      RunArgs({"estimate", "--model=" + vlm, "--engine=llama.cpp", "--gguf-type=q8_0",
               "--ctx-size=4096", "--parallel=1", "--images=1", "--output=json"});
  ASSERT_EQ(with_image.code, kExitOk) << with_image.err;
  auto v = nlohmann::json::parse(with_image.out);
  EXPECT_EQ(v["llama_cpp"]["mmproj"], true);
  EXPECT_NE(v["launch_command"].get<std::string>().find("--mmproj mmproj-MODEL-f16.gguf"),
            std::string::npos)
      << v["launch_command"];
  EXPECT_NE(v["notes"].dump().find("mmproj: the vision tower"), std::string::npos);

  // Bad input: no file type, an unknown one, an architecture the converter does not write.
  Result untyped = RunArgs({"estimate", "--model=" + model, "--engine=llama.cpp"});
  EXPECT_NE(untyped.code, kExitOk);
  EXPECT_NE(untyped.err.find("--gguf-type"), std::string::npos) << untyped.err;
  Result bad =
      RunArgs({"estimate", "--model=" + model, "--engine=llama.cpp", "--gguf-type=q3_K_XL"});
  EXPECT_NE(bad.code, kExitOk);
  EXPECT_NE(bad.err.find("llama_cpp.file_type=\"q3_K_XL\""), std::string::npos) << bad.err;
  Result mla = RunArgs({"estimate", "--model=" + kModels + "deepseek-v2-lite.json",
                        "--engine=llama.cpp", "--gguf-type=q4_K_M"});
  EXPECT_NE(mla.code, kExitOk);
  EXPECT_NE(mla.err.find("MLA"), std::string::npos) << mla.err;

  // --compare-engines without --gguf: llama.cpp's row from the conversion.
  Result compare =
      RunArgs({"estimate", "--model=" + model, "--compare-engines", "--gguf-type=q4_K_M",
               "--concurrency=2", "--context=4096", "--output=json"});
  ASSERT_EQ(compare.code, kExitOk) << compare.err;
  auto rows = nlohmann::json::parse(compare.out)["engines"];
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[4]["engine"], "llama.cpp");
  EXPECT_NE(rows[4]["launch_command"].get<std::string>().find("MODEL-q4_K_M.gguf"),
            std::string::npos)
      << rows[4].dump();
  Result compare_untyped = RunArgs({"estimate", "--model=" + model, "--compare-engines"});
  EXPECT_NE(compare_untyped.out.find("--gguf-type"), std::string::npos) << compare_untyped.out;
}

// --engine=sglang: SGLang's fraction rule and its launch line; its flags are refused by name.
TEST(EstimateCliTest, SglangEstimateAndLaunchLine) {
  Result r = RunArgs({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json",
                      "--engine=sglang", "--tp=2", "--context-length=32768", "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["engine"], "sglang");
  EXPECT_EQ(j["max_model_len"], 32768);
  // Each rank's pool is ~57 GiB of 64 KiB tokens (4 of the 8 KV heads x 32 layers x K, V x bf16).
  EXPECT_GT(j["kv_cache_tokens"].get<int64_t>(), 800000);
  EXPECT_EQ(j["bytes_per_rank"].size(), 2u);
  const std::string line = j["launch_command"];
  EXPECT_EQ(line.rfind("python -m sglang.launch_server --model-path ", 0), 0u) << line;
  EXPECT_NE(line.find("--tp 2 --mem-fraction-static 0."), std::string::npos) << line;
  EXPECT_NE(line.find("--context-length 32768"), std::string::npos) << line;
  Result bad = RunArgs({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json",
                        "--engine=sglang", "--mem-fraction-static=1.5"});
  EXPECT_NE(bad.code, kExitOk);
  EXPECT_NE(bad.err.find("mem_fraction_static=1.5"), std::string::npos) << bad.err;
  Result negative = RunArgs({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json",
                             "--engine=sglang", "--context-length=-5"});
  EXPECT_NE(negative.code, kExitOk);
  EXPECT_NE(negative.err.find("sglang.context_length=-5"), std::string::npos) << negative.err;
  // Piecewise prefill graphs: their reserve lowers the fraction, the line turns them on.
  auto piecewise =
      RunJson({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json", "--engine=sglang",
               "--tp=2", "--context-length=32768", "--enable-piecewise-cuda-graph",
               "--piecewise-cuda-graph-max-tokens=4096", "--output=json"});
  EXPECT_LT(piecewise["kv_cache_tokens"].get<int64_t>(), j["kv_cache_tokens"].get<int64_t>());
  EXPECT_NE(piecewise["launch_command"].get<std::string>().find(
                "--enable-piecewise-cuda-graph --piecewise-cuda-graph-max-tokens 4096"),
            std::string::npos)
      << piecewise["launch_command"];
  // Adapters kept in host memory: host_bytes, the GPU unchanged, the flag in the line.
  auto loaded =
      RunJson({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json", "--engine=sglang",
               "--enable-lora", "--max-lora-rank=16", "--max-loaded-loras=10", "--output=json"});
  // 10 adapters x 32 layers x 1,310,720 rank-16 elements x bf16.
  EXPECT_EQ(loaded["host_bytes"], int64_t{10} * 32 * 1310720 * 2) << loaded.dump();
  EXPECT_NE(loaded["launch_command"].get<std::string>().find("--max-loaded-loras 10"),
            std::string::npos)
      << loaded["launch_command"];
}

// --speculative-method: mtp drafts with the model's own MTP layers (GLM-4.5-Air's one), which
// take weights and KV on every rank; ngram takes no weights;
// a model without MTP layers is refused naming the config field.
TEST(EstimateCliTest, SpeculativeMethodFlags) {
  const std::string glm =
      "--model=" + std::string(FLEETPLAN_TESTDATA_DIR) + "/models/glm-4.5-air.json";
  const std::vector<std::string> base = {
      "estimate", glm, "--gpu=h200", "--tp=4", "--max-model-len=8192", "--output=json"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return RunArgs(args);
  };
  Result plain = with({});
  Result mtp = with({"--speculative-method=mtp", "--num-speculative-tokens=1"});
  Result ngram = with({"--speculative-method=ngram"});
  ASSERT_EQ(plain.code, kExitOk) << plain.err;
  ASSERT_EQ(mtp.code, kExitOk) << mtp.err;
  ASSERT_EQ(ngram.code, kExitOk) << ngram.err;
  auto p = nlohmann::json::parse(plain.out);
  auto m = nlohmann::json::parse(mtp.out);
  auto n = nlohmann::json::parse(ngram.out);
  EXPECT_GT(m["stages"][0]["weights_bytes"].get<int64_t>(),
            p["stages"][0]["weights_bytes"].get<int64_t>() + 1'400'000'000LL);
  EXPECT_LT(m["kv_cache_tokens"].get<int64_t>(), p["kv_cache_tokens"].get<int64_t>());
  EXPECT_EQ(n["stages"][0]["weights_bytes"], p["stages"][0]["weights_bytes"]);
  Result emit = RunArgs({"estimate", glm, "--gpu=h200", "--tp=4", "--max-model-len=8192",
                         "--speculative-method=mtp", "--num-speculative-tokens=1", "--emit=vllm"});
  ASSERT_EQ(emit.code, kExitOk) << emit.err;
  EXPECT_NE(emit.out.find(R"(--speculative-config '{"method":"mtp","num_speculative_tokens":1}')"),
            std::string::npos)
      << emit.out;
  Result none = RunArgs(
      {"estimate", "--model=" + kModels + "qwen2.5-7b-instruct.json", "--speculative-method=mtp"});
  EXPECT_NE(none.code, kExitOk);
  EXPECT_NE(none.err.find("num_nextn_predict_layers"), std::string::npos) << none.err;
  Result bad = RunArgs({"estimate", glm, "--speculative-method=medusa2"});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_NE(bad.err.find("medusa2"), std::string::npos) << bad.err;
  Result both = RunArgs({"estimate", glm, "--speculative-method=mtp",
                         "--draft-model=" + kModels + "qwen2.5-0.5b.json"});
  EXPECT_NE(both.code, kExitOk);
  EXPECT_NE(both.err.find("--draft-model"), std::string::npos) << both.err;
}

// --draft-model and --enable-lora: the draft and the adapter slots take the KV pool, the
// launch line carries them; a missing draft file is an error naming it.
TEST(EstimateCliTest, DraftModelAndLoraFlags) {
  const std::string target = "--model=" + kModels + "qwen2.5-7b-instruct.json";
  Result plain = RunArgs({"estimate", target, "--max-model-len=8192", "--output=json"});
  Result spec = RunArgs({"estimate", target, "--max-model-len=8192",
                         "--draft-model=" + kModels + "qwen2.5-0.5b.json",
                         "--draft-model-name=Qwen/Qwen2.5-0.5B", "--num-speculative-tokens=5",
                         "--enable-lora", "--max-loras=2", "--output=json"});
  ASSERT_EQ(plain.code, kExitOk) << plain.err;
  ASSERT_EQ(spec.code, kExitOk) << spec.err;
  auto p = nlohmann::json::parse(plain.out);
  auto j = nlohmann::json::parse(spec.out);
  EXPECT_LT(j["kv_cache_tokens"].get<int64_t>(), p["kv_cache_tokens"].get<int64_t>());
  EXPECT_GT(j["stages"][0]["weights_bytes"].get<int64_t>(),
            p["stages"][0]["weights_bytes"].get<int64_t>());
  Result emit =
      RunArgs({"estimate", target, "--max-model-len=8192", "--concurrency=4",
               "--draft-model=" + kModels + "qwen2.5-0.5b.json", "--enable-lora", "--emit=vllm"});
  ASSERT_EQ(emit.code, kExitOk) << emit.err;
  EXPECT_NE(emit.out.find("--speculative-config '{\"model\":"), std::string::npos) << emit.out;
  EXPECT_NE(emit.out.find("--enable-lora --max-loras 1 --max-lora-rank 16"), std::string::npos)
      << emit.out;
  Result missing = RunArgs({"estimate", target, "--draft-model=/nonexistent/config.json"});
  EXPECT_EQ(missing.code, kExitError);
  EXPECT_NE(missing.err.find("/nonexistent/config.json"), std::string::npos) << missing.err;
  // The vllm serve line fleetplan reads knows the LoRA flags.
  const std::string dir = ::testing::TempDir() + "/fleetplan_lora_model";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kModels + "qwen2.5-7b-instruct.json", dir + "/config.json",
                             std::filesystem::copy_options::overwrite_existing);
  Result line = RunArgs(
      {"estimate", "--vllm=vllm serve " + dir + " --enable-lora --max-loras 3", "--output=json"});
  ASSERT_EQ(line.code, kExitOk) << line.err;
  bool noted = false;
  const auto parsed = nlohmann::json::parse(line.out);
  for (const auto& n : parsed["notes"]) {
    noted |= n.get<std::string>().find("LoRA: 3 slot(s)") != std::string::npos;
  }
  EXPECT_TRUE(noted) << line.out;
  // Prefix caching is reported as what it is: capacity, not memory.
  Result prefix = RunArgs(
      {"estimate", "--vllm=vllm serve " + dir + " --enable-prefix-caching", "--output=json"});
  ASSERT_EQ(prefix.code, kExitOk) << prefix.err;
  EXPECT_NE(prefix.out.find("changes capacity, not memory"), std::string::npos) << prefix.out;
}

// --engine=openvino: the VLM pipeline split, the weight format from the exported folder's
// openvino_config.json, continuous batching's blocks, and bad values refused by name.
TEST(EstimateCliTest, OpenvinoEngine) {
  const std::string dir = ::testing::TempDir() + "/fleetplan_ov_gemma";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kModels + "gemma-3-4b-it.json", dir + "/config.json",
                             std::filesystem::copy_options::overwrite_existing);
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"estimate", "--model=" + dir + "/config.json",
                                     "--engine=openvino", "--gpu-memory-bytes=34359738368",
                                     "--output=json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunArgs(args);
  };
  Result fp16 = run({"--images=1", "--image-height=682", "--image-width=1024"});
  ASSERT_EQ(fp16.code, kExitOk) << fp16.err;
  auto a = nlohmann::json::parse(fp16.out);
  ASSERT_EQ(a["pipeline_parts"].size(), 3u) << fp16.out;
  EXPECT_EQ(a["pipeline_parts"][0]["name"], "vision_embeddings");
  EXPECT_GT(a["stages"][0]["kv_cache_bytes"].get<int64_t>(), 0);
  // An int4 export (openvino_config.json beside config.json) is read without a flag.
  {
    std::ofstream(dir + "/openvino_config.json") << R"({"dtype": "int4", "quantization_config":
      {"bits": 4, "sym": true, "group_size": 64, "ratio": 1.0}})";
  }
  Result int4 = run({"--images=1", "--image-height=682", "--image-width=1024"});
  ASSERT_EQ(int4.code, kExitOk) << int4.err;
  auto b = nlohmann::json::parse(int4.out);
  EXPECT_LT(b["pipeline_parts"][2]["weights_bytes"].get<int64_t>() * 3,
            a["pipeline_parts"][2]["weights_bytes"].get<int64_t>());
  EXPECT_NE(b["launch_command"].get<std::string>().find("--weight-format int4"), std::string::npos);
  { std::ofstream(dir + "/openvino_config.json") << R"({"dtype": "int3"})"; }
  Result bad_file = run({});
  EXPECT_NE(bad_file.code, kExitOk);
  EXPECT_NE(bad_file.err.find("dtype=\"int3\""), std::string::npos) << bad_file.err;
  std::filesystem::remove(dir + "/openvino_config.json");
  // Continuous batching with a cache_size: its blocks bound the workload.
  Result cb = run({"--continuous-batching", "--cache-size=4", "--concurrency=4", "--context=4096"});
  ASSERT_EQ(cb.code, kExitOk) << cb.err;
  auto c = nlohmann::json::parse(cb.out);
  EXPECT_GT(c["kv_cache_tokens"].get<int64_t>(), 0);
  EXPECT_NE(c["launch_command"].get<std::string>().find("ovms"), std::string::npos);
  Result over =
      run({"--continuous-batching", "--cache-size=0.1", "--concurrency=64", "--context=8192"});
  EXPECT_NE(nlohmann::json::parse(over.out)["fits"].get<bool>(), true) << over.out;
  // Bad values name the flag and the value.
  Result dev = run({"--ov-device=npu"});
  EXPECT_NE(dev.err.find("--ov-device=\"npu\""), std::string::npos) << dev.err;
  Result tp = run({"--tp=2"});
  EXPECT_NE(tp.err.find("tp=2"), std::string::npos) << tp.err;
  Result u4 = run({"--ov-device=gpu", "--kv-cache-precision=u4"});
  EXPECT_NE(u4.err.find("kv_precision=u4"), std::string::npos) << u4.err;
}

// --compare-engines: one row per engine for the same model and workload, each with its own
// numbers (the estimator's) and launch line; llama.cpp's row from --gguf.
TEST(EstimateCliTest, CompareEngines) {
  const std::string file = ::testing::TempDir() + "/fleetplan_compare.gguf";
  { std::ofstream(file, std::ios::binary) << estimator::testing::WriteModel({}); }
  Result r =
      RunArgs({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json", "--gguf=" + file,
               "--compare-engines", "--concurrency=4", "--context=4096", "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out)["engines"];
  ASSERT_EQ(j.size(), 5u);
  EXPECT_EQ(j[0]["engine"], "vllm");
  EXPECT_EQ(j[1]["engine"], "sglang");
  EXPECT_EQ(j[2]["engine"], "hf-transformers");
  EXPECT_EQ(j[3]["engine"], "openvino");
  EXPECT_NE(j[3]["launch_command"].get<std::string>().find("optimum-cli export openvino"),
            std::string::npos)
      << j[3].dump();
  j.erase(3);  // the rest below: the GPU engines
  EXPECT_NE(j[0]["launch_command"].get<std::string>().find("vllm serve"), std::string::npos);
  EXPECT_NE(j[1]["launch_command"].get<std::string>().find("sglang.launch_server"),
            std::string::npos);
  EXPECT_NE(j[3]["launch_command"].get<std::string>().find("-np 4"), std::string::npos);
  for (size_t i : {size_t{0}, size_t{1}, size_t{3}}) {
    EXPECT_TRUE(j[i]["fits"].get<bool>()) << j[i].dump();
    EXPECT_GE(j[i]["max_concurrency_low"].get<int64_t>(), 4) << j[i].dump();
  }
  // vLLM sizes itself to the workload; SGLang takes its fraction of the GPU whatever the load.
  EXPECT_LT(j[0]["max_total_bytes"].get<int64_t>(), j[1]["max_total_bytes"].get<int64_t>());
  // The same numbers as a plain estimate of that engine.
  Result sglang =
      RunArgs({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json", "--engine=sglang",
               "--concurrency=4", "--context=4096", "--output=json"});
  ASSERT_EQ(sglang.code, kExitOk) << sglang.err;
  EXPECT_EQ(nlohmann::json::parse(sglang.out)["max_high_bytes"], j[1]["max_high_bytes"]);
  // At tp=2 transformers cannot serve it: its row says why, the others still answer.
  Result tp2 = RunArgs({"estimate", "--model=" + kModels + "llama-3.1-8b-instruct.json",
                        "--compare-engines", "--tp=2"});
  ASSERT_EQ(tp2.code, kExitOk) << tp2.err;
  EXPECT_NE(tp2.out.find("runs on one GPU"), std::string::npos) << tp2.out;
  EXPECT_EQ(RunArgs({"estimate", "--compare-engines"}).code, kExitUsage);
}

// An embedding model end to end: the JSON says encoder_only with no KV cache, the table says how
// many prompts a forward takes, --compare-engines names the engines not modelled for it, and
// --phase=generate is refused by name.
TEST(EstimateCliTest, EncoderOnlyModel) {
  const std::string model = std::string(FLEETPLAN_TESTDATA_DIR) + "/models/bge-m3.json";
  auto j = RunJson({"estimate", "--model=" + model, "--gpu=L4", "--context=512", "--concurrency=64",
                    "--output=json"});
  EXPECT_TRUE(j["encoder_only"].get<bool>()) << j.dump();
  EXPECT_EQ(j["kv_cache_tokens"], 0);
  EXPECT_EQ(j["stages"][0]["kv_cache_bytes"], 0);
  EXPECT_EQ(j["max_concurrency"], 16);  // 8192 batched tokens / 512
  EXPECT_TRUE(j["fits"].get<bool>());
  Result table =
      RunArgs({"estimate", "--model=" + model, "--gpu=L4", "--context=512", "--concurrency=64"});
  ASSERT_EQ(table.code, kExitOk) << table.err;
  EXPECT_NE(table.out.find("no KV cache (bidirectional encoder): one forward takes 16 prompts"),
            std::string::npos)
      << table.out;
  EXPECT_NE(table.out.find("48 of the workload's 64 requests queue"), std::string::npos)
      << table.out;
  Result compare = RunArgs({"estimate", "--model=" + model, "--gpu=L4", "--compare-engines"});
  ASSERT_EQ(compare.code, kExitOk) << compare.err;
  EXPECT_NE(compare.out.find("engine=sglang is not modelled for it"), std::string::npos)
      << compare.out;
  Result generate = RunArgs({"estimate", "--model=" + model, "--engine=hf-transformers",
                             "--phase=generate", "--prompt-tokens=128"});
  EXPECT_EQ(generate.code, kExitError) << generate.out;
  EXPECT_NE(generate.err.find("hf.generate"), std::string::npos) << generate.err;
}

// A hybrid linear-attention model end to end on vLLM: the JSON has the full layers' KV per token
// and vLLM's grown attention block in the notes; --compare-engines names the engines not modelled
// for it.
TEST(EstimateCliTest, LinearAttentionModelOnVllm) {
  const std::string model =
      "--model=" + std::string(FLEETPLAN_TESTDATA_DIR) + "/models/qwen3-next-80b-a3b.json";
  auto j = RunJson({"estimate", model, "--gpu=H200", "--tp=2", "--max-model-len=32768",
                    "--context=32768", "--concurrency=8", "--output=json"});
  EXPECT_TRUE(j["fits"].get<bool>()) << j.dump();
  EXPECT_EQ(j["stages"][0]["kv_cache_bytes_per_token"], 12 * 1024);
  EXPECT_EQ(j["kv_cache_tokens"].get<int64_t>() % 544, 0) << j.dump();
  EXPECT_NE(j["notes"].dump().find("attention block size to 544 tokens"), std::string::npos)
      << j.dump();
  // The vllm serve line fleetplan reads knows the state dtype flags: an fp32 recurrent state
  // grows the block to 1056 tokens.
  const std::string dir = ::testing::TempDir() + "/fleetplan_qwen3_next_model";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(
      std::string(FLEETPLAN_TESTDATA_DIR) + "/models/qwen3-next-80b-a3b.json", dir + "/config.json",
      std::filesystem::copy_options::overwrite_existing);
  auto served = RunJson({"estimate",
                         "--vllm=vllm serve " + dir +
                             " --tensor-parallel-size 2 --max-model-len 32768 "
                             "--mamba-ssm-cache-dtype float32",
                         "--gpu=H200", "--output=json"});
  EXPECT_NE(served["notes"].dump().find("attention block size to 1056 tokens"), std::string::npos)
      << served.dump();
  Result compare = RunArgs(
      {"estimate", model, "--gpu=H200", "--tp=2", "--max-model-len=32768", "--compare-engines"});
  ASSERT_EQ(compare.code, kExitOk) << compare.err;
  EXPECT_NE(compare.out.find("engine=openvino is not modelled for it"), std::string::npos)
      << compare.out;
  EXPECT_NE(compare.out.find("sglang           yes"), std::string::npos) << compare.out;
  // SGLang's state pool flags reach its launch line.
  auto sglang = RunJson({"estimate", model, "--engine=sglang", "--gpu=H200", "--tp=2",
                         "--context-length=32768", "--context=32768", "--max-mamba-cache-size=90",
                         "--mamba-ssm-dtype=bfloat16", "--output=json"});
  EXPECT_NE(sglang["launch_command"].get<std::string>().find(
                "--max-mamba-cache-size 90 --mamba-ssm-dtype bfloat16"),
            std::string::npos)
      << sglang.dump();
  EXPECT_NE(sglang["notes"].dump().find("90 states of 19759104 bytes"), std::string::npos)
      << sglang.dump();
  Result bad = RunArgs(
      {"estimate", model, "--engine=sglang", "--gpu=H200", "--tp=2", "--mamba-ssm-dtype=int4"});
  EXPECT_EQ(bad.code, kExitError) << bad.out;
  EXPECT_NE(bad.err.find("sglang.mamba_ssm_dtype=\"int4\""), std::string::npos) << bad.err;
}

// --compare-engines with speculative decoding: the SGLang row drafts as the vLLM flags say (a draft
// model is STANDALONE, N speculative tokens N steps and N + 1 draft tokens), so the rows compare.
TEST(EstimateCliTest, CompareEnginesDraftAlike) {
  const std::string target = "--model=" + kModels + "qwen2.5-7b-instruct.json";
  const std::string draft = "--draft-model=" + kModels + "qwen2.5-0.5b.json";
  auto rows = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"estimate",
                                     target,
                                     "--compare-engines",
                                     "--context=8192",
                                     "--context-length=8192",
                                     "--max-model-len=8192",
                                     "--output=json"};
    args.insert(args.end(), extra.begin(), extra.end());
    Result r = RunArgs(args);
    EXPECT_EQ(r.code, kExitOk) << r.err;
    return nlohmann::json::parse(r.out.empty() ? "{}" : r.out)["engines"];
  };
  auto plain = rows({});
  auto drafted =
      rows({draft, "--draft-model-name=Qwen/Qwen2.5-0.5B", "--num-speculative-tokens=4"});
  ASSERT_EQ(drafted[1]["engine"], "sglang");
  const std::string line = drafted[1]["launch_command"].get<std::string>();
  EXPECT_NE(line.find("--speculative-algorithm STANDALONE --speculative-draft-model-path "
                      "Qwen/Qwen2.5-0.5B --speculative-num-steps 4 --speculative-eagle-topk 1 "
                      "--speculative-num-draft-tokens 5"),
            std::string::npos)
      << line;
  // SGLang takes its fraction whatever the draft: fewer tokens; vLLM sizes its utilization to the
  // workload: more bytes.
  EXPECT_LT(drafted[1]["kv_cache_tokens"].get<int64_t>(),
            plain[1]["kv_cache_tokens"].get<int64_t>())
      << drafted[1].dump();
  EXPECT_GT(drafted[0]["max_total_bytes"].get<int64_t>(),
            plain[0]["max_total_bytes"].get<int64_t>())
      << drafted[0].dump();
  // The model's own MTP layers: vLLM's mtp is SGLang's NEXTN.
  Result glm = RunArgs(
      {"estimate", "--model=" + std::string(FLEETPLAN_TESTDATA_DIR) + "/models/glm-4.5-air.json",
       "--compare-engines", "--tp=4", "--gpu=h200", "--max-model-len=8192", "--context-length=8192",
       "--speculative-method=mtp", "--num-speculative-tokens=1", "--output=json"});
  ASSERT_EQ(glm.code, kExitOk) << glm.err;
  EXPECT_NE(nlohmann::json::parse(glm.out)["engines"][1]["launch_command"].get<std::string>().find(
                "--speculative-algorithm NEXTN --speculative-num-steps 1"),
            std::string::npos)
      << glm.out;
}

// --vllm-version: the semantics of that version, named in the notes; a bad version is refused.
TEST(EstimateCliTest, VllmVersionSelectsItsSemantics) {
  const std::string model = "--model=" + kModels + "llama-3.1-8b-instruct.json";
  Result now = RunArgs({"estimate", model, "--max-model-len=8192", "--output=json"});
  Result v0 =
      RunArgs({"estimate", model, "--max-model-len=8192", "--vllm-version=0.7.3", "--output=json"});
  ASSERT_EQ(now.code, kExitOk) << now.err;
  ASSERT_EQ(v0.code, kExitOk) << v0.err;
  auto a = nlohmann::json::parse(now.out);
  auto b = nlohmann::json::parse(v0.out);
  EXPECT_NE(a["kv_cache_tokens"], b["kv_cache_tokens"]);
  EXPECT_NE(b["notes"].dump().find("vLLM 0.7.3 (V0"), std::string::npos) << b["notes"].dump();
  EXPECT_FALSE(b["band_widened"].empty());
  Result bad = RunArgs({"estimate", model, "--vllm-version=newest"});
  EXPECT_NE(bad.code, kExitOk);
  EXPECT_NE(bad.err.find("vllm.version=\"newest\""), std::string::npos) << bad.err;
}

// validate reports, per calibration file, how often the measured value is on the safe side of the
// band and how wide the band is.
TEST(ValidateCliTest, ReportsBandCoverage) {
  Result r = RunArgs({"validate",
                      "--cases=" + std::string(FLEETPLAN_CALIBRATION_DIR) + "/vllm_startup.jsonl",
                      "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["bands"]["kv_cache_tokens"]["n"], 44);
  EXPECT_GE(j["bands"]["kv_cache_tokens"]["coverage"].get<double>(), 0.99);
  EXPECT_EQ(j["bands"]["gpu_used_bytes"]["n"], 44);
  EXPECT_TRUE(j["per_case"][0]["bands"]["kv_cache_tokens"]["covered"].get<bool>());
  Result text = RunArgs({"validate", "--cases=" + std::string(FLEETPLAN_CALIBRATION_DIR) +
                                         "/hf_transformers_h100.jsonl"});
  EXPECT_NE(text.out.find("band peak_allocated_bytes"), std::string::npos) << text.out;
}

TEST(EstimateCliTest, TableShowsGiBAndVerdict) {
  Result r = RunArgs({"estimate", "--model=" + kModels + "qwen2.5-7b-instruct.json", "--budget",
                      "--budget-contexts=1024,4096", "--budget-concurrencies=1,4"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.out.find("FITS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("budget (GiB per GPU"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KV cache:"), std::string::npos) << r.out;
}

TEST(EstimateCliTest, VllmCommandLineAndEmit) {
  const std::string dir = ::testing::TempDir() + "/fleetplan_vllm_model";
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kModels + "qwen2.5-7b-instruct.json", dir + "/config.json",
                             std::filesystem::copy_options::overwrite_existing);
  Result r = RunArgs(
      {"estimate",
       "--vllm=vllm serve " + dir + " --tensor-parallel-size 2 --max-model-len=16384 --port 8000",
       "--concurrency=64", "--context=4096", "--emit=vllm", "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parallelism"]["tp"], 2);
  EXPECT_EQ(j["max_model_len"], 16384);
  const std::string cmd = j["vllm_command"];
  EXPECT_NE(cmd.find("--tensor-parallel-size 2"), std::string::npos) << cmd;
  EXPECT_NE(cmd.find("--gpu-memory-utilization 0."), std::string::npos) << cmd;
  EXPECT_NE(j["notes"].dump().find("--port"), std::string::npos);
}

TEST(EstimateCliTest, DoesNotFitExitsOne) {
  Result r = RunArgs({"estimate", "--model=" + kModels + "llama-3.3-70b-instruct-fp8-dynamic.json",
                      "--gpu=A100-40GB"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_NE(r.out.find("DOES NOT FIT"), std::string::npos) << r.out;
}

TEST(EstimateCliTest, BadInputIsUsageErrorNamingFlagAndValue) {
  struct Case {
    std::vector<std::string> args;
    int code;
    const char* expect;
  };
  const std::string m = "--model=" + kModels + "llama-3.1-8b.json";
  const Case cases[] = {
      {{"estimate"}, kExitUsage, "give --model"},
      {{"estimate", m, "--engine=tgi"}, kExitUsage, "--engine=\"tgi\""},
      {{"estimate", m, "--gpu=Voodoo2"}, kExitUsage, "gpu \"Voodoo2\""},
      {{"estimate", m, "--tp=three"}, kExitUsage, "--tp=\"three\" is not an integer"},
      {{"estimate", m, "--tp=3"}, kExitError, "tp=3 does not divide num_attention_heads=32"},
      {{"estimate", m, "--gpu-memory-utilization=1.5"}, kExitError, "gpu_memory_utilization=1.5"},
      {{"estimate", m, "--kv-cache-dtype=int2"}, kExitUsage, "--kv-cache-dtype=\"int2\""},
      {{"estimate", m, "--engine=hf-transformers", "--attn=flash"}, kExitUsage, "--attn=\"flash\""},
      {{"estimate", m, "--budget", "--budget-contexts=0"}, kExitUsage, "--budget-contexts=\"0\""},
      {{"estimate", "--model=/nonexistent/config.json"}, kExitError, "cannot read file"},
      {{"estimate", "--vllm=vllm serve"}, kExitUsage, "expected `vllm serve MODEL_DIR"},
      {{"estimate", m, "--quantization=int3"}, kExitError, "quantization=\"int3\""},
  };
  for (const Case& c : cases) {
    Result r = RunArgs(c.args);
    EXPECT_EQ(r.code, c.code) << c.args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.args.back() << ": " << r.err;
  }
}

TEST(ValidateCliTest, JsonSummaryOverCalibrationFile) {
  Result r = RunArgs({"validate",
                      "--cases=" + std::string(FLEETPLAN_CALIBRATION_DIR) + "/vllm_startup.jsonl",
                      "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["cases"], 44);
  EXPECT_EQ(j["scored"], 44);
  EXPECT_TRUE(j["skipped"].empty());
  for (const char* metric : {"weights_bytes", "kv_cache_tokens", "available_kv_cache_bytes",
                             "activation_peak_bytes", "non_torch_bytes"}) {
    ASSERT_TRUE(j["metrics"].contains(metric)) << metric;
    for (const char* field : {"n", "median_abs_rel_err", "p90_abs_rel_err", "max_abs_rel_err",
                              "under_predicted_over_2pct"}) {
      EXPECT_TRUE(j["metrics"][metric].contains(field)) << metric << "." << field;
    }
  }
  EXPECT_EQ(j["per_case"].size(), 44u);
  EXPECT_TRUE(j["oom_cases"].contains("predicted_not_fit"));
}

TEST(ValidateCliTest, MissingModelIsListedAsSkipped) {
  const std::string dir = ::testing::TempDir() + "/fleetplan_validate";
  std::filesystem::create_directories(dir);
  {
    std::ofstream f(dir + "/cases.jsonl");
    f << R"({"case": "a", "model": "models/missing.json", "engine": "vllm", "measured": {}})"
      << "\n";
    f << "not json\n";
  }
  Result r = RunArgs({"validate", "--cases=" + dir + "/cases.jsonl", "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["cases"], 2);
  EXPECT_EQ(j["scored"], 0);
  ASSERT_EQ(j["skipped"].size(), 2u);
  EXPECT_NE(j["skipped"][0]["reason"].get<std::string>().find("cannot read file"),
            std::string::npos);
}

TEST(ValidateCliTest, MissingCasesFlagIsUsageError) {
  EXPECT_EQ(RunArgs({"validate"}).code, kExitUsage);
  EXPECT_EQ(RunArgs({"validate", "--cases=/nonexistent.jsonl"}).code, kExitError);
}

}  // namespace
}  // namespace fleetplan::cli

#include "clients/deployments_file.h"
#include "clients/vllm_command.h"

namespace fleetplan::cli {
namespace {

TEST(DeploymentsFileTest, JsonAndYamlReadTheSame) {
  const std::string json = R"([{"name": "chat", "model": "m", "replicas": 2, "gpu_types": ["H100"],
      "vllm": {"max_model_len": 8192}}])";
  const std::string yaml =
      "- name: chat\n  model: m\n  replicas: 2\n  gpu_types: [H100]\n"
      "  vllm:\n    max_model_len: 8192\n";
  auto a = ParseDeployments(json, "a.json");
  auto b = ParseDeployments(yaml, "b.yaml");
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->SerializeAsString(), b->SerializeAsString());
  EXPECT_EQ(b->deployments(0).replicas(), 2);
  auto object =
      ParseDeployments("strategy: STRATEGY_EXACT\ndeployments:\n  - {name: x, model: m}\n", "c");
  ASSERT_TRUE(object.ok()) << object.status();
  EXPECT_EQ(object->strategy(), v1::STRATEGY_EXACT);
  // Bad input names the file and the place.
  auto bad = ParseDeployments("- name: [unclosed\n", "bad.yaml");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bad.yaml: line"), std::string::npos) << bad.status();
  auto unknown = ParseDeployments("- name: x\n  modle: m\n", "typo.yaml");
  EXPECT_NE(unknown.status().message().find("modle"), std::string::npos) << unknown.status();
  auto deep = ParseDeployments(std::string(100000, '[') + std::string(100000, ']'), "deep.json");
  EXPECT_FALSE(deep.ok());
  auto deep_yaml =
      ParseDeployments("x: " + std::string(5000, '[') + std::string(5000, ']'), "deep.yaml");
  EXPECT_NE(deep_yaml.status().message().find("nests deeper"), std::string::npos)
      << deep_yaml.status();
}

TEST(VllmCommandTest, TranslatesAndSortsFlags) {
  auto line = ParseVllmCommandLine(
      "vllm serve /m --tensor-parallel-size 2 --max-model-len=4096 --port 8000 --max-modl-len 9 x");
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->model_dir, "/m");
  EXPECT_EQ(line->flags, (std::vector<std::string>{"--tp=2", "--max-model-len=4096"}));
  EXPECT_EQ(line->ignored, (std::vector<std::string>{"--port"}));
  EXPECT_EQ(line->unknown, (std::vector<std::string>{"--max-modl-len", "x"}));
  EXPECT_FALSE(ParseVllmCommandLine("vllm serve").ok());
  EXPECT_FALSE(ParseVllmCommandLine("vllm serve /m --max-model-len").ok());
}

// `fleetplan recommend`: ranked configurations, one JSON document, and errors that say why.
TEST(CliTest, RecommendRanksConfigurationsThatFit) {
  const std::string models = std::string(FLEETPLAN_SOURCE_DIR) + "/deploy/examples/models/";
  for (const char* model :
       {"llama-3.1-70b-instruct", "mixtral-8x7b-instruct", "llama-3.3-70b-instruct-fp8-dynamic"}) {
    Result r =
        RunArgs({"recommend", "--model=" + models + model + ".json", "--concurrency=16",
                 "--context=8192", "--cost-per-hour=H100-80GB=2.5,A100-80GB=1.6", "--output=json"});
    ASSERT_EQ(r.code, kExitOk) << model << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_FALSE(j["configurations"].empty()) << model;
    double last_cost = 0;
    bool priced = true;
    for (const auto& c : j["configurations"]) {
      EXPECT_TRUE(c["tp"].is_number_integer());
      EXPECT_EQ(c["gpus"], c["tp"].get<int64_t>() * c["pp"].get<int64_t>());
      EXPECT_GE(c["kv_cache_tokens"].get<int64_t>(), 16 * 8192) << model;
      EXPECT_NE(c["launch_command"].get<std::string>().find("vllm serve"), std::string::npos);
      // Priced configurations first, cheapest first.
      if (c["cost_per_hour"].is_null()) {
        priced = false;
      } else {
        EXPECT_TRUE(priced) << "a priced configuration after an unpriced one";
        EXPECT_GE(c["cost_per_hour"].get<double>(), last_cost);
        last_cost = c["cost_per_hour"].get<double>();
      }
    }
    EXPECT_EQ(j["gpu_types"].size(), estimator::GpuCatalog().size())
        << "every built-in GPU type gets a verdict";
  }
  // FP8 needs fewer H100s than bf16 for the same workload.
  auto fewest_h100 = [&](const std::string& model) {
    Result r = RunArgs({"recommend", "--model=" + models + model + ".json", "--concurrency=16",
                        "--context=8192", "--gpu=H100-80GB", "--output=json"});
    return nlohmann::json::parse(r.out)["gpu_types"][0]["fewest_gpus"].get<int64_t>();
  };
  EXPECT_LT(fewest_h100("llama-3.3-70b-instruct-fp8-dynamic"),
            fewest_h100("llama-3.1-70b-instruct"));
  Result table = RunArgs({"recommend", "--model=" + models + "llama-3.1-70b-instruct.json",
                          "--concurrency=16", "--context=8192", "--gpu=H100-80GB"});
  EXPECT_NE(table.out.find("use 4 x H100-80GB (tp=4)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("H100-80GB: 4 GPUs at least; 2 do not do: tp=2 pp=1"), std::string::npos)
      << table.out;

  // Nothing fits: exit 1 with the reason per type.
  Result none =
      RunArgs({"recommend", "--model=" + models + "qwen2.5-72b-instruct.json", "--concurrency=64",
               "--context=32768", "--gpu=L4", "--gpus-per-node=2", "--max-pp=1"});
  EXPECT_EQ(none.code, kExitError);
  EXPECT_NE(none.out.find("L4: does not fit"), std::string::npos) << none.out;
  EXPECT_EQ(
      RunArgs({"recommend", "--model=" + models + "llama-3.1-8b-instruct.json", "--engine=sglang"})
          .code,
      kExitUsage);
  Result gpu =
      RunArgs({"recommend", "--model=" + models + "llama-3.1-8b-instruct.json", "--gpu=H999"});
  EXPECT_EQ(gpu.code, kExitUsage);
  EXPECT_NE(gpu.err.find("--gpu[0]=\"H999\" is not one of"), std::string::npos) << gpu.err;
  EXPECT_EQ(RunArgs({"recommend"}).code, kExitUsage);
  for (const char* bad :
       {"--concurrency=0", "--concurrency=-3", "--gpus-per-node=0", "--min-free=1.5",
        "--min-free=-0.1", "--context=-1", "--limit=-1", "--kv-cache-dtype=fp4",
        "--cost-per-hour=H100-80GB=-1", "--cost-per-hour=H100-80GB=inf", "--cost-per-hour=nope"}) {
    Result b = RunArgs({"recommend", "--model=" + models + "llama-3.1-8b-instruct.json", bad});
    EXPECT_EQ(b.code, kExitUsage) << bad << ": " << b.err;
    EXPECT_FALSE(b.err.empty()) << bad;
  }
  EXPECT_EQ(RunArgs({"recommend", "--model=/nonexistent/config.json"}).code, kExitError);
}

// A saved estimate profile (YAML or JSON): its settings apply, the command line wins, errors name
// the file and the setting.
TEST(CliTest, EstimateProfiles) {
  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) / "profiles").lexically_normal().string();
  std::filesystem::create_directories(dir + "/llama");
  std::filesystem::copy_file(
      std::string(FLEETPLAN_SOURCE_DIR) + "/deploy/examples/models/llama-3.1-8b-instruct.json",
      dir + "/llama/config.json", std::filesystem::copy_options::overwrite_existing);
  std::ofstream(dir + "/p.yaml") << "# chat replicas\nmodel: llama/config.json\ngpu: H100-80GB\n"
                                    "max_model_len: 8192\ngpu-memory-utilization: 0.9\n"
                                    "enforce-eager: true\n";
  Result with = RunArgs({"estimate", "--profile=" + dir + "/p.yaml", "--output=json"});
  ASSERT_EQ(with.code, kExitOk) << with.err;
  Result flags = RunArgs({"estimate", "--model=" + dir + "/llama/config.json", "--gpu=H100-80GB",
                          "--max-model-len=8192", "--gpu-memory-utilization=0.9", "--enforce-eager",
                          "--output=json"});
  ASSERT_EQ(flags.code, kExitOk) << flags.err;
  EXPECT_EQ(with.out, flags.out) << "a profile is the same as its flags";
  // The command line wins.
  Result over = RunArgs(
      {"estimate", "--profile=" + dir + "/p.yaml", "--max-model-len=4096", "--output=json"});
  ASSERT_EQ(over.code, kExitOk) << over.err;
  EXPECT_NE(over.out, with.out);
  std::ofstream(dir + "/p.json") << R"({"model": "llama/config.json", "max_model_len": 8192,
                                        "gpu_memory_utilization": 0.9, "enforce_eager": true})";
  EXPECT_EQ(RunArgs({"estimate", "--profile=" + dir + "/p.json", "--output=json"}).out, with.out);
  std::ofstream(dir + "/bad.yaml") << "model: llama/config.json\ncolour: red\n";
  Result bad = RunArgs({"estimate", "--profile=" + dir + "/bad.yaml"});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_NE(bad.err.find("bad.yaml: \"colour\" is not a flag of fleetplan estimate"),
            std::string::npos)
      << bad.err;
  std::ofstream(dir + "/typed.yaml") << "tp: [1, 2]\n";
  EXPECT_NE(RunArgs({"estimate", "--profile=" + dir + "/typed.yaml"}).err.find("not array"),
            std::string::npos);
  std::ofstream(dir + "/value.yaml") << "tp: two\n";
  EXPECT_NE(RunArgs({"estimate", "--profile=" + dir + "/value.yaml"}).err.find("value.yaml: "),
            std::string::npos);
  EXPECT_EQ(RunArgs({"estimate", "--profile=" + dir + "/missing.yaml"}).code, kExitError);
}

// validate --vllm-log: a user's own log scored, appended to a cases file, and scored from there.
TEST(CliTest, ValidateVllmLogAndAppend) {
  const std::string src = FLEETPLAN_SOURCE_DIR;
  const std::string dir =
      (std::filesystem::path(::testing::TempDir()) / "vllm_logs").lexically_normal().string();
  std::filesystem::create_directories(dir + "/models");
  std::filesystem::copy_file(src + "/tests/data/calibration/models/llama-3.1-8b-instruct.json",
                             dir + "/models/llama.json",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove(dir + "/mine.jsonl");
  Result r = RunArgs(
      {"validate", "--vllm-log=" + src + "/tests/data/vllm_logs/v0.7.3-llama-3.1-8b-l40s.log",
       "--model=" + dir + "/models/llama.json", "--gpu=L40S", "--append=" + dir + "/mine.jsonl"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.out.find("vLLM 0.7.3 (V0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kv_cache_tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("appended to"), std::string::npos);
  Result again = RunArgs(
      {"validate", "--vllm-log=" + src + "/tests/data/vllm_logs/v0.19.0-llama-3.1-8b-h100.log",
       "--model=" + dir + "/models/llama.json", "--append=" + dir + "/mine.jsonl",
       "--output=json"});
  ASSERT_EQ(again.code, kExitOk) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["case_line"]["model"], "models/llama.json")
      << "relative to the cases file";
  Result cases = RunArgs({"validate", "--cases=" + dir + "/mine.jsonl", "--output=json"});
  ASSERT_EQ(cases.code, kExitOk) << cases.err;
  const nlohmann::json j = nlohmann::json::parse(cases.out);
  EXPECT_EQ(j["cases"], 2);
  EXPECT_EQ(j["scored"], 2);
  Result bad = RunArgs({"validate", "--vllm-log=" + src + "/tests/data/vllm_logs/garbled.log",
                        "--model=" + dir + "/models/llama.json"});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_NE(bad.err.find("line 2"), std::string::npos) << bad.err;
  EXPECT_EQ(RunArgs({"validate", "--vllm-log=" + src + "/tests/data/vllm_logs/garbled.log"}).code,
            kExitUsage)
      << "needs --model";
  // What the log does not print comes from the vllm serve line.
  const std::string info = dir + "/info.log";
  std::ofstream(info)
      << "INFO 06-20 09:00:47 [gpu_worker.py:2] Available KV cache memory: 58.11 GiB\n"
         "INFO 06-20 09:00:47 [kv_cache_utils.py:3] GPU KV cache size: 476,000 tokens\n";
  Result partial =
      RunArgs({"validate", "--vllm-log=" + info, "--model=" + dir + "/models/llama.json"});
  EXPECT_EQ(partial.code, kExitUsage);
  EXPECT_NE(partial.err.find("gpu_memory_utilization"), std::string::npos) << partial.err;
  Result filled =
      RunArgs({"validate", "--vllm-log=" + info, "--model=" + dir + "/models/llama.json",
               "--vllm=vllm serve /m --gpu-memory-utilization 0.95 --max-model-len 8192"});
  EXPECT_EQ(filled.code, kExitOk) << filled.err;
}

TEST(CliTest, GgufInspect) {
  const std::string file =
      std::string(FLEETPLAN_SOURCE_DIR) + "/tests/data/gguf/tiny-llama-q4_k_m.gguf";
  Result r = RunArgs({"gguf", file, "--context=8192", "--output=json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["weights_bytes"], "1187328");
  EXPECT_EQ(j["params"], 1443072);
  EXPECT_EQ(j["kv_cache"]["bytes"], std::to_string(1024 * 8192));
  Result table = RunArgs({"gguf", file, "--cache-type=q8_0"});
  ASSERT_EQ(table.code, kExitOk) << table.err;
  EXPECT_NE(table.out.find("544 bytes per token over 2 layers"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("compute buffer"), std::string::npos) << "says what it leaves out";
  const std::string not_gguf = std::string(FLEETPLAN_SOURCE_DIR) + "/README.md";
  Result bad = RunArgs({"gguf", not_gguf});
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_NE(bad.err.find("not a GGUF file"), std::string::npos) << bad.err;
  EXPECT_EQ(RunArgs({"gguf"}).code, kExitUsage);
  EXPECT_EQ(RunArgs({"gguf", "/nonexistent.gguf"}).code, kExitError);
}

}  // namespace
}  // namespace fleetplan::cli
