// OpenVINO GenAI engine (openvino.h, openvino_model.cc). Each test names the source it follows.

#include "planner/estimator/openvino.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/estimator.h"

namespace fleetplan::estimator {
namespace {

using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double Mib(int64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(kMiB); }

// NNCF's storage (nncf weight_compression: int8 per-channel, int4 per group with fp16 scales and,
// asymmetric, zero points of the value width).
TEST(OpenvinoTest, WeightBytesPerCompressionMode) {
  // A 4096 x 4096 matrix.
  EXPECT_EQ(OvWeightBytes(OvWeightFormat::kFp16, 128, 4096, 4096, 1), 4096 * 4096 * 2);
  EXPECT_EQ(OvWeightBytes(OvWeightFormat::kFp32, 128, 4096, 4096, 1), 4096 * 4096 * 4);
  // int8_asym: 1 B per value, one fp16 scale and one u8 zero point per output channel.
  EXPECT_EQ(OvWeightBytes(OvWeightFormat::kInt8Asym, 128, 4096, 4096, 1), 4096 * 4096 + 4096 * 3);
  EXPECT_EQ(OvWeightBytes(OvWeightFormat::kInt8Sym, 128, 4096, 4096, 1), 4096 * 4096 + 4096 * 2);
  // int4, group 128: 32 groups per row; fp16 scale, asym + u4 zero point.
  const int64_t groups = 4096 * 32;
  EXPECT_EQ(OvWeightBytes(OvWeightFormat::kInt4Sym, 128, 4096, 4096, 1),
            4096 * 4096 / 2 + groups * 2);
  EXPECT_EQ(OvWeightBytes(OvWeightFormat::kInt4Asym, 128, 4096, 4096, 1),
            4096 * 4096 / 2 + groups * 2 + groups / 2);
  // Channel-wise int4 (group -1): one group per row.
  EXPECT_EQ(OvWeightBytes(OvWeightFormat::kInt4Sym, -1, 4096, 4096, 1), 4096 * 4096 / 2 + 4096 * 2);
  // A row shorter than a group is one group.
  EXPECT_EQ(OvWeightBytes(OvWeightFormat::kInt4Sym, 128, 10, 64, 1), 10 * 64 / 2 + 10 * 2);
}

// The CPU plugin's by-token KV quantization: fp32 scale + zero point per group of each token's
// head (engines.md, attn_quant.cpp); GPU and CPU block sizes (kv_cache_manager.hpp).
TEST(OpenvinoTest, KvRowsAndBlocks) {
  EXPECT_EQ(OvKvRowBytes(OvKvPrecision::kU8, 128, 0), 128 + 8);
  EXPECT_EQ(OvKvRowBytes(OvKvPrecision::kU8, 128, 32), 128 + 4 * 8);
  EXPECT_EQ(OvKvRowBytes(OvKvPrecision::kU4, 128, 0), 64 + 8);
  EXPECT_EQ(OvKvRowBytes(OvKvPrecision::kF16, 128, 0), 256);
  EXPECT_EQ(OvKvRowBytes(OvKvPrecision::kF32, 96, 0), 384);
  EXPECT_EQ(OvBlockTokens(OvDevice::kCpu), 32);
  EXPECT_EQ(OvBlockTokens(OvDevice::kGpu), 16);
  OpenvinoConfig cpu, gpu;
  gpu.device = OvDevice::kGpu;
  EXPECT_EQ(OvResolvedKvPrecision(cpu), OvKvPrecision::kU8);
  EXPECT_EQ(OvResolvedKvPrecision(gpu), OvKvPrecision::kF16);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

json ReferenceTable() {
  return json::parse(
      ReadFile(std::string(FLEETPLAN_TESTDATA_DIR) + "/openvino/openvino-vlm-s0.json"));
}

// A row fleetplan can model carries a config (inline or a file).
bool Modelled(const json& row) {
  return row.contains("config_file") || (row.contains("config") && !row["config"].is_null());
}

absl::StatusOr<ModelSpec> RowModel(const json& row) {
  if (row.contains("config_file")) {
    return ParseModelConfig(ReadFile(std::string(FLEETPLAN_TESTDATA_DIR) + "/" +
                                     row["config_file"].get<std::string>()));
  }
  return ParseModelConfig(row["config"].dump());
}

EstimateRequest RowRequest(const json& row, bool amx = true) {
  EstimateRequest r;
  r.openvino.amx = amx;
  r.engine = Engine::kOpenvino;
  r.gpu_memory_bytes = 64 * kGiB;
  OpenvinoConfig& o = r.openvino;
  o.weight_format_set = true;
  o.weight_format =
      *OvWeightFormatNames().Parse("weight_format", row["weight_format"].get<std::string>());
  o.images = row["images"].get<int64_t>();
  o.image_height = row["image_height"].get<int64_t>();
  o.image_width = row["image_width"].get<int64_t>();
  o.llm_tokens = row["llm_tokens"].get<int64_t>();
  o.new_tokens = 0;
  return r;
}

// InternVL's dynamic_preprocess: 1024 x 682 (aspect 1.50) is a 3 x 2 grid plus the thumbnail,
// the 7 slices the reference table names; a square image is one tile.
TEST(OpenvinoTest, InternVlTilesAndParameters) {
  json table = ReferenceTable();
  const json& row = table["rows"][1];
  ASSERT_EQ(row["name"], "internvl2.5-4b");
  auto spec = RowModel(row);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->unverified()) << spec->notes.back();
  EXPECT_EQ(ImageTiles(*spec, 682, 1024), 7);
  EXPECT_EQ(ImageTiles(*spec, 448, 448), 1);
  EXPECT_EQ(ImageTiles(*spec, 448, 4480), 11);  // 10 x 1 plus the thumbnail
  EXPECT_EQ(ImageTokens(*spec, 682, 1024), 7 * 256);
  // InternViT-300M: per layer qkv + proj + fc1 + fc2 with biases, two LayerNorms, two layer
  // scales; class, patch (with bias) and 1025 positions; mlp1 LayerNorm(4096) + 4096->2048 +
  // 2048->2048. Qwen2.5-3B with an untied head over 151,674 tokens.
  const int64_t d = 1024, inter = 4096;
  const int64_t vit_layer =
      3 * d * d + 3 * d + d * d + d + 2 * d * inter + inter + d + 4 * d + 2 * d;
  const int64_t vit = 24 * vit_layer + d + d * 588 + d + 1025 * d;
  const int64_t mlp1 = 2 * 4096 + 4096 * 2048 + 2048 + 2048 * 2048 + 2048;
  EXPECT_EQ(spec->num_vision_params(), vit + mlp1);
  EXPECT_EQ(vit + mlp1, 316607488);
  EXPECT_EQ(spec->num_params(), 316607488 + 3085402112 + 151674LL * 2048);
}

// Weights of each row against the study's own weight columns, which count the IRs' constants:
// ours must agree within 1 % (the study reads the same constants; we rebuild them from config.json
// and NNCF's storage rules).
TEST(OpenvinoTest, ReferenceWeightsMatchTheStudysIrConstants) {
  json table = ReferenceTable();
  for (const json& row : table["rows"]) {
    // A row whose IR's NNCF settings the study does not give has no weights to compare.
    if (!Modelled(row) || !row.value("weights_settings_known", true)) continue;
    auto spec = RowModel(row);
    ASSERT_TRUE(spec.ok()) << row["name"] << ": " << spec.status();
    auto est = Estimate(*spec, RowRequest(row));
    ASSERT_TRUE(est.ok()) << row["name"] << ": " << est.status();
    ASSERT_EQ(est->pipeline_parts.size(), 3u);
    const double vit = Mib(est->pipeline_parts[0].weights_bytes);
    const double llm = Mib(est->pipeline_parts[2].weights_bytes);
    EXPECT_NEAR(vit / row["study"]["vit_weights_mib"].get<double>(), 1.0, 0.01) << row["name"];
    EXPECT_NEAR(llm / row["study"]["llm_weights_mib"].get<double>(), 1.0, 0.01) << row["name"];
  }
}

// The reference comparison the issue asks for: per measured runtime column, our median absolute
// error next to the study's estimator's over the same rows. Rows whose family fleetplan does not
// model are left out of both (and listed). The study does not say its CPU; its figures leave no
// room for unfused f32 MLP temporaries (InternVL2.5-4B: 7500 MiB measured against 7215 MiB of
// weights and KV), so the rows are scored as an AMX Xeon runs them (bf16, fused MLPs), and the
// non-AMX figures are printed beside. Printed for the issue note; asserted: closer than the study
// on the OpenVINO column, and no row's band lies wholly above the measured figure (never a
// confident over-estimate).
TEST(OpenvinoTest, ReferenceTableCloserThanTheStudy) {
  json table = ReferenceTable();
  std::vector<double> ours, study;
  std::vector<std::string> skipped;
  for (const json& row : table["rows"]) {
    const std::string name = row["name"];
    if (!Modelled(row)) {
      skipped.push_back(name);
      continue;
    }
    auto spec = RowModel(row);
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    auto est = Estimate(*spec, RowRequest(row));
    ASSERT_TRUE(est.ok()) << name << ": " << est.status();
    auto f32 = Estimate(*spec, RowRequest(row, /*amx=*/false));
    ASSERT_TRUE(f32.ok()) << name << ": " << f32.status();
    const double measured = row["measured"]["openvino_mib"].get<double>();
    const double mine = Mib(est->max_total_bytes);
    const double theirs = row["study"]["total_mib"].get<double>();
    ours.push_back(std::abs(mine / measured - 1));
    study.push_back(std::abs(theirs / measured - 1));
    const auto& p = est->pipeline_parts;
    std::printf(
        "%-18s measured %7.0f  ours %7.0f (%+5.1f%%; vit %.0f+%.0f, emb %.0f+%.0f, llm %.0f+%.0f, "
        "kv %.0f; band %.0f..%.0f; no AMX %.0f)  study %7.0f (%+5.1f%%)\n",
        name.c_str(), measured, mine, 100 * (mine / measured - 1), Mib(p[0].weights_bytes),
        Mib(p[0].temp_bytes), Mib(p[1].weights_bytes), Mib(p[1].temp_bytes),
        Mib(p[2].weights_bytes), Mib(p[2].temp_bytes), Mib(est->stages[0].kv_cache_bytes),
        Mib(est->stages[0].low_bytes), Mib(est->stages[0].high_bytes), Mib(f32->max_total_bytes),
        theirs, 100 * (theirs / measured - 1));
    double low = Mib(est->stages[0].low_bytes);
    if (!row.value("weights_settings_known", true)) {
      // The study does not give this IR's NNCF settings: the band is the union of the bands of
      // the int4 IRs optimum-cli can write (asym or sym, group 128 or 64, all_layers or not).
      for (OvWeightFormat format : {OvWeightFormat::kInt4Asym, OvWeightFormat::kInt4Sym}) {
        for (int64_t group : {128, 64}) {
          for (bool all_layers : {false, true}) {
            EstimateRequest r = RowRequest(row);
            r.openvino.weight_format = format;
            r.openvino.group_size = group;
            r.openvino.all_layers = all_layers;
            auto variant = Estimate(*spec, r);
            ASSERT_TRUE(variant.ok()) << name << ": " << variant.status();
            low = std::min(low, Mib(variant->stages[0].low_bytes));
          }
        }
      }
      std::printf("%-18s NNCF settings unknown: low end over the int4 variants %.0f\n",
                  name.c_str(), low);
    }
    // Never above the measured figure by more than the band's low side allows.
    EXPECT_LE(low, measured) << name;
  }
  ASSERT_GE(ours.size(), 4u);
  std::printf(
      "OpenVINO column over %zu rows: median |error| ours %.1f%%, study %.1f%%; not modelled:",
      ours.size(), 100 * Median(ours), 100 * Median(study));
  for (const std::string& s : skipped) std::printf(" %s", s.c_str());
  std::printf("\n");
  EXPECT_LT(Median(ours), Median(study));
}

// The llama.cpp column of the reference table, from each row's config.json converted as
// llama.cpp's tools would (gguf_convert.h) with its mmproj (llama_cpp.h LlamaCppMmprojFromModel),
// under the assumptions the table file's _source_llama_cpp states. Printed for the issue note;
// asserted as for the OpenVINO column: closer than the study over the rows, and no band wholly
// above the measured figure.
TEST(OpenvinoTest, ReferenceTableLlamaCppColumn) {
  json table = ReferenceTable();
  std::vector<double> ours, study;
  auto request = [](const json& row, const std::string& type, FlashAttn fa) {
    EstimateRequest r;
    r.engine = Engine::kLlamaCpp;
    r.gpu_memory_bytes = 80 * kGiB;
    LlamaCppConfig& c = r.llama_cpp;
    c.file_type = type;
    c.n_ctx = 4096;
    c.n_parallel = 1;
    c.n_gpu_layers = 99;
    c.flash_attn = fa;
    c.images = row["images"].get<int64_t>();
    c.image_height = row["image_height"].get<int64_t>();
    c.image_width = row["image_width"].get<int64_t>();
    return r;
  };
  for (const json& row : table["rows"]) {
    const std::string name = row["name"];
    if (!row.contains("llama_cpp") || !Modelled(row)) continue;
    auto spec = RowModel(row);
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    const std::string type = row["llama_cpp"]["file_type"];
    auto est = Estimate(*spec, request(row, type, FlashAttn::kOff));
    ASSERT_TRUE(est.ok()) << name << ": " << est.status();
    auto fa = Estimate(*spec, request(row, type, FlashAttn::kOn));
    ASSERT_TRUE(fa.ok()) << name << ": " << fa.status();
    const double measured = row["measured"]["llama_cpp_mib"].get<double>();
    const double mine = Mib(est->max_total_bytes);
    const double theirs = row["study"]["total_mib"].get<double>();
    ours.push_back(std::abs(mine / measured - 1));
    study.push_back(std::abs(theirs / measured - 1));
    const StageMemory& g = est->stages[0];
    double low = Mib(g.low_bytes);
    if (!row["llama_cpp"].value("file_type_known", true)) {
      for (const char* variant : {"q4_0", "q4_K_S", "q4_K_M"}) {
        auto v = Estimate(*spec, request(row, variant, FlashAttn::kOff));
        ASSERT_TRUE(v.ok()) << name << ": " << v.status();
        low = std::min(low, Mib(v->stages[0].low_bytes));
      }
    }
    std::printf(
        "%-18s measured %7.0f  ours %7.0f (%+5.1f%%; %s weights+mmproj %.0f, kv %.0f, compute "
        "%.0f, context+pool %.0f; band %.0f..%.0f; flash attention on %.0f)  study %7.0f "
        "(%+5.1f%%)\n",
        name.c_str(), measured, mine, 100 * (mine / measured - 1), type.c_str(),
        Mib(g.weights_bytes), Mib(g.kv_cache_bytes), Mib(g.activation_peak_bytes),
        Mib(g.cuda_context_bytes + g.engine_overhead_bytes), low, Mib(g.high_bytes),
        Mib(fa->max_total_bytes), theirs, 100 * (theirs / measured - 1));
    EXPECT_LE(low, measured) << name;
  }
  ASSERT_GE(ours.size(), 4u);
  std::printf("llama.cpp column over %zu rows: median |error| ours %.1f%%, study %.1f%%\n",
              ours.size(), 100 * Median(ours), 100 * Median(study));
  EXPECT_LT(Median(ours), Median(study));
}

ModelSpec Llama() {
  auto spec = ParseModelConfig(
      ReadFile(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/llama-3.1-8b-instruct.json"));
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

EstimateRequest Ov() {
  EstimateRequest r;
  r.engine = Engine::kOpenvino;
  r.gpu_memory_bytes = 64 * kGiB;
  return r;
}

// Bad requests are refused naming the field and the value (estimator.cc ValidateRequest).
TEST(OpenvinoTest, BadRequestsNameTheField) {
  const ModelSpec spec = Llama();
  struct Case {
    const char* what;
    void (*edit)(EstimateRequest&);
    const char* expect;
  };
  const Case cases[] = {
      {"tp", [](EstimateRequest& r) { r.parallelism.tp = 2; }, "tp=2"},
      {"group 0", [](EstimateRequest& r) { r.openvino.group_size = 0; }, "openvino.group_size=0"},
      {"ratio", [](EstimateRequest& r) { r.openvino.ratio = 1.5; }, "openvino.ratio=1.5"},
      {"kv group", [](EstimateRequest& r) { r.openvino.kv_group_size = -1; },
       "openvino.kv_group_size=-1"},
      {"cache stateful", [](EstimateRequest& r) { r.openvino.cache_size_gb = 4; },
       "set continuous_batching"},
      {"cache and blocks",
       [](EstimateRequest& r) {
         r.openvino.continuous_batching = true;
         r.openvino.cache_size_gb = 4;
         r.openvino.num_kv_blocks = 10;
       },
       "give one of them"},
      {"negative cache", [](EstimateRequest& r) { r.openvino.cache_size_gb = -1; },
       "openvino.cache_size_gb=-1"},
      {"huge blocks", [](EstimateRequest& r) { r.openvino.num_kv_blocks = int64_t{1} << 40; },
       "openvino.num_kv_blocks="},
      {"zero prompt", [](EstimateRequest& r) { r.openvino.prompt_tokens = 0; },
       "openvino.prompt_tokens=0"},
      {"huge llm tokens", [](EstimateRequest& r) { r.openvino.llm_tokens = int64_t{1} << 50; },
       "openvino.llm_tokens="},
      {"batched tokens", [](EstimateRequest& r) { r.openvino.max_num_batched_tokens = 0; },
       "openvino.max_num_batched_tokens=0"},
      {"images no tower", [](EstimateRequest& r) { r.openvino.images = 1; },
       "openvino.images=1 but the model has no vision tower"},
      {"negative images", [](EstimateRequest& r) { r.openvino.images = -1; }, "openvino.images=-1"},
      {"gpu u4",
       [](EstimateRequest& r) {
         r.openvino.device = OvDevice::kGpu;
         r.openvino.kv_precision = OvKvPrecision::kU4;
       },
       "openvino.kv_precision=u4"},
  };
  for (const Case& c : cases) {
    EstimateRequest r = Ov();
    c.edit(r);
    auto est = Estimate(spec, r);
    ASSERT_FALSE(est.ok()) << c.what;
    EXPECT_EQ(est.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(est.status().message().find(c.expect), std::string::npos)
        << c.what << ": " << est.status().message();
  }
}

// openvino_config.json: garbage, wrong types and out-of-range values are refused by field.
TEST(OpenvinoTest, BadOpenvinoConfigJsonNamesTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "not a JSON object"},
      {"[1, 2]", "not a JSON object"},
      {R"({"dtype": 4})", "dtype=4"},
      {R"({"dtype": "int3"})", "dtype=\"int3\""},
      {R"({"quantization_config": 7})", "quantization_config=7"},
      {R"({"quantization_config": {"bits": 3}})", "bits=3"},
      {R"({"quantization_config": {"bits": "4"}})", "bits=\"4\""},
      {R"({"quantization_config": {"bits": 4, "sym": 1}})", "sym=1"},
      {R"({"quantization_config": {"bits": 4, "group_size": 0}})", "group_size=0"},
      {R"({"quantization_config": {"bits": 4, "group_size": 1e30}})", "group_size="},
      {R"({"quantization_config": {"bits": 4, "group_size": 64, "ratio": -0.5}})", "ratio=-0.5"},
      {R"({"quantization_config": {"bits": 4, "all_layers": "yes"}})", "all_layers=\"yes\""},
  };
  for (const auto& [text, expect] : cases) {
    OpenvinoConfig c;
    absl::Status s = ApplyOpenvinoConfigJson(text, c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(expect), std::string::npos) << text << ": " << s.message();
    EXPECT_FALSE(c.weight_format_set) << text;
    EXPECT_EQ(c.group_size, OpenvinoConfig{}.group_size) << text;  // nothing half-applied
  }
  OpenvinoConfig ok;
  ASSERT_TRUE(ApplyOpenvinoConfigJson(
                  R"({"dtype": "int4", "quantization_config": {"bits": 4, "sym": true,
                      "group_size": 64, "ratio": 0.8, "all_layers": null}})",
                  ok)
                  .ok());
  EXPECT_EQ(ok.weight_format, OvWeightFormat::kInt4Sym);
  EXPECT_EQ(ok.group_size, 64);
  EXPECT_DOUBLE_EQ(ok.ratio, 0.8);
}

// One rule for a quantized checkpoint's format: the estimate's weights and the launch line's
// --weight-format/--group-size come from OvResolvedWeights, so they agree.
TEST(OpenvinoTest, QuantizedCheckpointEstimateAndLaunchAgree) {
  auto spec = ParseModelConfig(
      ReadFile(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/llama-3.1-8b-instruct.json"),
      {.quantization = "gptq", .group_size = 64});
  ASSERT_TRUE(spec.ok()) << spec.status();
  const EstimateRequest r = Ov();
  auto w = OvResolvedWeights(*spec, r.openvino);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w->format == OvWeightFormat::kInt4Sym || w->format == OvWeightFormat::kInt4Asym);
  EXPECT_EQ(w->group_size, 64);
  auto est = Estimate(*spec, r);
  ASSERT_TRUE(est.ok()) << est.status();
  EstimateRequest explicit_req = Ov();
  explicit_req.openvino.weight_format_set = true;
  explicit_req.openvino.weight_format = w->format;
  explicit_req.openvino.group_size = 64;
  auto same = Estimate(Llama(), explicit_req);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(est->stages[0].weights_bytes, same->stages[0].weights_bytes);
  const std::string line = OpenvinoLaunchCommand("meta-llama/Llama-3.1-8B", *spec, r, *est);
  EXPECT_NE(line.find("--weight-format int4 --group-size 64"), std::string::npos) << line;
  // An fp8 checkpoint is not what optimum-cli exports: refused, not guessed.
  auto fp8 = ParseModelConfig(ReadFile(std::string(FLEETPLAN_CALIBRATION_DIR) +
                                       "/models/llama-3.3-70b-instruct-fp8-dynamic.json"));
  ASSERT_TRUE(fp8.ok());
  auto refused = Estimate(*fp8, Ov());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("openvino.weight_format"), std::string::npos);
}

}  // namespace
}  // namespace fleetplan::estimator
