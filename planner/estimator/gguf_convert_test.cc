// The GGUF llama.cpp's converter and quantizer would write for a config.json (gguf_convert.h):
// tensor types by src/llama-quant.cpp llama_tensor_get_type_impl, checked by hand and against
// published file sizes; and llama.cpp estimates from a config.json, with a VLM's mmproj.

#include "planner/estimator/gguf_convert.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "planner/common/units.h"
#include "planner/estimator/config_parser.h"
#include "planner/estimator/llama_cpp.h"

namespace fleetplan::estimator {
namespace {

using json = nlohmann::json;

// Llama-2-7B's published config.json (meta-llama/Llama-2-7b-hf, the fields that size it).
json Llama2() {
  return json{{"model_type", "llama"},
              {"architectures", {"LlamaForCausalLM"}},
              {"hidden_size", 4096},
              {"intermediate_size", 11008},
              {"num_attention_heads", 32},
              {"num_key_value_heads", 32},
              {"num_hidden_layers", 32},
              {"vocab_size", 32000},
              {"max_position_embeddings", 4096},
              {"rms_norm_eps", 1e-5},
              {"torch_dtype", "float16"},
              {"tie_word_embeddings", false}};
}

ModelSpec Spec(const json& config) {
  auto spec = ParseModelConfig(config.dump());
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

GgufFile Convert(const json& config, const std::string& type) {
  auto f = GgufFromModel(Spec(config), "llama_cpp.file_type", type);
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? *f : GgufFile{};
}

const GgufTensor& Find(const GgufFile& f, const std::string& name) {
  for (const GgufTensor& t : f.tensors) {
    if (t.name == name) return t;
  }
  ADD_FAILURE() << "no tensor " << name;
  static const GgufTensor kNone;
  return kNone;
}

int64_t CountType(const GgufFile& f, const std::string& suffix, const std::string& type) {
  int64_t n = 0;
  for (const GgufTensor& t : f.tensors) {
    if (t.name.find(suffix) != std::string::npos && GgmlTypeName(t.type) == type) ++n;
  }
  return n;
}

// Q4_K_M by hand: q4_K everywhere, output q6_K, attn_v and ffn_down q6_K on the 16 of 32 layers
// use_more_bits picks (0-3, 28-31 and every third from 6 to 27), norms f32. Per layer q/k/o
// 3 x 4096 x 2304 B, gate/up 2 x 11008 x 2304, v 4096 x 3360 (q6_K) or 2304, down 4096 x 9030
// (q6_K, 43 blocks of 210) or 6192 (q4_K), two norms 2 x 16384. TheBloke's llama-2-7b.Q4_K_M.gguf
// is 4,081,004,224 bytes and its Q4_0 3,825,807,040: both exactly 741,056 bytes (the header with
// its tokenizer) above the tensors counted here.
TEST(GgufConvertTest, Llama2Q4KMByHandAndAgainstThePublishedFile) {
  GgufFile f = Convert(Llama2(), "Q4_K_M");
  EXPECT_EQ(f.metadata["general.architecture"], "llama");
  EXPECT_EQ(GgmlTypeName(Find(f, "token_embd.weight").type), "q4_K");
  EXPECT_EQ(GgmlTypeName(Find(f, "output.weight").type), "q6_K");
  EXPECT_EQ(GgmlTypeName(Find(f, "output_norm.weight").type), "f32");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.0.attn_v.weight").type), "q6_K");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.4.attn_v.weight").type), "q4_K");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.6.ffn_down.weight").type), "q6_K");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.7.ffn_down.weight").type), "q4_K");
  EXPECT_EQ(CountType(f, "attn_v.weight", "q6_K"), 16);
  EXPECT_EQ(CountType(f, "ffn_down.weight", "q6_K"), 16);
  EXPECT_EQ(Find(f, "blk.3.ffn_down.weight").dims, (std::vector<int64_t>{11008, 4096}));
  const int64_t layer = 3 * 4096 * 2304 + 2 * 11008 * 2304 + 2 * 16384;
  const int64_t expected = 32 * layer + 16 * (4096 * 3360 + 4096 * 9030) +
                           16 * (4096 * 2304 + 4096 * 6192) + 32000 * 2304 + 32000 * 3360 + 16384;
  EXPECT_EQ(f.weights_bytes, expected);
  EXPECT_EQ(f.weights_bytes, 4081004224 - 741056);
  EXPECT_EQ(Convert(Llama2(), "q4_0").weights_bytes, 3825807040 - 741056);
  // f16: the parameters in 2 bytes, the 65 norms in f32.
  GgufFile f16 = Convert(Llama2(), "f16");
  EXPECT_EQ(f16.weights_bytes, 2 * f16.parameters + 2 * 65 * 4096);
  EXPECT_EQ(f16.parameters, 6738415616);
}

// A tied embedding is the output: llama-quantize gives token_embd the output's q6_K (Gemma,
// Qwen2.5-3B); Q8_0 keeps it q8_0. GQA models' attn_v is [hidden, kv_heads x head_dim].
TEST(GgufConvertTest, TiedEmbeddingTakesTheOutputType) {
  json c = Llama2();
  c["tie_word_embeddings"] = true;
  c["num_key_value_heads"] = 8;
  GgufFile f = Convert(c, "q4_K_M");
  EXPECT_EQ(GgmlTypeName(Find(f, "token_embd.weight").type), "q6_K");
  for (const GgufTensor& t : f.tensors) EXPECT_NE(t.name, "output.weight");
  EXPECT_EQ(Find(f, "blk.0.attn_v.weight").dims, (std::vector<int64_t>{4096, 1024}));
  EXPECT_EQ(f.metadata["llama.attention.head_count_kv"], "8");
  EXPECT_EQ(GgmlTypeName(Find(Convert(c, "q8_0"), "token_embd.weight").type), "q8_0");
}

// Mixtral (8 experts): attn_v and attn_k in q8_0, attn_output q5_K, experts as 3-D
// [in, out, 8] ffn_*_exps, the router ffn_gate_inp in f32, ffn_down_exps by layer number.
TEST(GgufConvertTest, MixtralExpertsAndTheEightExpertRules) {
  json c = json{{"model_type", "mixtral"},    {"hidden_size", 4096},
                {"intermediate_size", 14336}, {"num_attention_heads", 32},
                {"num_key_value_heads", 8},   {"num_hidden_layers", 32},
                {"num_local_experts", 8},     {"num_experts_per_tok", 2},
                {"vocab_size", 32000},        {"max_position_embeddings", 32768},
                {"torch_dtype", "bfloat16"},  {"tie_word_embeddings", false}};
  GgufFile f = Convert(c, "q4_K_M");
  EXPECT_EQ(f.metadata["llama.expert_count"], "8");
  EXPECT_EQ(Find(f, "blk.0.ffn_gate_exps.weight").dims, (std::vector<int64_t>{4096, 14336, 8}));
  EXPECT_EQ(Find(f, "blk.0.ffn_down_exps.weight").dims, (std::vector<int64_t>{14336, 4096, 8}));
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.5.attn_v.weight").type), "q8_0");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.5.attn_k.weight").type), "q8_0");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.5.attn_output.weight").type), "q5_K");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.5.ffn_gate_inp.weight").type), "f32");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.6.ffn_down_exps.weight").type), "q6_K");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.7.ffn_down_exps.weight").type), "q4_K");
}

// Phi-3 writes q|k|v as one attn_qkv and gate|up as one ffn_up; attn_qkv follows attn_v's rule.
TEST(GgufConvertTest, Phi3FusedTensors) {
  json c = json{{"model_type", "phi3"},      {"hidden_size", 3072},
                {"intermediate_size", 8192}, {"num_attention_heads", 32},
                {"num_key_value_heads", 32}, {"num_hidden_layers", 32},
                {"vocab_size", 32064},       {"max_position_embeddings", 4096},
                {"torch_dtype", "bfloat16"}, {"tie_word_embeddings", false}};
  GgufFile f = Convert(c, "q4_K_M");
  EXPECT_EQ(f.metadata["general.architecture"], "phi3");
  EXPECT_EQ(Find(f, "blk.0.attn_qkv.weight").dims, (std::vector<int64_t>{3072, 9216}));
  EXPECT_EQ(Find(f, "blk.0.ffn_up.weight").dims, (std::vector<int64_t>{3072, 16384}));
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.0.attn_qkv.weight").type), "q6_K");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.4.attn_qkv.weight").type), "q4_K");
  EXPECT_EQ(CountType(f, "attn_q.weight", "q4_K"), 0);
}

// tensor_type_fallback: a row that is not whole 256-blocks takes q5_0 for q4_K, q8_0 for q6_K
// (the output's rule picks q8_0 itself); a row not whole 32-blocks either falls to f16; and where
// no fallback is defined (q8_0, q4_0) llama-quantize stops, so the conversion is refused by name.
TEST(GgufConvertTest, FallbacksForRowsOfOddLength) {
  json c = Llama2();
  c["hidden_size"] = 2880;  // 2880 = 11.25 x 256 = 90 x 32
  c["intermediate_size"] = 2880;
  c["num_attention_heads"] = 45;
  c["num_key_value_heads"] = 45;
  GgufFile f = Convert(c, "q4_K_M");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.4.attn_q.weight").type), "q5_0");
  EXPECT_EQ(GgmlTypeName(Find(f, "blk.0.attn_v.weight").type), "q8_0");
  EXPECT_EQ(GgmlTypeName(Find(f, "output.weight").type), "q8_0");
  c["intermediate_size"] = 2888;  // ffn_down's rows: not a multiple of 32
  GgufFile odd = Convert(c, "q4_K_M");
  EXPECT_EQ(GgmlTypeName(Find(odd, "blk.0.ffn_down.weight").type), "f16");  // q6_K -> q8_0 -> f16
  EXPECT_EQ(GgmlTypeName(Find(odd, "blk.4.ffn_down.weight").type), "f16");  // q4_K -> q5_0 -> f16
  EXPECT_EQ(GgmlTypeName(Find(odd, "blk.4.ffn_gate.weight").type), "q5_0");
  auto refused = GgufFromModel(Spec(c), "llama_cpp.file_type", "q4_0");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("blk.0.ffn_down.weight"), std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("no fallback"), std::string::npos);
}

TEST(GgufConvertTest, RefusesWhatItDoesNotModel) {
  auto bad_type = GgufFromModel(Spec(Llama2()), "llama_cpp.file_type", "q3_K_XL");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.status().message().find("llama_cpp.file_type=\"q3_K_XL\""), std::string::npos);
  json opt = json{{"model_type", "opt"},
                  {"hidden_size", 768},
                  {"ffn_dim", 3072},
                  {"num_attention_heads", 12},
                  {"num_hidden_layers", 12},
                  {"vocab_size", 50272},
                  {"max_position_embeddings", 2048},
                  {"word_embed_proj_dim", 768},
                  {"torch_dtype", "float16"}};
  auto spec = ParseModelConfig(opt.dump());
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto arch = GgufFromModel(*spec, "llama_cpp.file_type", "f16");
  ASSERT_FALSE(arch.ok());
  EXPECT_NE(arch.status().message().find("model_type=\"opt\""), std::string::npos);
  std::ifstream in(std::string(FLEETPLAN_CALIBRATION_DIR) + "/models/deepseek-v2-lite.json");
  std::stringstream text;
  text << in.rdbuf();
  auto mla = ParseModelConfig(text.str());
  ASSERT_TRUE(mla.ok()) << mla.status();
  EXPECT_FALSE(GgufFromModel(*mla, "llama_cpp.file_type", "q4_K_M").ok());
}

EstimateRequest LlamaCppRequest(const std::string& type) {
  EstimateRequest r;
  r.engine = Engine::kLlamaCpp;
  r.gpu_memory_bytes = 80 * kGiB;
  r.llama_cpp.file_type = type;
  r.llama_cpp.n_ctx = 4096;
  r.llama_cpp.n_parallel = 1;
  return r;
}

// Estimate() with engine=llama.cpp converts the config; without a file type it refuses rather
// than assume one. The weights on the GPU are the converted file's (token_embd stays on the CPU).
TEST(GgufConvertTest, EstimateFromAConfigThroughTheConversion) {
  const ModelSpec spec = Spec(Llama2());
  auto est = Estimate(spec, LlamaCppRequest("q4_K_M"));
  ASSERT_TRUE(est.ok()) << est.status();
  const GgufFile f = Convert(Llama2(), "q4_K_M");
  const int64_t embd = Find(f, "token_embd.weight").bytes;
  EXPECT_GT(est->stages[0].weights_bytes, f.weights_bytes - embd);
  EXPECT_LT(est->stages[0].weights_bytes, f.weights_bytes - embd + 4 * kMiB);  // 128-B padding
  EXPECT_EQ(est->stages[0].kv_cache_bytes, int64_t{32} * 2 * 4096 * 2 * 4096);
  bool said = false;
  for (const std::string& n : est->notes) said = said || n.find("llama-quantize q4_K_M") != n.npos;
  EXPECT_TRUE(said);
  auto untyped = Estimate(spec, LlamaCppRequest(""));
  ASSERT_FALSE(untyped.ok());
  EXPECT_NE(untyped.status().message().find("llama_cpp.file_type"), std::string::npos);
}

json ReferenceRow(const std::string& name) {
  std::ifstream in(std::string(FLEETPLAN_TESTDATA_DIR) + "/openvino/openvino-vlm-s0.json");
  json table = json::parse(in);
  for (const json& row : table["rows"]) {
    if (row["name"] == name) return row;
  }
  ADD_FAILURE() << "no row " << name;
  return json{};
}

// LLaVA-1.5-7B's mmproj (tools/mtmd clip.cpp): CLIP-L/336 and its MLP projector in f16 (1-D in
// f32), and clip's buffer for one 577-token pass (576 patches and the class token): the residual
// and normed input [1024, 577] f32 with the larger of attention (q, k, v and, without flash
// attention, the f32 scores [577, 577, 16]) and the MLP [4096, 577].
TEST(GgufConvertTest, LlavaMmprojWeightsAndClipBuffer) {
  const json row = ReferenceRow("llava-1.5-7b-hf");
  const ModelSpec spec = Spec(row["config"]);
  std::vector<std::string> notes;
  EstimateRequest r = LlamaCppRequest("q4_K_M");
  r.llama_cpp.flash_attn = FlashAttn::kOff;
  r.llama_cpp.images = 1;
  auto mm = LlamaCppMmprojFromModel(spec, r, notes);
  ASSERT_TRUE(mm.ok()) << mm.status();
  EXPECT_EQ(mm->patches, 577);
  const int64_t P = 577;
  EXPECT_EQ(mm->compute_bytes,
            4 * P * 2 * 1024 + std::max(4 * P * 3 * 1024 + 4 * P * P * 16, 4 * P * 4096));
  // Two bytes a parameter, a little more for the f32 norms and biases and 128-byte alignment.
  const double per_param =
      static_cast<double>(mm->weights_bytes) / static_cast<double>(spec.num_vision_params());
  EXPECT_GT(per_param, 2.0);
  EXPECT_LT(per_param, 2.01);
  r.llama_cpp.flash_attn = FlashAttn::kOn;
  auto fa = LlamaCppMmprojFromModel(spec, r, notes);
  ASSERT_TRUE(fa.ok());
  EXPECT_EQ(fa->compute_bytes, 4 * P * 2 * 1024 + std::max(4 * P * 3 * 1024, 4 * P * 4096));
  // Through the estimate: on the first GPU, and --mmproj in the launch line.
  auto with = EstimateLlamaCppFromModel(spec, r);
  ASSERT_TRUE(with.ok()) << with.status();
  EXPECT_TRUE(with->mmproj);
  EXPECT_NE(LlamaServerCommand("", *with).find(" --mmproj mmproj-MODEL-f16.gguf"),
            std::string::npos);
  r.llama_cpp.image_height = 1 << 17;
  EXPECT_FALSE(LlamaCppMmprojFromModel(spec, r, notes).ok()) << "image_height out of range";
}

// A wrapper whose projector llama.cpp's mtmd does not run (Phi-3.5-vision): the text model alone,
// said in a note.
TEST(GgufConvertTest, UnsupportedProjectorServesTheTextModel) {
  const ModelSpec spec = Spec(ReferenceRow("phi-3.5-vision-instruct")["config"]);
  auto e = EstimateLlamaCppFromModel(spec, LlamaCppRequest("q4_K_M"));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->mmproj);
  bool said = false;
  for (const std::string& n : e->memory.notes) said = said || n.find("no projector") != n.npos;
  EXPECT_TRUE(said);
}

}  // namespace
}  // namespace fleetplan::estimator
